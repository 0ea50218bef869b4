"""tabular: Q-learning, SARSA and soft (entropy-regularized) Q-learning on a Q table, for Discrete observation spaces.

The core's optimizer step is replaced by the ``update`` hook, which applies the TD updates of
the fragments' transitions in time order and sets the epsilon the actors explore with next.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.plugin import AlgorithmPlugin, DataSpec
from rlcore.plugins.tabular import bounds
from rlcore.plugins.tabular.config import TabularConfig
from rlcore.plugins.tabular.loss import apply_td_updates, loss, prepare_batch
from rlcore.plugins.tabular.networks import make_modules, make_policy


def epsilon_at(cfg, progress: float) -> float:
    """Linear decay from ``epsilon`` to ``epsilon_final`` over ``epsilon_decay_fraction``."""
    if cfg.epsilon_decay_fraction <= 0:
        return cfg.epsilon_final if progress > 0 else cfg.epsilon
    frac = min(progress / cfg.epsilon_decay_fraction, 1.0)
    return cfg.epsilon + frac * (cfg.epsilon_final - cfg.epsilon)


def update(learner, batch) -> dict[str, float]:
    table, cfg = learner.modules["q"], learner.cfg
    q = table.q.detach().cpu().numpy().astype(np.float64)
    counts = table.counts.cpu().numpy().copy()
    td = apply_td_updates(q, counts, batch, cfg, float(table.epsilon))
    stats = {}
    if cfg.bounds != "none":  # project into bounds on Q* (bounds.py)
        bounds.record(table, batch)
        lower, upper = bounds.tighten(table, q, cfg)
        projected = np.clip(q, lower, upper)
        finite = np.isfinite(upper - lower)
        stats = {"bounds_moved": float((projected != q).sum()),
                 "bounds_gap_mean": float((upper - lower)[finite].mean()) if finite.any() else 0.0}
        q = projected
    epsilon = epsilon_at(cfg, learner.state.get("progress", 0.0))
    with torch.no_grad():
        table.q.copy_(torch.from_numpy(q))
        table.counts.copy_(torch.from_numpy(counts))
        table.epsilon.fill_(epsilon)
    visited = counts.sum(axis=1) > 0
    return {"td_error_abs": float(np.abs(td).mean()) if len(td) else 0.0,
            "epsilon": epsilon, "states_visited": float(visited.sum()),
            "q_max_mean": float(q[visited].max(axis=1).mean()) if visited.any() else 0.0, **stats}


PLUGIN = AlgorithmPlugin(
    name="tabular",
    description="Q-learning / SARSA / soft Q-learning on a Q table (Discrete observations; "
                "epsilon-greedy, UCB or Boltzmann)",
    config_cls=TabularConfig,
    data_spec=DataSpec(regime="trajectory", needs_log_prob=False, obs_kind="discrete"),
    make_modules=make_modules,
    make_policy=make_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    update=update,
    learner_defaults={"device": "cpu", "num_epochs": 1, "minibatch_size": 0},
)
