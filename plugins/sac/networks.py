"""sac's modules: a tanh-squashed Gaussian actor, twin Q critics and their targets (kept by the
core), the log temperature; and the actors' sampling policy."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcore.networks.export import ops_of
from rlcore.networks.value import QCritic, relu_mlp
from rlcore.policies.numpy_nets import NetSpec
from rlcore.policies.numpy_policy import NumpyPolicySpec
from rlcore.policies.sampling import SquashedGaussianPolicy


class SquashedGaussianActor(nn.Module):
    """u ~ N(mu(s), sigma(s)^2), a = tanh(u) in [-1, 1]^d, with the log-density of a:
    log pi(a|s) = sum_i [log N(u_i) - log(1 - tanh(u_i)^2)], the second term written as
    2 (log 2 - u - softplus(-2u)) for numerical stability."""

    def __init__(self, spaces, hidden: tuple[int, ...], log_std_min: float, log_std_max: float):
        super().__init__()
        self.action_shape = tuple(spaces.action_shape)
        self.act_dim = int(np.prod(self.action_shape))
        obs_dim = int(np.prod(spaces.obs_shape))
        self.net = nn.Sequential(*relu_mlp([obs_dim, *hidden, 2 * self.act_dim]))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs.float().flatten(1)).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def numpy_forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            mean, log_std = self(torch.as_tensor(obs))
        return mean.numpy(), log_std.numpy()

    def sample(self, obs: torch.Tensor, rng: torch.Generator | None, with_std: bool = False):
        """(a, log pi(a|s)) with the reparameterization trick; noise from ``rng``. ``with_std``:
        also sigma(s) averaged over the batch and the action dimensions (detached), the metric
        ``policy_std``."""
        mean, log_std = self(obs)
        std = log_std.exp()
        eps = torch.randn(mean.shape, generator=rng, device=mean.device)
        u = mean + std * eps
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        a = torch.tanh(u).view(-1, *self.action_shape)
        return (a, log_prob, std.detach().mean()) if with_std else (a, log_prob)


class LogAlpha(nn.Module):
    def __init__(self, init_alpha: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(math.log(init_alpha)))


def make_modules(cfg, spaces) -> dict:
    hidden = tuple(cfg.hidden_sizes)
    return {"policy": SquashedGaussianActor(spaces, hidden, cfg.log_std_min, cfg.log_std_max),
            "q1": QCritic(spaces, hidden), "q2": QCritic(spaces, hidden),
            "target_q1": QCritic(spaces, hidden), "target_q2": QCritic(spaces, hidden),
            "log_alpha": LogAlpha(cfg.init_alpha)}


def make_policy(modules: dict, cfg, spaces, explore: bool) -> SquashedGaussianPolicy:
    """a = tanh(mu + sigma eps), eps from the actor's numpy generator; tanh(mu) when evaluating."""
    actor = modules["policy"]
    return SquashedGaussianPolicy(actor.numpy_forward, actor.action_shape, cfg, spaces, explore)


def numpy_policy(modules: dict, cfg, spaces) -> NumpyPolicySpec:
    """The actor's network on obs.float().flatten(1); its output's halves are (mean, log std)."""
    actor = modules["policy"]
    net = NetSpec("policy", (("float32",), ("flatten",), *ops_of(actor.net, "net.")))
    return NumpyPolicySpec("rlcore.policies.numpy_policy:squashed_gaussian", {"net": net},
                           {"action_shape": actor.action_shape, "log_std_min": actor.log_std_min,
                            "log_std_max": actor.log_std_max})
