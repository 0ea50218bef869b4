"""ddpg / td3 modules: a deterministic tanh actor, one or two Q critics, their target copies
(learner-only), and the actors' Gaussian-noise policy."""

from __future__ import annotations

from rlcore.networks.export import deterministic_actor_spec
from rlcore.networks.value import DeterministicActor, QCritic
from rlcore.policies.sampling import NoisyDeterministicPolicy


def _with_target(name: str, make) -> dict:
    return {name: make(), f"target_{name}": make()}  # the core copies and freezes the target


def make_modules(cfg, spaces) -> dict:
    hidden = tuple(cfg.hidden_sizes)
    modules = _with_target("actor", lambda: DeterministicActor(spaces, hidden))
    modules.update(_with_target("critic", lambda: QCritic(spaces, hidden)))
    if cfg.twin_critics:
        modules.update(_with_target("critic2", lambda: QCritic(spaces, hidden)))
    return modules


def make_policy(modules: dict, cfg, spaces, explore: bool):
    actor = modules["actor"]
    return NoisyDeterministicPolicy(actor.numpy_forward, actor.action_shape, cfg, spaces, explore)


def numpy_policy(modules: dict, cfg, spaces):
    return deterministic_actor_spec(modules["actor"], "actor")
