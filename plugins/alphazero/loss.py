"""The AlphaZero loss (Kaplan's notes eq. 8.6.1, with the paper's L2 term):

    L = (z - v)^2 - sum_a pi(a) log p(a|s) + c |theta|^2

z is the game's outcome from the view of the player to move at s, pi the search's visit-count
distribution there. log p is taken over the legal moves only (illegal logits are masked).
"""

from __future__ import annotations

import torch

from rlcore.learner.batches import Batch, concat_samples, to_batch
from rlcore.plugins.alphazero.networks import masked_log_softmax


def prepare_batch(modules, samples, cfg, state, rng=None) -> Batch:
    """``samples``: dicts of numpy arrays from the game store (obs, pi, z, legal)."""
    device = next(modules["net"].parameters()).device
    return to_batch(concat_samples(samples, ("obs", "pi", "z", "legal")), device,
                    dtypes={"obs": torch.float32, "pi": torch.float32, "z": torch.float32,
                            "legal": torch.bool})


def loss(modules, batch, cfg, state, rng=None):
    net = modules["net"]
    logits, value = net(batch.obs)
    log_p = masked_log_softmax(logits, batch.legal)
    policy_loss = -(batch.pi * log_p).sum(-1).mean()
    value_loss = (batch.z - value).pow(2).mean()
    l2 = sum(p.pow(2).sum() for p in net.parameters() if p.dim() > 1)
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    metrics = {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(),
               "policy_entropy": entropy.detach(),
               "target_entropy": -(batch.pi * batch.pi.clamp_min(1e-12).log()).sum(-1).mean()}
    return {"policy": policy_loss, "value": value_loss, "l2": cfg.weight_decay * l2}, metrics
