"""Target-network updates: hard copies and Polyak averaging."""

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
