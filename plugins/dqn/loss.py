"""Deep Q-learning (Mnih et al. 2015) with double Q (van Hasselt et al. 2016) as an option.

With the n-step return G and discount d = gamma^m (0 after a termination) from replay:
  target = G + d * Q_target(s', argmax_a Q_online(s', a))   (double_q)
  target = G + d * max_a Q_target(s', a)                      (otherwise)
  target = G + d * beta^-1 log mean_a exp(beta Q_target(s', a))   (soft_beta: soft Q-learning,
           the free energy of the next state under a uniform prior; Haarnoja et al. 2017)
  loss   = mean_i w_i * huber(Q(s_i, a_i) - target_i)           (w: importance weights)
soft_bounds: clip: each soft target is clipped into [L_i, U_i] (soft_target_bounds).
munchausen_alpha: a > 0 adds a * clip(tau log pi_target(a_i|s_i), l0, 0) to G (Vieillard et al.
2020, Munchausen RL; tau = 1/beta, pi_target = softmax(beta Q_target(s_i, .))); without
soft_beta, the tau -> 0 limit a * clip(Q_target(s_i, a_i) - max_a Q_target(s_i, a), l0, 0):
advantage learning (Baird 1999; Bellemare et al. 2016), which widens the action gap.
value_range: [lo, hi] clips every target into the values the task's returns can have.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlcore.learner.batches import replay_batch
from rlcore.ops.targets import clip_to_value_range, munchausen_bonus


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, next(modules["q"].parameters()).device)


def bootstrap_values(q_next_target: torch.Tensor, q_next_online: torch.Tensor | None) -> torch.Tensor:
    """max_a Q_target(s', a), or with online values Q_target(s', argmax_a Q_online(s', a))."""
    if q_next_online is None:
        return q_next_target.max(dim=-1).values
    best = q_next_online.argmax(dim=-1, keepdim=True)
    return q_next_target.gather(-1, best).squeeze(-1)


def soft_bootstrap_values(q_next_target: torch.Tensor, beta: float) -> torch.Tensor:
    """beta^-1 log mean_a exp(beta Q(s', a)): torch's logsumexp factors out the largest term,
    so it is exact and finite for any beta * Q."""
    num_actions = q_next_target.shape[-1]
    return (torch.logsumexp(beta * q_next_target, dim=-1) - math.log(num_actions)) / beta


def soft_target_bounds(q_sa: torch.Tensor, v_next: torch.Tensor, reward: torch.Tensor,
                       discount: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on the soft optimum Q*(s_i, a_i) from one network's values on a batch (Adamczyk et
    al., "Boosting Soft Q-Learning by Bounding", RLC 2024, the double-sided bound of their
    Theorem 1 with batch extrema): with TQ_i = r_i + d_i V(s'_i) and the residual
    Delta_i = TQ_i - Q(s_i, a_i),
        L_i = TQ_i + d_i / (1 - d_i) min(min_j Delta_j, 0),
        U_i = TQ_i + d_i / (1 - d_i) max(max_j Delta_j, 0).
    Exact bounds need the extrema over every (s, a) and the expected backup; the batch's sampled
    residuals stand in for them, as in the paper's deep experiments. d_i = 0 (a termination)
    gives L_i = U_i = r_i."""
    backup = reward + discount * v_next
    delta = backup - q_sa
    scale = discount / (1.0 - discount).clamp_min(1e-6)
    lower = backup + scale * delta.min().clamp(max=0.0)
    upper = backup + scale * delta.max().clamp(min=0.0)
    return lower, upper


def clip_to_bounds(target, q_sa, q_next_online, batch, beta: float):
    """The target clipped into the online network's bounds, and the fraction clipped. (The
    target network's own bounds always contain the target, which is its TQ_i, so they cannot
    clip it.)"""
    lower, upper = soft_target_bounds(q_sa, soft_bootstrap_values(q_next_online, beta),
                                      batch.reward, batch.discount)
    clipped = torch.minimum(torch.maximum(target, lower), upper)
    return clipped, (clipped != target).float().mean()


def td_loss(td: torch.Tensor, cfg) -> torch.Tensor:
    zero = torch.zeros_like(td)
    if cfg.loss == "huber":
        return F.huber_loss(td, zero, reduction="none", delta=cfg.huber_delta)
    return 0.5 * td.pow(2)


def loss(modules, batch, cfg, state, rng=None):
    q = modules["q"](batch.obs)[..., 0]
    q_sa = q.gather(1, batch.action.long().view(-1, 1)).squeeze(1)
    with torch.no_grad():
        q_next = modules["target_q"](batch.next_obs)[..., 0]
        if cfg.soft_beta is not None:
            boot = soft_bootstrap_values(q_next, cfg.soft_beta)
        else:
            online = modules["q"](batch.next_obs)[..., 0] if cfg.double_q else None
            boot = bootstrap_values(q_next, online)
        target = batch.reward + batch.discount * boot
        extra = {}
        if cfg.munchausen_alpha > 0:
            bonus = munchausen_bonus(modules["target_q"](batch.obs)[..., 0], batch.action,
                                     cfg.soft_beta, cfg.munchausen_alpha, cfg.munchausen_clip)
            target = target + bonus
            extra["munchausen_bonus"] = bonus.mean()
        if cfg.value_range is not None:
            target = clip_to_value_range(target, cfg.value_range, extra)
        if cfg.soft_bounds == "clip":
            target, extra["bounds_clipped"] = clip_to_bounds(
                target, q_sa.detach(), modules["q"](batch.next_obs)[..., 0], batch,
                cfg.soft_beta)
    td = q_sa - target
    value_loss = (batch.weight * td_loss(td, cfg)).mean()
    return {"td": value_loss}, {"q_mean": q_sa.mean().detach(), "td_abs": td.abs().detach(),
                                **extra}
