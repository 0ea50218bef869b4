"""DDPG (Lillicrap et al. 2016) and TD3 (Fujimoto et al. 2018) on replay.

    a'  = mu_target(s') [+ clip(N(0, target_noise^2), -c, c), clipped to [-1, 1]]   (smoothing)
    y   = G + d * Q_target(s', a')         (twin critics: min of the two target critics)
    critic loss = mean_i w_i (Q(s_i, a_i) - y_i)^2   (each critic)
    actor loss  = -mean_i Q_1(s_i, mu(s_i)), every ``policy_delay`` critic steps

The two terms step their own optimizer groups (``critic``, ``actor``): the actor's term moves
only the actor, with no detaching by hand. The core keeps the target networks and takes their
Polyak step (``tau``) every ``target_update_period`` updates, which follows ``policy_delay``
unless set. The smoothing noise is drawn from the learner's generator ``rng`` (seeded from the
experiment, checkpointed), so restores repeat an update exactly.
"""

from __future__ import annotations

import torch

from rlcore.learner.batches import replay_batch


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, next(modules["actor"].parameters()).device)


def _critics(modules, prefix: str = "") -> list:
    names = ["critic", "critic2"] if f"{prefix}critic2" in modules else ["critic"]
    return [modules[prefix + n] for n in names]


def actor_step_due(cfg, state) -> bool:
    return (int(state.get("num_updates", 0)) + 1) % cfg.policy_delay == 0


def critic_targets(modules, batch, cfg, state, rng=None) -> torch.Tensor:
    with torch.no_grad():
        next_action = modules["target_actor"](batch.next_obs)
        if cfg.target_noise > 0:
            noise = torch.randn(next_action.shape, generator=rng, device=next_action.device)
            noise = (cfg.target_noise * noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = (next_action + noise).clamp(-1.0, 1.0)
        q_next = torch.stack([c(batch.next_obs, next_action) for c in _critics(modules, "target_")])
        return batch.reward + batch.discount * q_next.min(dim=0).values


def loss(modules, batch, cfg, state, rng=None):
    y = critic_targets(modules, batch, cfg, state, rng)
    qs = [c(batch.obs, batch.action) for c in _critics(modules)]
    critic_loss = sum((batch.weight * (q - y).pow(2)).mean() for q in qs)
    losses = {"critic": critic_loss}
    metrics = {"critic_loss": critic_loss.detach(), "q_mean": qs[0].mean().detach(),
               "td_abs": (qs[0] - y).abs().detach()}
    if actor_step_due(cfg, state):  # the actor group's term: moves the actor only
        losses["actor"] = -modules["critic"](batch.obs, modules["actor"](batch.obs)).mean()
        metrics["actor_loss"] = losses["actor"].detach()
    return losses, metrics


def init_state(cfg) -> dict:
    return {"num_updates": 0.0}


def after_update(modules, batch, cfg, state, metrics):
    return {**state, "num_updates": state.get("num_updates", 0.0) + 1.0}


def optimizer_groups(cfg) -> dict:
    return {"critic": ("critic", "critic2") if cfg.twin_critics else ("critic",),
            "actor": ("actor",)}


def targets(cfg) -> dict:
    names = ["actor", "critic"] + (["critic2"] if cfg.twin_critics else [])
    return {f"target_{n}": n for n in names}
