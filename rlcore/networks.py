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


class NumpyMLP:
    """Numpy forward pass of an ``nn.Sequential`` of Linear / Tanh / ReLU layers, reading the
    module's own CPU parameters through shared-memory views (in-place weight loads stay visible).

    Why: measured on CartPole with 4-8 envs per worker, torch's per-call overhead made policy
    inference (about 22 us for a 64-64 MLP) cost as much as stepping the envs; this forward
    takes about 12 us. ``build`` returns None for any other module, which then runs in torch.
    """

    def __init__(self, module: nn.Module, layers: list):
        self.module, self.layers = module, layers
        self._ptrs = self._pointers()

    def _pointers(self) -> list[int]:
        return [layer.weight.data_ptr() for layer in self.module if isinstance(layer, nn.Linear)]

    @classmethod
    def build(cls, module: nn.Module) -> "NumpyMLP | None":
        if not isinstance(module, nn.Sequential):
            return None
        layers = []
        for layer in module:
            if isinstance(layer, nn.Linear) and layer.weight.device.type == "cpu":
                b = layer.bias.detach().numpy() if layer.bias is not None else None
                layers.append((layer.weight.detach().numpy().T, b))
            elif isinstance(layer, (nn.Tanh, nn.ReLU)):
                layers.append(np.tanh if isinstance(layer, nn.Tanh) else _relu)
            else:
                return None
        return cls(module, layers)

    def valid(self) -> bool:
        """False once the module's parameters were replaced rather than copied into."""
        return self._pointers() == self._ptrs

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            if isinstance(layer, tuple):
                x = x @ layer[0] if layer[1] is None else x @ layer[0] + layer[1]
            else:
                x = layer(x)
        return x


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class CategoricalPolicy:
    """Inference copy of an ``ActorCritic`` run by rollout actors (numpy in, numpy out).

    Sampling uses the worker's own ``numpy`` generator (Gumbel-max, exact for a categorical) so
    that actions depend only on the seed, never on how many other users share torch's global
    generator in the process; torch.distributions has no per-call generator. Vector
    observations go through a numpy copy of the policy MLP (``NumpyMLP``) when it has one.
    """

    def __init__(self, net: ActorCritic, explore: bool):
        self.net = net
        self.explore = explore
        self._rows = np.arange(0)
        vector_mlp = isinstance(getattr(net, "torso", None), nn.Identity) and hasattr(net, "pi")
        self._np_pi = NumpyMLP.build(net.pi) if vector_mlp else None

    def log_probs(self, obs: np.ndarray) -> np.ndarray:
        if self._np_pi is not None and obs.dtype == np.float32 and self._np_pi.valid():
            return log_softmax(self._np_pi(obs))
        with torch.inference_mode():
            return torch.log_softmax(self.net.logits(torch.as_tensor(obs)), -1).numpy()

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        logp = self.log_probs(obs)
        if self.explore:
            action = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
        else:
            action = np.argmax(logp, axis=-1)
        if len(self._rows) != len(action):
            self._rows = np.arange(len(action))
        return ActionOut(action, logp[self._rows, action])
