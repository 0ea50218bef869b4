"""Deep Q-learning (Mnih et al. 2015) with double Q (van Hasselt et al. 2016) as an option.

With the n-step return G and discount d = gamma^m (0 after a termination) from replay:
  target = G + d * Q_target(s', argmax_a Q_online(s', a))   (double_q)
  target = G + d * max_a Q_target(s', a)                      (otherwise)
  loss   = mean_i w_i * huber(Q(s_i, a_i) - target_i)           (w: importance weights)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcore.learner.batches import replay_batch


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, next(modules["q"].parameters()).device)


def bootstrap_values(q_next_target: torch.Tensor, q_next_online: torch.Tensor | None) -> torch.Tensor:
    """max_a Q_target(s', a), or with online values Q_target(s', argmax_a Q_online(s', a))."""
    if q_next_online is None:
        return q_next_target.max(dim=-1).values
    best = q_next_online.argmax(dim=-1, keepdim=True)
    return q_next_target.gather(-1, best).squeeze(-1)


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
        online = modules["q"](batch.next_obs)[..., 0] if cfg.double_q else None
        target = batch.reward + batch.discount * bootstrap_values(q_next, online)
    td = q_sa - target
    value_loss = (batch.weight * td_loss(td, cfg)).mean()
    return {"td": value_loss}, {"q_mean": q_sa.mean().detach(), "td_abs": td.abs().detach()}
