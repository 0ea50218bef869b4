"""Bounded soft Q-learning (Adamczyk, Makarenko, Tiomkin, Kulkarni, "Boosting Soft Q-Learning by
Bounding", RLC 2024): any estimate Q gives double-sided bounds on the soft optimum Q*
(``solvers.soft_q_bounds``; with Delta = TQ - Q the soft Bellman residual,
TQ + gamma/(1-gamma) min(min Delta, 0) <= Q* <= TQ + gamma/(1-gamma) max(max Delta, 0)).
The learner has no model, so T is the certainty-equivalent one of the transitions seen so far
(``solvers.empirical_model``: counts N(s, a, s'), the tries that ended the episode, mean
rewards) and Delta's extremes are taken
over the pairs tried. Every update (i) records the batch in the model, (ii) computes the bounds
from the table as it is and, once the model is complete and deterministic (below), keeps pair by
pair the tightest seen so far (each is a bound on the same Q*); (iii) projects the table into them.

Projection can only move an entry towards Q* while Q* lies inside; with deterministic dynamics
the empirical model is exact for every tried pair, so the bounds hold once every pair reachable
from the bounded ones has been tried. Before that, Delta's extremes miss pairs and a kept bound
can exclude Q* for good (measured: one seed of five stuck at error 0.21 when bounds were kept
from the first update), so until every action of every state reached has been tried the bounds
are recomputed from scratch at every update. With stochastic dynamics they carry the model's sampling
error, and a bound kept forever would keep Q* out forever (measured: stuck at max-norm error
0.14 on the slippery maze), so once any pair has led to two outcomes the bounds are recomputed
from scratch at every update instead of intersected. Sampled TD targets are not clipped: the
bounds hold for their expectation, and clipping stochastic samples biases the running mean
(measured: error 0.16 against 0.05 unclipped at 50k steps on the slippery maze).
``benchmarks/soft_q_convergence.py`` measures both mazes and counts how often Q* fell outside.
"""

from __future__ import annotations

import numpy as np

from rlcore.plugins.tabular.loss import TERMINAL
from rlcore.plugins.tabular.solvers import empirical_model, soft_q_bounds


def record(table, tr) -> None:
    """Add a batch's transitions to the table's model buffers (in place); a terminated
    transition counts towards the end column S."""
    counts = table.next_counts.numpy()
    end = np.where(tr.kind == TERMINAL, counts.shape[-1] - 1, tr.next_state)
    np.add.at(counts, (tr.state, tr.action, end), 1)
    np.add.at(table.reward_sum.numpy(), (tr.state, tr.action), tr.reward)


def tighten(table, q: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray]:
    """The bounds from ``q`` and the model: intersected with the table's tightest so far and
    stored back when ``keepable``, else returned as they are with the stored ones reset to
    -inf/+inf; (lower, upper) [S, A], -inf/+inf for pairs not yet tried."""
    counts = table.next_counts.numpy()
    P, R, terminal, tried = empirical_model(counts, table.reward_sum.numpy())
    q_end = np.concatenate([q, np.zeros((1, q.shape[1]))])  # the end state's value is 0
    lo, hi = soft_q_bounds(P, R, terminal, cfg.gamma, cfg.beta, q_end, mask=tried)
    lower, upper = table.lower.numpy(), table.upper.numpy()
    if keepable(counts):
        np.maximum(lower, lo[:-1], out=lower)
        np.minimum(upper, hi[:-1], out=upper)
        return lower, upper
    # not sure to hold (an incomplete or stochastic model): used once, never stored, so a later
    # intersection starts from bounds that hold
    lower[:], upper[:] = -np.inf, np.inf
    return lo[:-1], hi[:-1]


def deterministic_so_far(next_counts: np.ndarray) -> bool:
    """Every tried pair has led to one outcome only (the empirical model is then exact)."""
    return bool(((next_counts > 0).sum(-1) <= 1).all())


def keepable(next_counts: np.ndarray) -> bool:
    """Bounds may be kept (intersected over time) only when they are sure to hold: the model is
    deterministic so far and complete, every action tried in every state reached (Delta's
    extremes then cover every pair a bounded one leads to)."""
    tried = next_counts.sum(-1) > 0
    reached = tried.any(-1) | (next_counts[..., :-1].sum((0, 1)) > 0)
    return deterministic_so_far(next_counts) and bool(tried[reached].all())
