"""trpo's modules: an actor-critic with separate policy and value MLPs on vector observations.

The natural-gradient step moves ``policy_params`` only; Adam moves ``value_params`` only. On
image observations the Nature CNN torso is shared and counts as policy parameters (the value
regression then trains only the value head on the policy's features)."""

from __future__ import annotations

from rlcore.networks import ActorCritic, CategoricalPolicy


def make_modules(cfg, spaces) -> dict:
    return {"ac": ActorCritic(spaces, tuple(cfg.hidden_sizes), cfg.activation)}


def make_policy(modules: dict, cfg, explore: bool) -> CategoricalPolicy:
    return CategoricalPolicy(modules["ac"], explore)


def policy_params(net: ActorCritic) -> list:
    return [*net.torso.parameters(), *net.pi.parameters()]


def value_params(net: ActorCritic) -> list:
    return list(net.v.parameters())
