"""DDPG (Lillicrap et al. 2016) and TD3 (Fujimoto et al. 2018) on replay.

    a'  = mu_target(s') [+ clip(N(0, target_noise^2), -c, c), clipped to [-1, 1]]   (smoothing)
    y   = G + d * Q_target(s', a')         (twin critics: min of the two target critics)
    critic loss = mean_i w_i (Q(s_i, a_i) - y_i)^2   (each critic)
    actor loss  = -mean_i Q_1(s_i, mu(s_i)), every ``policy_delay`` critic steps, with the
                  critic's parameters held fixed; the targets take a Polyak step at the same time.

The smoothing noise comes from a generator seeded with the update count, so an update is a
function of the parameters, the batch and the plugin state (restores repeat it exactly).
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from rlcore.learner.batches import replay_batch
from rlcore.ops.targets import polyak_update


def prepare_batch(modules, sample, cfg, state):
    return replay_batch(sample, next(modules["actor"].parameters()).device)


def _critics(modules, prefix: str = "") -> list:
    names = ["critic", "critic2"] if f"{prefix}critic2" in modules else ["critic"]
    return [modules[prefix + n] for n in names]


def actor_step_due(cfg, state) -> bool:
    return (int(state.get("num_updates", 0)) + 1) % cfg.policy_delay == 0


def critic_targets(modules, batch, cfg, state) -> torch.Tensor:
    with torch.no_grad():
        next_action = modules["target_actor"](batch.next_obs)
        if cfg.target_noise > 0:
            gen = torch.Generator(device=next_action.device)
            gen.manual_seed(int(state.get("num_updates", 0)))
            noise = torch.randn(next_action.shape, generator=gen, device=next_action.device)
            noise = (cfg.target_noise * noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = (next_action + noise).clamp(-1.0, 1.0)
        q_next = torch.stack([c(batch.next_obs, next_action) for c in _critics(modules, "target_")])
        return batch.reward + batch.discount * q_next.min(dim=0).values


def loss(modules, batch, cfg, state):
    y = critic_targets(modules, batch, cfg, state)
    qs = [c(batch.obs, batch.action) for c in _critics(modules)]
    critic_loss = sum((batch.weight * (q - y).pow(2)).mean() for q in qs)
    losses = {"critic": critic_loss}
    metrics = {"critic_loss": critic_loss.detach(), "q_mean": qs[0].mean().detach(),
               "td_abs": (qs[0] - y).abs().detach()}
    if actor_step_due(cfg, state):
        critic = modules["critic"]
        fixed = {k: p.detach() for k, p in critic.named_parameters()}
        q_pi = functional_call(critic, fixed, (batch.obs, modules["actor"](batch.obs)))
        losses["actor"] = -q_pi.mean()
        metrics["actor_loss"] = losses["actor"].detach()
    return losses, metrics


def init_state(cfg) -> dict:
    return {"num_updates": 0.0}


def after_update(modules, batch, cfg, state, metrics):
    if actor_step_due(cfg, state):
        for name in [k for k in modules if not k.startswith("target_")]:
            polyak_update(modules[f"target_{name}"], modules[name], cfg.tau)
    return {**state, "num_updates": state.get("num_updates", 0.0) + 1.0}
