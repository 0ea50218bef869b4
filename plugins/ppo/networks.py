"""ppo's modules: an actor-critic (separate MLPs, or a shared Nature CNN on images), categorical
for discrete actions and diagonal Gaussian for Box actions."""

from __future__ import annotations

from rlcore.networks.blocks import make_actor_critic, make_actor_policy
from rlcore.networks.export import actor_critic_spec


def make_modules(cfg, spaces) -> dict:
    return {"ac": make_actor_critic(spaces, tuple(cfg.hidden_sizes), cfg.activation,
                                    cfg.squash, cfg.log_std_init,
                                    value_hidden=cfg.value_hidden_sizes)}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    return make_actor_policy(modules["ac"], explore)


def numpy_policy(modules: dict, cfg, spaces):
    return actor_critic_spec(modules["ac"], "ac")
