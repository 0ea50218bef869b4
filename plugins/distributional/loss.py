"""Distributional Q-learning: C51 (Bellemare et al. 2017) and QR-DQN (Dabney et al. 2018).

C51: Z(s, a) is categorical on fixed atoms z_1..z_K (v_min..v_max). The target distribution of
r + d Z(s', a*) is projected back onto the atoms (each shifted atom's mass is split between its
two neighbours in proportion to closeness; beyond the ends it lands on the end atoms), and the
loss is the cross-entropy to it.

QR-DQN: Z(s, a) is N quantiles theta_i at midpoints tau_i = (2i + 1) / 2N; the loss is the
quantile Huber loss sum_i mean_j |tau_i - 1{u_ij < 0}| L_kappa(u_ij) / kappa with
u_ij = (r + d theta'_j) - theta_i; with value_range [lo, hi] each target sample
r + d theta'_j is clipped into it (as dqn's targets; c51's support does this by its ends).

a* = argmax of the expected values of the target network (of the online one with double_q).
munchausen_alpha: a > 0 adds a * clip(E Z_target(s, a) - max_b E Z_target(s, b), l0, 0) to r
(advantage learning on the expected values; the reward shift of Munchausen-IQN, Vieillard et
al. 2020, in its tau -> 0 limit).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcore.learner.batches import replay_batch
from rlcore.ops.targets import clip_to_value_range, munchausen_bonus


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, next(modules["q"].parameters()).device)


def categorical_projection(next_probs: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor,
                           atoms: torch.Tensor, extra: dict | None = None) -> torch.Tensor:
    """Project the distribution of r + d z (probabilities ``next_probs`` [B, K] on ``atoms`` [K])
    onto ``atoms``; returns [B, K] probabilities. With ``extra``, the batch mean shares of mass
    whose r + d z falls below / above the support (what it clips, as value_range's) go in as
    ``target_below_range`` / ``target_above_range``."""
    v_min, v_max, K = atoms[0], atoms[-1], atoms.numel()
    dz = (v_max - v_min) / (K - 1)
    tz = reward[:, None] + discount[:, None] * atoms[None, :]
    if extra is not None:
        extra["target_below_range"] = (next_probs * (tz < v_min)).sum(-1).mean()
        extra["target_above_range"] = (next_probs * (tz > v_max)).sum(-1).mean()
    tz = tz.clamp(v_min, v_max)
    b = ((tz - v_min) / dz).clamp(0, K - 1)
    lower, upper = b.floor().long(), b.ceil().long()
    w_upper = b - lower.float()
    w_lower = 1.0 - w_upper  # b on an atom: all its mass stays there (lower == upper)
    out = torch.zeros_like(next_probs)
    out.scatter_add_(1, lower, next_probs * w_lower)
    out.scatter_add_(1, upper, next_probs * w_upper)
    return out


def quantile_huber_loss(pred: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """Per-sample loss for quantiles ``pred`` [B, N] at midpoints and ``target`` samples [B, M]."""
    n = pred.shape[1]
    tau = (torch.arange(n, device=pred.device, dtype=pred.dtype) + 0.5) / n
    u = target[:, None, :] - pred[:, :, None]  # [B, N, M]
    huber = F.huber_loss(u, torch.zeros_like(u), reduction="none", delta=kappa)
    weight = (tau[None, :, None] - (u.detach() < 0).float()).abs()
    return (weight * huber / kappa).mean(dim=2).sum(dim=1)


def shifted_reward(modules, batch, cfg, expected, metrics: dict) -> torch.Tensor:
    """r, plus the Munchausen term with munchausen_alpha > 0 (into ``metrics`` too)."""
    if cfg.munchausen_alpha <= 0:
        return batch.reward
    bonus = munchausen_bonus(expected(modules["target_q"](batch.obs)), batch.action, None,
                             cfg.munchausen_alpha, cfg.munchausen_clip)
    metrics["munchausen_bonus"] = bonus.mean()
    return batch.reward + bonus


def _next_action(modules, next_obs, expected, double_q: bool, target_out):
    source = modules["q"](next_obs) if double_q else target_out
    return expected(source).argmax(dim=-1)


def c51_loss(modules, batch, cfg, state, rng=None):
    atoms = torch.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms, device=batch.reward.device)
    logits = modules["q"](batch.obs)
    log_p = F.log_softmax(logits[torch.arange(len(logits)), batch.action.long()], dim=-1)
    with torch.no_grad():
        target_logits = modules["target_q"](batch.next_obs)
        expected = lambda out: (F.softmax(out, -1) * atoms).sum(-1)  # noqa: E731
        a_star = _next_action(modules, batch.next_obs, expected, cfg.double_q, target_logits)
        next_p = F.softmax(target_logits[torch.arange(len(logits)), a_star], dim=-1)
        extra = {}
        reward = shifted_reward(modules, batch, cfg, expected, extra)
        target = categorical_projection(next_p, reward, batch.discount, atoms, extra)
    xent = -(target * log_p).sum(-1)
    q_mean = (log_p.exp() * atoms).sum(-1).mean()
    return ({"xent": (batch.weight * xent).mean()},
            {"q_mean": q_mean.detach(), "td_abs": xent.detach(), **extra})


def qr_loss(modules, batch, cfg, state, rng=None):
    theta = modules["q"](batch.obs)[torch.arange(len(batch.action)), batch.action.long()]
    with torch.no_grad():
        target_theta = modules["target_q"](batch.next_obs)
        a_star = _next_action(modules, batch.next_obs, lambda out: out.mean(-1), cfg.double_q,
                              target_theta)
        next_theta = target_theta[torch.arange(len(a_star)), a_star]
        extra = {}
        reward = shifted_reward(modules, batch, cfg, lambda out: out.mean(-1), extra)
        target = reward[:, None] + batch.discount[:, None] * next_theta
        if cfg.value_range is not None:
            target = clip_to_value_range(target, cfg.value_range, extra)
    per_sample = quantile_huber_loss(theta, target, cfg.kappa)
    td = (target.mean(-1) - theta.mean(-1)).abs()
    return ({"quantile": (batch.weight * per_sample).mean()},
            {"q_mean": theta.mean().detach(), "td_abs": td.detach(), **extra})


# the target network follows the online one on DQN's schedule (period or Polyak tau)
