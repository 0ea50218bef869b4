"""REINFORCE with reward-to-go and a learned baseline (Williams 1992; Kaplan's notes section 3).

    grad J = E[ sum_t grad log pi(a_t|s_t) * (G_t - b(s_t)) ],   G_t = sum_{t'>=t} gamma^{t'-t} r_t'

The baseline b = V_phi is regressed on G_t; it lowers the variance without biasing the gradient.
"""

from __future__ import annotations

from rlcore.networks.blocks import policy_std
from rlcore.ops.trajectory import actor_critic_batch


def prepare_batch(modules, fragments, cfg, state, rng=None):
    net = modules["ac"]
    lam = cfg.gae_lambda if cfg.advantage == "gae" else None
    return actor_critic_batch(net.value, fragments, cfg.gamma, lam, cfg.normalize_advantage,
                              next(net.parameters()).device)


def loss(modules, batch, cfg, state, rng=None):
    net = modules["ac"]
    logits, value = net(batch.obs)
    dist = net.distribution(logits)
    log_prob = dist.log_prob(batch.action)
    entropy = dist.entropy().mean()
    policy_loss = -(log_prob * batch.advantage).mean()
    value_loss = 0.5 * (value - batch.returns).pow(2).mean()
    losses = {"policy": policy_loss, "value": cfg.vf_coef * value_loss,
              "entropy": -cfg.ent_coef * entropy}
    metrics = {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(),
               "entropy": entropy.detach(), **policy_std(net)}
    return losses, metrics
