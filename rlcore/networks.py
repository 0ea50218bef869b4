"""Network building blocks shared by plugins: MLPs, the Nature CNN, an actor-critic, and the
stochastic policy that actors run. Algorithm math lives in the plugins."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rlcore.types import ActionOut, SpaceSpec

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def layer_init(layer: nn.Linear | nn.Conv2d, gain: float = math.sqrt(2.0)) -> nn.Module:
    """Orthogonal weights, zero bias (Engstrom et al. 2020, 'implementation matters')."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(sizes: list[int], activation: str = "tanh", out_gain: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(layer_init(nn.Linear(sizes[i], sizes[i + 1]), out_gain if last else math.sqrt(2)))
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class NatureCNN(nn.Module):
    """Mnih et al. 2015: 3 conv layers + 512 units on uint8 frames [C, 84, 84], scaled to [0, 1]."""

    def __init__(self, in_channels: int, out_dim: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(in_channels, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, out_dim)), nn.ReLU(),
        )
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 255.0)


def is_image(spaces: SpaceSpec) -> bool:
    return len(spaces.obs_shape) == 3 and spaces.obs_dtype == "uint8"


class ActorCritic(nn.Module):
    """Categorical policy head and value head. Vector observations get two separate MLPs;
    image observations share a Nature CNN torso."""

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...] = (64, 64),
                 activation: str = "tanh"):
        super().__init__()
        n_act = spaces.num_actions
        if is_image(spaces):
            self.torso = NatureCNN(spaces.obs_shape[0])
            self.pi = layer_init(nn.Linear(self.torso.out_dim, n_act), 0.01)
            self.v = layer_init(nn.Linear(self.torso.out_dim, 1), 1.0)
        else:
            obs_dim = int(np.prod(spaces.obs_shape))
            self.torso = nn.Flatten() if len(spaces.obs_shape) > 1 else nn.Identity()
            self.pi = mlp([obs_dim, *hidden, n_act], activation, out_gain=0.01)
            self.v = mlp([obs_dim, *hidden, 1], activation, out_gain=1.0)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(self.torso(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(self.torso(obs)).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.torso(obs)
        return self.pi(h), self.v(h).squeeze(-1)

    def distribution(self, logits: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=logits, validate_args=False)


class CategoricalPolicy:
    """Inference copy of an ``ActorCritic`` run by rollout actors (numpy in, numpy out).

    Sampling uses the worker's own ``numpy`` generator (Gumbel-max, exact for a categorical) so
    that actions depend only on the seed, never on how many other users share torch's global
    generator in the process; torch.distributions has no per-call generator.
    """

    def __init__(self, net: ActorCritic, explore: bool):
        self.net = net
        self.explore = explore
        self._rows = np.arange(0)

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        with torch.inference_mode():
            logp = torch.log_softmax(self.net.logits(torch.as_tensor(obs)), -1).numpy()
        if self.explore:
            action = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
        else:
            action = np.argmax(logp, axis=-1)
        if len(self._rows) != len(action):
            self._rows = np.arange(len(action))
        return ActionOut(action, logp[self._rows, action])
