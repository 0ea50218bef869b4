"""Exact dynamic programming on a known finite MDP: the ground truth tabular learners are
tested against. Pure numpy functions of (P [S, A, S'], R [S, A], terminal [S] bool, gamma).

Terminal states have value 0 and are never bootstrapped from. Both solvers return
(V [S], Q [S, A], policy [S] int64), the policy greedy in Q (lowest action index among ties).
"""

from __future__ import annotations

import numpy as np


def _check(P: np.ndarray, R: np.ndarray, terminal: np.ndarray, gamma: float):
    P, R = np.asarray(P, np.float64), np.asarray(R, np.float64)
    terminal = np.asarray(terminal, bool)
    S, A = R.shape
    if P.shape != (S, A, S) or terminal.shape != (S,):
        raise ValueError(f"P {P.shape}, R {R.shape}, terminal {terminal.shape}: need P [S, A, S], "
                         "R [S, A], terminal [S]")
    if not np.allclose(P.sum(-1), 1.0):
        raise ValueError("every row P[s, a, :] must sum to 1")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma={gamma} must lie in [0, 1]")
    return P, R, terminal


def q_from_v(P: np.ndarray, R: np.ndarray, terminal: np.ndarray, V: np.ndarray,
             gamma: float) -> np.ndarray:
    """One Bellman backup: Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s'] (V = 0 at terminals)."""
    Q = R + gamma * P @ np.where(terminal, 0.0, V)
    Q[terminal] = 0.0
    return Q


def value_iteration(P, R, terminal, gamma: float, tol: float = 1e-12, max_iter: int = 1_000_000):
    """Iterate V <- max_a (R + gamma P V) until the largest change is below ``tol``."""
    P, R, terminal = _check(P, R, terminal, gamma)
    V = np.zeros(R.shape[0])
    for _ in range(max_iter):
        V_new = q_from_v(P, R, terminal, V, gamma).max(axis=1)
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            break
    else:
        raise RuntimeError(f"value iteration did not converge to tol={tol} in {max_iter} sweeps "
                           "(gamma=1 with a policy that never terminates?)")
    Q = q_from_v(P, R, terminal, V, gamma)
    return V, Q, Q.argmax(axis=1)


def evaluate_policy(P, R, terminal, policy: np.ndarray, gamma: float) -> np.ndarray:
    """V^pi exactly, by solving (I - gamma P_pi) V = R_pi on the non-terminal states."""
    P, R, terminal = _check(P, R, terminal, gamma)
    S = R.shape[0]
    rows = np.arange(S)
    live = ~terminal
    P_pi, R_pi = P[rows, policy][np.ix_(live, live)], R[rows, policy][live]
    V = np.zeros(S)
    V[live] = np.linalg.solve(np.eye(int(live.sum())) - gamma * P_pi, R_pi)
    return V


def policy_iteration(P, R, terminal, gamma: float, tol: float = 1e-12, max_iter: int = 10_000):
    """Howard's policy iteration: exact evaluation, then greedy improvement that keeps the
    current action unless another is better by more than ``tol`` (so it cannot cycle on ties)."""
    P, R, terminal = _check(P, R, terminal, gamma)
    policy = np.zeros(R.shape[0], np.int64)
    rows = np.arange(R.shape[0])
    for _ in range(max_iter):
        V = evaluate_policy(P, R, terminal, policy, gamma)
        Q = q_from_v(P, R, terminal, V, gamma)
        better = Q.max(axis=1) > Q[rows, policy] + tol
        if not better.any():
            return V, Q, Q.argmax(axis=1)
        policy = np.where(better, Q.argmax(axis=1), policy)
    raise RuntimeError(f"policy iteration did not stabilize in {max_iter} iterations")


def bellman_residual(P, R, terminal, V: np.ndarray, gamma: float) -> float:
    """max_s |V(s) - max_a (R + gamma P V)(s, a)|: zero exactly at V*."""
    return float(np.abs(V - q_from_v(P, R, terminal, V, gamma).max(axis=1)).max())
