"""trpo's modules: an actor-critic with separate policy and value MLPs on vector observations.

The natural-gradient step moves ``policy_params`` only; Adam moves ``value_params`` only. On
image observations the Nature CNN torso is shared and counts as policy parameters (the value
regression then trains only the value head on the policy's features)."""

from __future__ import annotations

import torch

from rlcore.networks.blocks import ActorCritic, GaussianActorCritic, make_actor_critic, make_actor_policy
from rlcore.networks.export import actor_critic_spec


def make_modules(cfg, spaces) -> dict:
    return {"ac": make_actor_critic(spaces, tuple(cfg.hidden_sizes), cfg.activation, cfg.squash,
                                    cfg.log_std_init,
                                    value_hidden=cfg.value_hidden_sizes)}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    return make_actor_policy(modules["ac"], explore)


def numpy_policy(modules: dict, cfg, spaces):
    return actor_critic_spec(modules["ac"], "ac")


def policy_params(net: ActorCritic) -> list:
    extra = [net.log_std] if isinstance(net, GaussianActorCritic) else []
    return [*net.torso.parameters(), *net.pi.parameters(), *extra]


def base_distribution(net: ActorCritic, obs: torch.Tensor) -> torch.distributions.Distribution:
    """The policy's distribution before any squashing: categorical, or the diagonal Gaussian
    over the pre-tanh sample (tanh is a bijection, so the KL is the same as after it)."""
    if isinstance(net, GaussianActorCritic):
        mean = net.logits(obs)
        normal = torch.distributions.Normal(mean, net.log_std.exp().expand_as(mean))
        return torch.distributions.Independent(normal, 1)
    return net.distribution(net.logits(obs))


def value_params(net: ActorCritic) -> list:
    return list(net.v.parameters())
