"""Target-network updates (hard copies and Polyak averaging) and the Munchausen term of targets."""

from __future__ import annotations

import torch


@torch.no_grad()
def polyak_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, for parameters and float buffers.
    tau = 1 is a hard copy."""
    for t, o in zip(target.state_dict().values(), online.state_dict().values()):
        if t.dtype.is_floating_point:
            t.mul_(1.0 - tau).add_(o, alpha=tau)
        else:
            t.copy_(o)


def target_update(target: torch.nn.Module, online: torch.nn.Module, updates: int,
                  period: int, tau: float) -> bool:
    """After optimizer step number ``updates`` (1-based): a Polyak step with ``tau`` every
    ``period`` updates (tau = 1: a hard copy every ``period`` updates). Returns whether it ran."""
    if updates % period:
        return False
    polyak_update(target, online, tau)
    return True


def munchausen_bonus(q_target_s: torch.Tensor, action: torch.Tensor, beta: float | None,
                     alpha: float, clip_low: float) -> torch.Tensor:
    """alpha * clip(tau log pi(a|s), clip_low, 0), pi = softmax(beta Q(s, .)), tau = 1/beta
    (Vieillard et al. 2020, Munchausen RL): tau log pi(a|s) = Q(s, a) - beta^-1 logsumexp_b
    beta Q(s, b). beta None: the tau -> 0 limit Q(s, a) - max_b Q(s, b), advantage learning's
    gap term (Baird 1999; Bellemare et al. 2016). ``q_target_s`` [B, A] (expected values for a
    distributional network), ``action`` [B]. Always <= 0, and 0 at the best action."""
    q_sa = q_target_s.gather(-1, action.long().view(-1, 1)).squeeze(-1)
    if beta is None:
        log_pi = q_sa - q_target_s.max(dim=-1).values
    else:
        log_pi = q_sa - torch.logsumexp(beta * q_target_s, dim=-1) / beta
    return alpha * log_pi.clamp(min=clip_low, max=0.0)


@torch.no_grad()
def clip_to_value_range(target: torch.Tensor, value_range, extra: dict) -> torch.Tensor:
    """``target`` clipped into ``algo.value_range`` [low, high], recording in ``extra`` the
    fractions of target entries that were below and above it (``target_below_range``,
    ``target_above_range``: the transition regime warns when a range looks wrong for the env)."""
    low, high = value_range
    extra["target_below_range"] = (target < low).float().mean()
    extra["target_above_range"] = (target > high).float().mean()
    return target.clamp(low, high)
