"""ddpg / td3 modules: a deterministic tanh actor, one or two Q critics, their target copies
(learner-only), and the actors' Gaussian-noise policy."""

from __future__ import annotations

import numpy as np

from rlcore.types import ActionOut
from rlcore.networks.value import DeterministicActor, QCritic


def _with_target(name: str, make) -> dict:
    return {name: make(), f"target_{name}": make()}  # the core copies and freezes the target


def make_modules(cfg, spaces) -> dict:
    hidden = tuple(cfg.hidden_sizes)
    modules = _with_target("actor", lambda: DeterministicActor(spaces, hidden))
    modules.update(_with_target("critic", lambda: QCritic(spaces, hidden)))
    if cfg.twin_critics:
        modules.update(_with_target("critic2", lambda: QCritic(spaces, hidden)))
    return modules


class NoisyDeterministicPolicy:
    """mu(s) + N(0, exploration_noise^2) clipped to [-1, 1] (uniformly random for the first
    ``random_steps`` env steps); the env steps with it rescaled to its bounds."""

    def __init__(self, actor: DeterministicActor, cfg, spaces, explore: bool):
        self.actor, self.cfg, self.spaces, self.explore = actor, cfg, spaces, explore
        self.random = explore and cfg.random_steps > 0

    def set_schedule(self, env_steps: int, actor_id: int, num_actors: int) -> None:
        self.random = self.explore and env_steps < self.cfg.random_steps

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if self.random:
            a = rng.uniform(-1.0, 1.0, (len(obs), *self.actor.action_shape))
        else:
            a = self.actor.numpy_forward(obs)
            if self.explore and self.cfg.exploration_noise > 0:
                a = a + self.cfg.exploration_noise * rng.standard_normal(a.shape)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        return ActionOut(a, env_action=self.spaces.to_env_action(a))


def make_policy(modules: dict, cfg, spaces, explore: bool):
    return NoisyDeterministicPolicy(modules["actor"], cfg, spaces, explore)
