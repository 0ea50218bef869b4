"""dqn's modules: the online Q-network and its target copy (learner-only), and the actors'
policy: epsilon-greedy, or with ``soft_beta`` Boltzmann (exp(beta Q)) where not random."""

from __future__ import annotations

from rlcore.networks.export import q_network_spec
from rlcore.networks.value import QNetwork, values_of
from rlcore.policies.sampling import BoltzmannPolicy, EpsilonGreedyPolicy, acting_network


def make_modules(cfg, spaces) -> dict:
    q = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)
    target = QNetwork(spaces, tuple(cfg.hidden_sizes), 1, cfg.dueling)  # the core syncs it
    return {"q": q, "target_q": target}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    net = acting_network(modules, cfg, explore)
    cls = BoltzmannPolicy if getattr(cfg, "soft_beta", None) is not None else EpsilonGreedyPolicy
    return cls(values_of(net), net.num_actions, cfg, explore)


def numpy_policy(modules: dict, cfg, spaces):
    return q_network_spec(modules["q"], "q", "first",
                          boltzmann=getattr(cfg, "soft_beta", None) is not None)
