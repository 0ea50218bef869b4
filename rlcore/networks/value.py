"""Networks of the off-policy plugins: Q-networks (plain, dueling, with several outputs per
action for distributional heads) and the deterministic actor and Q critic of DDPG/TD3.
Vector observations get ReLU MLPs, images the Nature CNN."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlcore.networks.blocks import NatureCNN, NumpyMLP, is_image, layer_init
from rlcore.policies.sampling import EpsilonGreedyPolicy  # noqa: F401 (its home before)
from rlcore.types import SpaceSpec


def relu_mlp(sizes: list[int], out_gain: float = 1.0) -> list[nn.Module]:
    """Linear/ReLU layers through ``sizes``, no activation after the last."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(layer_init(nn.Linear(sizes[i], sizes[i + 1]), out_gain if last else np.sqrt(2)))
        if not last:
            layers.append(nn.ReLU())
    return layers


class QNetwork(nn.Module):
    """Q(s, .) with ``num_outputs`` numbers per action: [B, A, num_outputs] (1 for DQN, atoms
    for C51, quantiles for QR-DQN). ``dueling`` splits the last layer into a value stream and
    an advantage stream, combined as V + A - mean_a A (Wang et al. 2016)."""

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...] = (64, 64), num_outputs: int = 1,
                 dueling: bool = False):
        super().__init__()
        self.num_actions, self.num_outputs, self.dueling = spaces.num_actions, num_outputs, dueling
        out = self.num_actions * num_outputs
        if is_image(spaces):
            self.torso = NatureCNN(spaces.obs_shape[0])
            width = self.torso.out_dim
        else:
            sizes = [int(np.prod(spaces.obs_shape)), *hidden]
            flat = [nn.Flatten()] if len(spaces.obs_shape) > 1 else []
            self.torso = nn.Sequential(*flat, *relu_mlp(sizes), nn.ReLU()) if hidden else nn.Sequential(*flat)
            width = sizes[-1]
        self.head = layer_init(nn.Linear(width, out), 1.0)
        self.value = layer_init(nn.Linear(width, num_outputs), 1.0) if dueling else None
        self._np = None
        if not dueling and not is_image(spaces) and len(spaces.obs_shape) == 1:
            self._np = NumpyMLP.build(nn.Sequential(*self.torso, self.head))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.torso(obs if obs.dtype == torch.uint8 else obs.float())
        q = self.head(h).view(-1, self.num_actions, self.num_outputs)
        if self.value is not None:
            q = self.value(h).unsqueeze(1) + q - q.mean(dim=1, keepdim=True)
        return q

    def numpy_forward(self, obs: np.ndarray) -> np.ndarray:
        """[N, A, num_outputs] in numpy: the NumpyMLP fast path for vector observations."""
        if self._np is not None and obs.dtype == np.float32 and self._np.valid():
            return self._np(obs).reshape(len(obs), self.num_actions, self.num_outputs)
        with torch.inference_mode():
            return self(torch.as_tensor(obs)).numpy()


class DeterministicActor(nn.Module):
    """mu(s) in [-1, 1]^d (tanh), rescaled to the env's bounds when stepping."""

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...]):
        super().__init__()
        self.action_shape = tuple(spaces.action_shape)
        act_dim = int(np.prod(self.action_shape))
        if is_image(spaces):
            self.net = nn.Sequential(NatureCNN(spaces.obs_shape[0]), *relu_mlp([512, act_dim], 0.01))
        else:
            self.net = nn.Sequential(*relu_mlp([int(np.prod(spaces.obs_shape)), *hidden, act_dim], 0.01))
        self._np = NumpyMLP.build(self.net) if not is_image(spaces) else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs.float())).view(-1, *self.action_shape)

    def numpy_forward(self, obs: np.ndarray) -> np.ndarray:
        if self._np is not None and obs.dtype == np.float32 and self._np.valid():
            return np.tanh(self._np(obs)).reshape(len(obs), *self.action_shape)
        with torch.inference_mode():
            return self(torch.as_tensor(obs)).numpy()


class QCritic(nn.Module):
    """Q(s, a) for Box actions in the policy's [-1, 1] range: an MLP on [s, a] -> [B]."""

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...]):
        super().__init__()
        if is_image(spaces):
            raise ValueError("QCritic takes vector observations")
        sizes = [int(np.prod(spaces.obs_shape)) + int(np.prod(spaces.action_shape)), *hidden, 1]
        self.net = nn.Sequential(*relu_mlp(sizes))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs.float().flatten(1), action.flatten(1)], dim=-1)
        return self.net(x).squeeze(-1)


def values_of(net):
    """The numpy ``values(obs) -> [N, A]`` of a Q-network for ``EpsilonGreedyPolicy``."""
    return lambda obs: net.numpy_forward(obs)[..., 0]
