"""Soft Actor-Critic (Haarnoja et al. 2018, with the automatic temperature of the 2018
applications paper) on replay. With alpha = exp(log_alpha), a' ~ pi(.|s') and the n-step
return G, discount d from replay:

    y          = G + d * (min_j Q_target_j(s', a') - alpha log pi(a'|s'))
    critic     = sum_j mean_i w_i (Q_j(s_i, a_i) - y_i)^2 / 2          (group "critic": q1, q2)
    actor      = mean_i [alpha log pi(a_i|s_i) - min_j Q_j(s_i, a_i)],  a_i ~ pi(.|s_i)
                                                                       (group "actor": policy)
    alpha loss = -mean_i log_alpha (log pi(a_i|s_i) + target_entropy)   (group "alpha")

Each term steps only its group (the core's optimizer groups), so the actor term needs no
detached critic; the core keeps the target critics (Polyak ``tau`` every update); every sample
draws from the learner's generator ``rng``.
"""

from __future__ import annotations

import torch

from rlcore.learner.batches import replay_batch


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, next(modules["q1"].parameters()).device)


def target_entropy(cfg, modules) -> float:
    if cfg.target_entropy is not None:
        return cfg.target_entropy
    return -float(modules["policy"].act_dim)


def loss(modules, batch, cfg, state, rng=None):
    policy, q1, q2 = modules["policy"], modules["q1"], modules["q2"]
    log_alpha = modules["log_alpha"].value
    alpha = log_alpha.exp().detach()
    with torch.no_grad():
        next_a, next_logp = policy.sample(batch.next_obs, rng)
        q_next = torch.min(modules["target_q1"](batch.next_obs, next_a),
                           modules["target_q2"](batch.next_obs, next_a))
        y = batch.reward + batch.discount * (q_next - alpha * next_logp)
    q1_sa, q2_sa = q1(batch.obs, batch.action), q2(batch.obs, batch.action)
    critic = 0.5 * ((batch.weight * (q1_sa - y).pow(2)).mean()
                    + (batch.weight * (q2_sa - y).pow(2)).mean())
    a, logp, std = policy.sample(batch.obs, rng, with_std=True)
    actor = (alpha * logp - torch.min(q1(batch.obs, a), q2(batch.obs, a))).mean()
    losses = {"critic": critic, "actor": actor}
    if cfg.autotune_alpha:
        losses["alpha"] = -(log_alpha * (logp.detach() + target_entropy(cfg, modules))).mean()
    metrics = {"critic_loss": critic.detach(), "actor_loss": actor.detach(),
               "alpha": alpha, "entropy": -logp.detach().mean(), "policy_std": std,
               "q_mean": q1_sa.mean().detach(),
               "td_abs": (q1_sa - y).abs().detach()}
    return losses, metrics


def optimizer_groups(cfg) -> dict:
    groups = {"critic": ("q1", "q2"), "actor": ("policy",)}
    if cfg.autotune_alpha:
        groups["alpha"] = ("log_alpha",)
    return groups


TARGETS = {"target_q1": "q1", "target_q2": "q2"}
