"""Network building blocks shared by plugins: MLPs, the Nature CNN, actor-critics for discrete
(categorical) and Box (diagonal Gaussian) actions, and the stochastic policies that actors run.
Algorithm math lives in the plugins."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rlcore.policies.numpy_nets import NetSpec, NumpyNet, log_softmax
from rlcore.policies.sampling import Categorical, DiagonalGaussian, tanh_log_det_np
from rlcore.types import SpaceSpec

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
    """Categorical policy head and value head. Vector observations get two separate MLPs (the
    value MLP ``value_hidden`` wide when given, else as wide as the policy's); image
    observations share a Nature CNN torso."""

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...] = (64, 64),
                 activation: str = "tanh", out_dim: int | None = None,
                 value_hidden: tuple[int, ...] | None = None):
        super().__init__()
        n_act = spaces.num_actions if out_dim is None else out_dim
        if is_image(spaces):
            self.torso = NatureCNN(spaces.obs_shape[0])
            self.pi = layer_init(nn.Linear(self.torso.out_dim, n_act), 0.01)
            self.v = layer_init(nn.Linear(self.torso.out_dim, 1), 1.0)
        else:
            obs_dim = int(np.prod(spaces.obs_shape))
            self.torso = nn.Flatten() if len(spaces.obs_shape) > 1 else nn.Identity()
            self.pi = mlp([obs_dim, *hidden, n_act], activation, out_gain=0.01)
            v_hidden = hidden if value_hidden is None else value_hidden
            self.v = mlp([obs_dim, *v_hidden, 1], activation, out_gain=1.0)

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
    module's own CPU parameters through shared-memory views (in-place weight loads stay visible),
    evaluated by the actors' ``NumpyNet`` (the same ops, so the same numbers on both paths).

    Why: measured on CartPole with 4-8 envs per worker, torch's per-call overhead made policy
    inference (about 22 us for a 64-64 MLP) cost as much as stepping the envs; this forward
    takes about 12 us. ``build`` returns None for any other module, which then runs in torch.
    """

    def __init__(self, module: nn.Module, net: NumpyNet):
        self.module, self.net = module, net
        self._ptrs = self._pointers()

    def _pointers(self) -> list[int]:
        return [layer.weight.data_ptr() for layer in self.module if isinstance(layer, nn.Linear)]

    @classmethod
    def build(cls, module: nn.Module) -> "NumpyMLP | None":
        if not isinstance(module, nn.Sequential):
            return None
        ops, params = [], {}
        for i, layer in enumerate(module):
            if isinstance(layer, nn.Linear) and layer.weight.device.type == "cpu":
                ops.append(("linear", str(i)))
                params.update({f"{i}.{k}": p.detach().numpy() for k, p in layer.named_parameters()})
            elif isinstance(layer, (nn.Tanh, nn.ReLU)):
                ops.append(("tanh",) if isinstance(layer, nn.Tanh) else ("relu",))
            else:
                return None
        net = NumpyNet(NetSpec("mlp", tuple(ops)))
        net.load({"mlp": params})
        return cls(module, net)

    def valid(self) -> bool:
        """False once the module's parameters were replaced rather than copied into."""
        return self._pointers() == self._ptrs

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.net(x)


class CategoricalPolicy(Categorical):
    """Inference copy of an ``ActorCritic`` (numpy in, numpy out), sampling as
    ``rlcore.policies.sampling.Categorical``. Vector observations go through a numpy copy of
    the policy MLP (``NumpyMLP``) when it has one. (Rollout actors of plugins that export a
    numpy policy run ``rlcore.policies.numpy_policy`` instead, without torch.)"""

    def __init__(self, net: ActorCritic, explore: bool):
        super().__init__(self._log_probs, explore)
        self.net = net
        vector_mlp = isinstance(getattr(net, "torso", None), nn.Identity) and hasattr(net, "pi")
        self._np_pi = NumpyMLP.build(net.pi) if vector_mlp else None

    def _log_probs(self, obs: np.ndarray) -> np.ndarray:
        if self._np_pi is not None and obs.dtype == np.float32 and self._np_pi.valid():
            return log_softmax(self._np_pi(obs))
        with torch.inference_mode():
            return torch.log_softmax(self.net.logits(torch.as_tensor(obs)), -1).numpy()


def tanh_log_det(u):
    """log(1 - tanh(u)^2) computed stably as 2 (log 2 - u - softplus(-2u)); torch or numpy."""
    if isinstance(u, torch.Tensor):
        return 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
    return tanh_log_det_np(u)


class SquashedNormal(torch.distributions.Independent):
    """A diagonal Gaussian over the pre-squash action u whose ``log_prob(u)`` is the density of
    the squashed action tanh(u): log N(u) - sum log(1 - tanh(u)^2) (Haarnoja et al. 2018, app. C).
    The actions stored in fragments are u, so no atanh is ever needed. ``entropy()`` is the
    pre-squash Gaussian's (the squashed one has no closed form); it is what an entropy bonus uses.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value) - tanh_log_det(value).flatten(-len(self.event_shape)).sum(-1)


class GaussianActorCritic(ActorCritic):
    """Diagonal-Gaussian policy for Box actions and a value head (torsos as in ``ActorCritic``).

    The policy MLP outputs the mean; the log standard deviation is a state-independent
    parameter (``log_std_init``, 0 by default). The policy acts in [-1, 1] per dimension, which
    ``GaussianPolicy`` maps onto the env's [low, high]. With ``squash`` the sample u goes through
    tanh (``SquashedNormal``); without it the Gaussian sample is clipped to the bounds only when
    stepping the env, and the unclipped sample is what fragments keep and log-probs score (as
    in Schulman et al.'s and most PPO implementations). Same interface as ``ActorCritic``:
    ``forward`` returns (distribution parameters, value) and ``distribution`` turns the first
    into a ``torch.distributions`` object whose ``log_prob`` takes a batch of stored actions.
    """

    def __init__(self, spaces: SpaceSpec, hidden: tuple[int, ...] = (64, 64),
                 activation: str = "tanh", squash: bool = False, log_std_init: float = 0.0,
                 value_hidden: tuple[int, ...] | None = None):
        self.action_shape = tuple(spaces.action_shape)
        act_dim = int(np.prod(self.action_shape))
        super().__init__(spaces, hidden, activation, out_dim=act_dim, value_hidden=value_hidden)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.squash = squash
        self.low = np.asarray(spaces.action_low, np.float32).reshape(self.action_shape)
        self.high = np.asarray(spaces.action_high, np.float32).reshape(self.action_shape)

    def distribution(self, mean: torch.Tensor) -> torch.distributions.Independent:
        std = self.log_std.exp().expand_as(mean)
        shape = (*mean.shape[:-1], *self.action_shape)
        base = torch.distributions.Normal(mean.reshape(shape), std.reshape(shape), validate_args=False)
        cls = SquashedNormal if self.squash else torch.distributions.Independent
        return cls(base, len(self.action_shape), validate_args=False)


class GaussianPolicy(DiagonalGaussian):
    """Inference copy of a ``GaussianActorCritic`` (numpy in, numpy out), sampling as
    ``rlcore.policies.sampling.DiagonalGaussian`` (u = mean + std * noise; the mean without
    ``explore``)."""

    def __init__(self, net: GaussianActorCritic, explore: bool):
        super().__init__(self._mean, lambda: net.log_std.detach().cpu().numpy(),
                         net.action_shape, net.low, net.high, net.squash, explore)
        self.net = net
        vector_mlp = isinstance(net.torso, nn.Identity)
        self._np_pi = NumpyMLP.build(net.pi) if vector_mlp else None

    def _mean(self, obs: np.ndarray) -> np.ndarray:
        if self._np_pi is not None and obs.dtype == np.float32 and self._np_pi.valid():
            return self._np_pi(obs)
        with torch.inference_mode():
            return self.net.logits(torch.as_tensor(obs)).numpy()


def make_actor_critic(spaces: SpaceSpec, hidden: tuple[int, ...], activation: str,
                      squash: bool = False, log_std_init: float = 0.0,
                      value_hidden: tuple[int, ...] | None = None) -> ActorCritic:
    """The actor-critic for the action space: categorical for discrete, Gaussian for Box."""
    if spaces.action_kind == "box":
        return GaussianActorCritic(spaces, hidden, activation, squash, log_std_init, value_hidden)
    return ActorCritic(spaces, hidden, activation, value_hidden=value_hidden)


def make_actor_policy(net: ActorCritic, explore: bool) -> "CategoricalPolicy | GaussianPolicy":
    return GaussianPolicy(net, explore) if isinstance(net, GaussianActorCritic) else CategoricalPolicy(net, explore)


def policy_std(net: ActorCritic) -> dict[str, float]:
    """The metric ``policy_std`` of a Box policy: its Gaussian's standard deviation averaged over
    the action dimensions, in the policy's [-1, 1] range (before squashing and rescaling to the
    env's bounds); nothing for a categorical policy."""
    if not isinstance(net, GaussianActorCritic):
        return {}
    return {"policy_std": float(net.log_std.detach().exp().mean())}
