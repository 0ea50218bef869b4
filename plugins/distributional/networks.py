"""c51 / qrdqn modules: a Q-network with one output per atom (logits) or quantile for each
action, its target copy, and the epsilon-greedy policy on the expected values."""

from __future__ import annotations

import numpy as np

from rlcore.networks.export import q_network_spec
from rlcore.networks.value import EpsilonGreedyPolicy, QNetwork
from rlcore.policies.sampling import acting_network


def support(cfg) -> np.ndarray:
    return np.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms, dtype=np.float32)


def _pair(cfg, spaces, outputs: int) -> dict:
    q = QNetwork(spaces, tuple(cfg.hidden_sizes), outputs, cfg.dueling)
    target = QNetwork(spaces, tuple(cfg.hidden_sizes), outputs, cfg.dueling)
    return {"q": q, "target_q": target}


def make_c51_modules(cfg, spaces) -> dict:
    return _pair(cfg, spaces, cfg.num_atoms)


def make_qr_modules(cfg, spaces) -> dict:
    return _pair(cfg, spaces, cfg.num_quantiles)


def make_c51_policy(modules: dict, cfg, spaces, explore: bool):
    net, z = acting_network(modules, cfg, explore), support(cfg)

    def values(obs):
        logits = net.numpy_forward(obs)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        return (p * z).sum(-1) / p.sum(-1)

    return EpsilonGreedyPolicy(values, net.num_actions, cfg, explore)


def make_qr_policy(modules: dict, cfg, spaces, explore: bool):
    net = acting_network(modules, cfg, explore)
    return EpsilonGreedyPolicy(lambda obs: net.numpy_forward(obs).mean(-1), net.num_actions, cfg,
                               explore)


def c51_numpy_policy(modules: dict, cfg, spaces):
    return q_network_spec(modules["q"], "q", "expectation", support(cfg))


def qr_numpy_policy(modules: dict, cfg, spaces):
    return q_network_spec(modules["q"], "q", "mean")
