"""Trust region policy optimization (Schulman et al. 2015): the pure pieces.

With r = pi(a|s) / pi_old(a|s) and GAE advantages A (standardized per batch):
  surrogate  L(theta) = E[r A]                       (maximized by the natural-gradient step)
  trust region  mean_s KL(pi_old(.|s) || pi_theta(.|s)) <= max_kl, exact for a categorical or a diagonal Gaussian
  value loss  0.5 (V(s) - R)^2                       (minimized by Adam, value parameters only)
"""

from __future__ import annotations

import torch

from rlcore.ops.trajectory import actor_critic_batch
from rlcore.plugins.trpo.networks import base_distribution


def prepare_batch(modules, fragments, cfg, state, rng=None):
    net = modules["ac"]
    return actor_critic_batch(net.value, fragments, cfg.gamma, cfg.gae_lambda,
                              cfg.normalize_advantage, next(net.parameters()).device)


def surrogate(net, batch) -> torch.Tensor:
    """E[pi(a|s) / pi_old(a|s) A], with pi_old the behaviour policy's recorded log-probability."""
    log_prob = net.distribution(net.logits(batch.obs)).log_prob(batch.action)
    return ((log_prob - batch.log_prob).exp() * batch.advantage).mean()


def mean_kl(net, obs: torch.Tensor, old: torch.distributions.Distribution) -> torch.Tensor:
    """mean_s KL(pi_old(.|s) || pi_theta(.|s)), exact: categorical or diagonal Gaussian. ``old``
    is the distribution at the step's start, detached (a Gaussian's log-std included)."""
    return torch.distributions.kl_divergence(old, base_distribution(net, obs)).mean()


def value_loss(net, batch) -> torch.Tensor:
    return 0.5 * (net.value(batch.obs) - batch.returns).pow(2).mean()


def loss(modules, batch, cfg, state, rng=None):
    """Both objectives as losses (for inspection; ``plugin.update`` steps them separately)."""
    net = modules["ac"]
    surr = surrogate(net, batch)
    v_loss = value_loss(net, batch)
    return ({"policy": -surr, "value": v_loss},
            {"surrogate": surr.detach(), "value_loss": v_loss.detach()})
