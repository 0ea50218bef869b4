"""dqn's modules: the online Q-network and its target copy (learner-only), and the actors'
policy: epsilon-greedy, or with ``soft_beta`` Boltzmann (exp(beta Q)) where not random."""

from __future__ import annotations

import numpy as np

from rlcore.networks.value import EpsilonGreedyPolicy, QNetwork, values_of
from rlcore.ops.actions import boltzmann_sample
from rlcore.types import ActionOut


def make_modules(cfg, spaces) -> dict:
    q = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)
    target = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)  # the core syncs it
    return {"q": q, "target_q": target}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    net = modules["q"]
    cls = BoltzmannPolicy if getattr(cfg, "soft_beta", None) is not None else EpsilonGreedyPolicy
    return cls(values_of(net), net.num_actions, cfg, explore)


class BoltzmannPolicy(EpsilonGreedyPolicy):
    """Soft Q-learning's behaviour: a uniformly random action with probability epsilon (the
    same schedule as epsilon-greedy), else a sample of pi(a|s) proportional to exp(beta Q(s, a));
    greedy when evaluating."""

    def __init__(self, values, num_actions: int, cfg, explore: bool):
        super().__init__(values, num_actions, cfg, explore)
        self.beta = cfg.soft_beta

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if not self.explore:
            return super().act(obs, rng)
        n = len(obs)
        action = rng.integers(0, self.num_actions, n)
        rows = np.flatnonzero(rng.random(n) >= self.epsilon)
        if len(rows):
            action[rows] = boltzmann_sample(self.values(obs[rows]), self.beta, rng)
        return ActionOut(action)
