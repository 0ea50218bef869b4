"""Proximal policy optimization (Schulman et al. 2017).

With r = pi(a|s) / pi_old(a|s) and advantages A (GAE, standardized per batch):
  clip:  L = -E[min(r A, clip(r, 1-eps, 1+eps) A)]
  kl:    L = -E[r A] + beta * KL(pi_old || pi); after each update beta doubles when the KL
         exceeded 1.5 x target and halves when it fell below target / 1.5.
KL(pi_old || pi) is estimated from the sampled actions with k3 = (r - 1) - log r (unbiased,
non-negative). The value loss is 0.5 (V - R)^2, optionally clipped around the old values.
"""

from __future__ import annotations

import torch

from rlcore.networks.blocks import policy_std
from rlcore.ops.schedule import scheduled
from rlcore.ops.trajectory import actor_critic_batch


def prepare_batch(modules, fragments, cfg, state, rng=None):
    net = modules["ac"]
    return actor_critic_batch(net.value, fragments, cfg.gamma, cfg.gae_lambda,
                              cfg.normalize_advantage, next(net.parameters()).device)


def clip_coef(cfg, state) -> float:
    return max(scheduled(cfg.clip_coef, cfg.clip_schedule, state.get("progress", 0.0)), 1e-8)


def surrogate(log_prob, old_log_prob, advantage, cfg, state):
    """Policy loss and its diagnostics for either variant."""
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    if cfg.variant == "clip":
        eps = clip_coef(cfg, state)
        unclipped = ratio * advantage
        clipped = ratio.clamp(1.0 - eps, 1.0 + eps) * advantage
        policy_loss = -torch.min(unclipped, clipped).mean()
        clip_frac = ((ratio - 1.0).abs() > eps).float().mean()
    else:
        policy_loss = -(ratio * advantage).mean() + state["kl_coef"] * approx_kl
        clip_frac = torch.zeros(())
    return policy_loss, {"approx_kl": approx_kl.detach(), "clip_frac": clip_frac.detach()}


def value_loss(value, old_value, returns, cfg):
    if cfg.vf_clip_coef is None:
        return 0.5 * (value - returns).pow(2).mean()
    clipped = old_value + (value - old_value).clamp(-cfg.vf_clip_coef, cfg.vf_clip_coef)
    return 0.5 * torch.max((value - returns).pow(2), (clipped - returns).pow(2)).mean()


def loss(modules, batch, cfg, state, rng=None):
    net = modules["ac"]
    logits, value = net(batch.obs)
    dist = net.distribution(logits)
    policy_loss, metrics = surrogate(dist.log_prob(batch.action), batch.log_prob,
                                     batch.advantage, cfg, state)
    v_loss = value_loss(value, batch.value, batch.returns, cfg)
    entropy = dist.entropy().mean()
    losses = {"policy": policy_loss, "value": cfg.vf_coef * v_loss, "entropy": -cfg.ent_coef * entropy}
    metrics.update(policy_loss=policy_loss.detach(), value_loss=v_loss.detach(),
                   entropy=entropy.detach(), **policy_std(net))
    return losses, metrics


def init_state(cfg) -> dict:
    return {"kl_coef": cfg.kl_coef} if cfg.variant == "kl" else {}


@torch.no_grad()
def after_update(modules, batch, cfg, state, metrics):
    """Adaptive KL coefficient: measure KL(pi_old || pi_new) on the whole batch after the update."""
    if cfg.variant != "kl":
        return state
    net = modules["ac"]
    log_prob = net.distribution(net.logits(batch.obs)).log_prob(batch.action)
    log_ratio = log_prob - batch.log_prob
    kl = float(((log_ratio.exp() - 1.0) - log_ratio).mean())
    state = dict(state)
    state["kl_coef"] = adapt_kl_coef(state["kl_coef"], kl, cfg.kl_target)
    metrics["kl_after_update"] = kl
    metrics["kl_coef"] = state["kl_coef"]
    return state


def adapt_kl_coef(beta: float, kl: float, target: float) -> float:
    if kl > 1.5 * target:
        return beta * 2.0
    if kl < target / 1.5:
        return beta / 2.0
    return beta
