"""pg's modules: one actor-critic (policy logits + value baseline) and its inference policy."""

from __future__ import annotations

from rlcore.networks import ActorCritic, CategoricalPolicy


def make_modules(cfg, spaces) -> dict:
    return {"ac": ActorCritic(spaces, tuple(cfg.hidden_sizes), cfg.activation)}


def make_policy(modules: dict, cfg, explore: bool) -> CategoricalPolicy:
    return CategoricalPolicy(modules["ac"], explore)
