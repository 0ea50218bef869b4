"""Plugins broken on purpose, importable by Ray actors as ``tests.broken_plugins:NAME``."""

import dataclasses

import numpy as np

from rlcore.plugins.ppo import plugin as ppo
from rlcore.types import ActionOut


class UnseededPolicy:
    """PPO's policy, but its actions come from a generator of its own, seeded by nothing the
    run controls (the worker's ``rng`` argument is ignored)."""

    def __init__(self, inner):
        self.inner, self.own = inner, np.random.default_rng()

    def act(self, obs, rng):
        out = self.inner.act(obs, rng)
        return ActionOut(self.own.integers(0, 2, len(obs)), out.log_prob, out.env_action)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _unseeded_policy(modules, cfg, spaces, explore):
    return UnseededPolicy(ppo.PLUGIN.make_policy(modules, cfg, spaces, explore))


# (no numpy policy: its actors run this make_policy, as a plugin that only has one would)
UNSEEDED_POLICY = dataclasses.replace(ppo.PLUGIN, name="ppo_unseeded_policy",
                                      make_policy=_unseeded_policy, numpy_policy=None)
