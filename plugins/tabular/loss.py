"""Tabular TD control: Q-learning (Watkins 1989) and SARSA (Rummery & Niranjan 1994).

    Q(s, a) <- Q(s, a) + alpha * (target - Q(s, a))
    target  = r                                    if the episode terminated at s'
            = r + gamma * max_a' Q(s', a')         Q-learning
            = r + gamma * Q(s', a')                SARSA, a' the action taken next
            = r + gamma * V_beta(s')               soft Q-learning, the free energy
    V_beta(s') = beta^-1 log sum_a' pi0(a') exp(beta Q(s', a'))  with the uniform prior pi0
               (solvers.soft_value: an exact log-sum-exp; the fixed point is soft value
               iteration's Q, solvers.soft_value_iteration)

A truncated episode (time limit) bootstraps like any other step: s' is the true last
observation (``Fragment.final_obs``), not the reset observation that follows it. SARSA's a'
exists only where the fragment holds the next step of the same episode; after a truncation and
at the fragment's last step it was never (or not yet) taken, so those two cases use its
expectation under the epsilon-greedy behaviour policy, (1 - eps) max_a' Q + eps mean_a' Q
(the Expected SARSA target, which has the same fixed point Q^pi).
``step_size: visits`` uses alpha = N(s, a) ** -visit_power; at power 1 and gamma = 0 each Q(s, a)
is the running mean of the rewards seen, the classic sample-average bandit learner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlcore.plugins.tabular.networks import state_rows
from rlcore.plugins.tabular.solvers import soft_value

TERMINAL, NEXT_ACTION, EXPECTED = 0, 1, 2  # how each transition bootstraps


@dataclass
class Transitions:
    """Flat transitions in time order (fragment by fragment, step by step, sub-env by sub-env)."""

    state: np.ndarray  # [M] int64
    action: np.ndarray  # [M] int64
    reward: np.ndarray  # [M] float64
    next_state: np.ndarray  # [M] int64 (meaningless where kind == TERMINAL)
    next_action: np.ndarray  # [M] int64, -1 unless kind == NEXT_ACTION
    kind: np.ndarray  # [M] int8: TERMINAL, NEXT_ACTION or EXPECTED


def fragment_transitions(frag) -> Transitions:
    T, N = frag.reward.shape
    obs = np.asarray(frag.obs, np.int64).reshape(T, N)
    action = np.asarray(frag.action, np.int64).reshape(T, N)
    next_state = np.concatenate([obs[1:], np.asarray(frag.bootstrap_obs, np.int64).reshape(1, N)])
    next_action = np.concatenate([action[1:], np.full((1, N), -1, np.int64)])
    for i, (t, n) in enumerate(frag.final_idx):
        next_state[t, n] = int(np.asarray(frag.final_obs[i]).reshape(-1)[0])
    done = frag.terminated | frag.truncated
    next_action[done] = -1
    kind = np.where(frag.terminated, TERMINAL, np.where(next_action >= 0, NEXT_ACTION, EXPECTED))
    return Transitions(obs.ravel(), action.ravel(), frag.reward.astype(np.float64).ravel(),
                       next_state.ravel(), next_action.ravel(), kind.astype(np.int8).ravel())


def prepare_batch(modules, fragments, cfg, state, rng=None) -> Transitions:
    parts = [fragment_transitions(f) for f in fragments]
    tr = Transitions(*(np.concatenate([getattr(p, k) for p in parts]) for k in Transitions.__annotations__))
    rows = modules["q"].q.shape[0]
    state_rows(tr.state, rows, "learner")
    state_rows(tr.next_state[tr.kind != TERMINAL], rows, "learner")
    return tr


def td_targets(q: np.ndarray, tr: Transitions, method: str, gamma: float, epsilon: float,
               beta: float = 1.0) -> np.ndarray:
    """Every transition's target against the table ``q`` as it is (vectorized)."""
    nxt = q[tr.next_state]
    if method == "q_learning":
        boot = nxt.max(axis=1)
    elif method == "soft_q_learning":
        boot = soft_value(nxt, np.full(nxt.shape, 1.0 / nxt.shape[1]), beta)
    else:
        taken = nxt[np.arange(len(tr.kind)), np.maximum(tr.next_action, 0)]
        expected = (1.0 - epsilon) * nxt.max(axis=1) + epsilon * nxt.mean(axis=1)
        boot = np.where(tr.kind == NEXT_ACTION, taken, expected)
    return tr.reward + gamma * np.where(tr.kind == TERMINAL, 0.0, boot)


def apply_td_updates(q: np.ndarray, counts: np.ndarray, tr: Transitions, cfg,
                     epsilon: float) -> np.ndarray:
    """Apply the TD updates one transition at a time, in order, to ``q`` and ``counts`` (in
    place; each target sees every earlier update). Returns the TD errors."""
    td = np.empty(len(tr.kind))
    sarsa, soft, gamma = cfg.method == "sarsa", cfg.method == "soft_q_learning", cfg.gamma
    by_visits, power = cfg.step_size == "visits", cfg.visit_power
    uniform = np.full((1, q.shape[1]), 1.0 / q.shape[1])
    for i, (s, a, r, s2, a2, k) in enumerate(zip(tr.state.tolist(), tr.action.tolist(),
                                                  tr.reward.tolist(), tr.next_state.tolist(),
                                                  tr.next_action.tolist(), tr.kind.tolist())):
        if k == TERMINAL:
            target = r
        elif soft:
            target = r + gamma * float(soft_value(q[s2][None], uniform, cfg.beta)[0])
        elif not sarsa:
            target = r + gamma * q[s2].max()
        elif k == NEXT_ACTION:
            target = r + gamma * q[s2, a2]
        else:
            target = r + gamma * ((1.0 - epsilon) * q[s2].max() + epsilon * q[s2].mean())
        counts[s, a] += 1
        td[i] = target - q[s, a]
        q[s, a] += (counts[s, a] ** -power if by_visits else cfg.alpha) * td[i]
    return td


def loss(modules, batch: Transitions, cfg, state, rng=None):
    """The mean squared TD error of ``batch`` against the current table (a diagnostic: the
    ``update`` hook, not gradient descent, changes the table)."""
    table = modules["q"]
    q = table.q.detach().cpu().numpy()
    td = (td_targets(q, batch, cfg.method, cfg.gamma, float(table.epsilon), cfg.beta)
          - q[batch.state, batch.action])
    td_sq = torch.as_tensor(float(np.mean(td ** 2)) if len(td) else 0.0)
    return {"td": td_sq}, {"td_error_sq": td_sq}
