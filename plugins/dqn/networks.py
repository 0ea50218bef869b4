"""dqn's modules: the online Q-network and its target copy (learner-only), and the
epsilon-greedy actor policy."""

from __future__ import annotations

from rlcore.networks.value import EpsilonGreedyPolicy, QNetwork, values_of


def make_modules(cfg, spaces) -> dict:
    q = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)
    target = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)  # the core syncs it
    return {"q": q, "target_q": target}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    net = modules["q"]
    return EpsilonGreedyPolicy(values_of(net), net.num_actions, cfg, explore)
