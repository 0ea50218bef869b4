"""Exact dynamic programming on a known finite MDP: the ground truth tabular learners are
tested against. Pure numpy functions of (P [S, A, S'], R [S, A], terminal [S] bool, gamma).

Terminal states have value 0 and are never bootstrapped from. ``value_iteration`` and
``policy_iteration`` return (V [S], Q [S, A], policy [S] int64), the policy greedy in Q (lowest
action index among ties). The entropy-regularized solvers below (soft value iteration, the
tilted matrix, soft relative value iteration) return Boltzmann policies as probabilities [S, A].
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


def _fixed_point(step, x: np.ndarray, tol: float, max_iter: int, failure: str,
                 change=lambda new, old: np.abs(new - old).max()) -> np.ndarray:
    """Iterate ``x <- step(x)`` until ``change(new, old) < tol``; RuntimeError(``failure``,
    with tol and max_iter) when it does not settle."""
    for _ in range(max_iter):
        new = step(x)
        settled = change(new, x) < tol
        x = new
        if settled:
            return x
    raise RuntimeError(f"{failure.format(tol=tol, max_iter=max_iter)}")


def q_from_v(P: np.ndarray, R: np.ndarray, terminal: np.ndarray, V: np.ndarray,
             gamma: float) -> np.ndarray:
    """One Bellman backup: Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s'] (V = 0 at terminals)."""
    Q = R + gamma * P @ np.where(terminal, 0.0, V)
    Q[terminal] = 0.0
    return Q


def value_iteration(P, R, terminal, gamma: float, tol: float = 1e-12, max_iter: int = 1_000_000):
    """Iterate V <- max_a (R + gamma P V) until the largest change is below ``tol``."""
    P, R, terminal = _check(P, R, terminal, gamma)
    V = _fixed_point(lambda V: q_from_v(P, R, terminal, V, gamma).max(axis=1),
                     np.zeros(R.shape[0]), tol, max_iter,
                     "value iteration did not converge to tol={tol} in {max_iter} sweeps "
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


# ---------------------------------------------------------------- entropy-regularized (soft)
#
# With a prior policy pi0 and inverse temperature beta, the entropy-regularized objective
# E[sum_t gamma^t (r_t - beta^-1 log(pi(a_t|s_t) / pi0(a_t|s_t)))] has the soft Bellman equation
#     Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V(s'),
#     V(s)    = beta^-1 log sum_a pi0(a|s) exp(beta Q(s, a))        (a free energy),
# and the Boltzmann policy pi*(a|s) = pi0(a|s) exp(beta (Q(s, a) - V(s))).
# beta -> infinity recovers value iteration (V = max over the prior's support); beta -> 0 the
# prior's own values (V = sum_a pi0 Q).


def _prior(prior, S: int, A: int) -> np.ndarray:
    """pi0 [S, A] (uniform when None); rows must be distributions."""
    if prior is None:
        return np.full((S, A), 1.0 / A)
    prior = np.broadcast_to(np.asarray(prior, np.float64), (S, A))
    if (prior < 0).any() or not np.allclose(prior.sum(-1), 1.0):
        raise ValueError("the prior pi0[s, :] must be a distribution over actions in every state")
    return prior


def soft_value(Q: np.ndarray, prior: np.ndarray, beta: float) -> np.ndarray:
    """V(s) = beta^-1 log sum_a pi0(a|s) exp(beta Q(s, a)), by a log-sum-exp that is exact and
    finite for any beta * Q (the largest term is factored out); actions outside the prior's
    support do not count."""
    with np.errstate(divide="ignore"):
        logits = beta * Q + np.log(prior)
    top = logits.max(axis=-1, keepdims=True)
    return ((top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))) / beta)[..., 0]


def boltzmann_policy(Q: np.ndarray, prior: np.ndarray, beta: float) -> np.ndarray:
    """pi(a|s) = pi0(a|s) exp(beta Q(s, a)) / sum_a' pi0(a'|s) exp(beta Q(s, a'))."""
    with np.errstate(divide="ignore"):
        logits = beta * Q + np.log(prior)
    logits = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def soft_value_iteration(P, R, terminal, gamma: float, beta: float, prior=None,
                         tol: float = 1e-12, max_iter: int = 1_000_000):
    """The entropy-regularized optimum of a discounted MDP: iterate the soft Bellman backup
    until the largest change of V is below ``tol`` (a gamma-contraction, like value iteration).
    Returns (V [S], Q [S, A], pi* [S, A] probabilities); terminal states have V = Q = 0."""
    P, R, terminal = _check(P, R, terminal, gamma)
    if not beta > 0:
        raise ValueError(f"beta={beta} must be > 0 (beta -> 0 is the prior, beta -> inf is "
                         "value_iteration)")
    prior = _prior(prior, *R.shape)
    V = _fixed_point(
        lambda V: np.where(terminal, 0.0,
                           soft_value(q_from_v(P, R, terminal, V, gamma), prior, beta)),
        np.zeros(R.shape[0]), tol, max_iter,
        "soft value iteration did not converge to tol={tol} in {max_iter} sweeps (gamma=1 on "
        "a task that never terminates? use tilted_solution for the average-reward case)")
    Q = q_from_v(P, R, terminal, V, gamma)
    return V, Q, boltzmann_policy(Q, prior, beta)


def _check_continuing(P, R, beta: float):
    """P [S, A, S] and R [S, A] of a continuing MDP as float arrays, and beta > 0."""
    P, R = np.asarray(P, np.float64), np.asarray(R, np.float64)
    S, A = R.shape
    if not beta > 0:
        raise ValueError(f"beta={beta} must be > 0")
    if P.shape != (S, A, S) or not np.allclose(P.sum(-1), 1.0):
        raise ValueError(f"P {P.shape}, R {R.shape}: need P [S, A, S] with rows summing to 1")
    return P, R


def tilted_matrix(P, R, beta: float, prior=None) -> np.ndarray:
    """The tilted matrix over state-action pairs, row (s, a) = s * A + a:
        M[(s, a), (s', a')] = exp(beta R(s, a)) P(s'|s, a) pi0(a'|s').
    (Arriojas et al., Phys. Rev. Research 5, 023085 (2023) write it as P~(s', a' | s, a), the
    same numbers indexed next-pair first, so their left eigenvector is this matrix's right
    one.)"""
    P, R = np.asarray(P, np.float64), np.asarray(R, np.float64)
    S, A = R.shape
    prior = _prior(prior, S, A)
    # Factor out the largest reward: the same eigenvectors, an eigenvalue scaled by
    # exp(-beta max R), so large beta * R cannot overflow.
    tilt = np.exp(beta * (R - R.max()))
    return (tilt[:, :, None, None] * P[:, :, :, None] * prior[None, None, :, :]).reshape(S * A,
                                                                                          S * A)


def tilted_solution(P, R, beta: float, prior=None, controlled_dynamics: bool = False,
                    tol: float = 1e-13, max_iter: int = 1_000_000):
    """The exact optimum of the undiscounted (average-reward) entropy-regularized problem of a
    continuing MDP, from the Perron-Frobenius eigenpair of the tilted matrix M v = rho v:
        theta = beta^-1 log rho               the optimal entropy-regularized reward rate,
        Q(s, a) = beta^-1 log v(s, a) + c      the differential soft Q (c: one free constant),
        pi*(a|s) proportional to pi0(a|s) v(s, a).
    Over a horizon of N steps, beta Q_N(s, a) = N log rho + log v(s, a) + o(1): Q_N is M^N 1.
    An episodic task becomes continuing by sending its terminal states back to the start
    distribution. The eigenpair is found by power iteration on (M + I) (the shift keeps the
    eigenvector and breaks the oscillation of periodic chains); M must be irreducible (every
    pair reachable from every other under the prior) for the answer to be unique.

    Exact for deterministic dynamics. With stochastic P, M^N 1 averages exp(beta * return)
    over next states, i.e. it solves the problem in which the KL penalty also lets the agent
    reshape the transitions (rho then upper-bounds the real rate; on one random 6-state,
    3-action MDP: 0.45 against 0.17). The tilt exp(beta (R - max R)) underflows to 0 where
    beta (max R - R) > ~700; soft_relative_value_iteration works in log space and has no limit.
    Stochastic P is refused unless ``controlled_dynamics=True``; for the
    fixed-dynamics answer use ``soft_relative_value_iteration``.
    Returns (theta, Q [S, A] with max 0, pi* [S, A])."""
    P, R = _check_continuing(P, R, beta)
    S, A = R.shape
    if not controlled_dynamics and not np.isin(P, (0.0, 1.0)).all():
        raise ValueError("stochastic transitions: the tilted matrix's eigenvector solves the "
                         "problem in which the agent also controls the dynamics; pass "
                         "controlled_dynamics=True for that, or use "
                         "soft_relative_value_iteration for fixed dynamics")
    prior = _prior(prior, S, A)
    M = tilted_matrix(P, R, beta, prior)
    v = _fixed_point(lambda v: (M @ v + v) / (M @ v + v).sum(), np.full(S * A, 1.0 / (S * A)),
                     tol, max_iter, "power iteration did not converge to tol={tol} in "
                     "{max_iter} steps (is the tilted matrix irreducible?)",
                     # relative: the small entries count as much as the large ones
                     change=lambda w, v: (np.abs(w - v) / np.maximum(w, 1e-300)).max())
    log_rho = np.log((M @ v).sum() / v.sum()) + beta * R.max()  # the factored maximum back
    if (v <= 0).any():
        raise ValueError("the Perron vector has zero entries: the tilted matrix is reducible "
                         "(some state-action pairs are unreachable under the prior)")
    v = v.reshape(S, A)
    Q = np.log(v) / beta
    Q -= Q.max()
    policy = prior * v
    return float(log_rho / beta), Q, policy / policy.sum(axis=1, keepdims=True)


def soft_relative_value_iteration(P, R, beta: float, prior=None, ref: int = 0,
                                  tol: float = 1e-12, max_iter: int = 1_000_000):
    """The average-reward entropy-regularized optimum of a continuing MDP with fixed (possibly
    stochastic) dynamics, by relative value iteration on the soft backup:
        h <- T h - (T h)(ref),   (T h)(s) = beta^-1 log sum_a pi0(a|s) exp(beta (R + P h)(s, a)),
    with theta = (T h)(ref) - h(ref) at the fixed point; needs a unichain, aperiodic MDP under
    the prior. On deterministic dynamics it agrees with ``tilted_solution``.
    Returns (theta, Q [S, A] with max 0, pi* [S, A])."""
    P, R = _check_continuing(P, R, beta)
    S, A = R.shape
    prior = _prior(prior, S, A)
    def step(h):
        Th = soft_value(R + P @ h, prior, beta)
        return Th - Th[ref]

    h = _fixed_point(step, np.zeros(S), tol, max_iter, "relative value iteration did not "
                     "converge to tol={tol} in {max_iter} sweeps (a periodic or multichain MDP?)")
    Q = R + P @ h
    theta = float(soft_value(Q, prior, beta)[ref] - h[ref])
    return theta, Q - Q.max(), boltzmann_policy(Q, prior, beta)


def soft_q_bounds(P, R, terminal, gamma: float, beta: float, Q, prior=None, mask=None):
    """Double-sided bounds on the soft optimum Q* from any estimate Q (the kind of bound
    Adamczyk et al., "Boosting Soft Q-Learning by Bounding", RLC 2024, clip targets with):
    with T the soft Bellman operator and Delta = TQ - Q over the non-terminal pairs,
        TQ + gamma/(1-gamma) min(min Delta, 0)  <=  Q*  <=  TQ + gamma/(1-gamma) max(max Delta, 0).
    Why: T is monotone and T(Q + c) lies between TQ and TQ + gamma c for a constant c (exactly
    TQ + gamma c without terminal states), so T^{k+1}Q - T^k Q stays within gamma^k times the
    clamped extremes of Delta; summing the geometric series from TQ gives the bounds. They
    close onto Q* as Q approaches it (Delta -> 0). Returns (lower, upper), 0 at terminals.

    ``mask`` [S, A] bool: take Delta's extremes over these pairs only and return -inf/+inf
    outside them (a learner's model of the pairs it has tried; the bounds hold when the mask
    covers every pair reachable from the bounded ones)."""
    P, R, terminal = _check(P, R, terminal, gamma)
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma={gamma}: the bounds need gamma < 1")
    prior = _prior(prior, *R.shape)
    Q = np.asarray(Q, np.float64)
    TQ = q_from_v(P, R, terminal, np.where(terminal, 0.0, soft_value(Q, prior, beta)), gamma)
    live = ~terminal[:, None] & (np.ones(Q.shape, bool) if mask is None else np.asarray(mask, bool))
    delta = (TQ - Q)[live]
    scale = gamma / (1.0 - gamma)
    lower = TQ + scale * min(delta.min(initial=0.0), 0.0)
    upper = TQ + scale * max(delta.max(initial=0.0), 0.0)
    lower[terminal] = upper[terminal] = 0.0
    unbounded = ~live & ~terminal[:, None]
    lower[unbounded], upper[unbounded] = -np.inf, np.inf
    return lower, upper


def empirical_model(next_counts, reward_sum):
    """(P^, R^, terminal, tried) over S + 1 states from a learner's counts: ``next_counts``
    [S, A, S + 1] with N(s, a, s') and, in the last column, the tries that ended the episode
    (the learner never sees where a terminated episode went: it only needs that V = 0 there),
    ``reward_sum`` [S, A]. State S is that absorbing end; P^[s, a, s'] = N(s, a, s') / N(s, a),
    R^ the mean reward over the tries of (s, a); untried pairs get a self-loop with reward 0 and
    ``tried`` False. The certainty-equivalent model a learner can bound its estimates with."""
    counts = np.asarray(next_counts, np.float64)
    S, A, S1 = counts.shape
    if S1 != S + 1 or np.shape(reward_sum) != (S, A):
        raise ValueError(f"next_counts {counts.shape}, reward_sum {np.shape(reward_sum)}: need "
                         "[S, A, S + 1] and [S, A]")
    counts = np.concatenate([counts, np.zeros((1, A, S1))])
    n_sa = counts.sum(-1)
    tried = n_sa > 0
    P = np.where(tried[..., None], counts / np.maximum(n_sa, 1)[..., None],
                 np.eye(S1)[:, None, :].repeat(A, axis=1))
    R = np.zeros((S1, A))
    R[:S] = np.where(tried[:S], np.asarray(reward_sum, np.float64) / np.maximum(n_sa[:S], 1), 0.0)
    terminal = np.zeros(S1, bool)
    terminal[S] = True
    return P, R, terminal, tried


# ---------------------------------------------------------------- prior solutions (AAAI-23)
#
# Adamczyk et al., "Utilizing Prior Solutions for Reward Shaping and Composition in
# Entropy-Regularized RL" (AAAI 2023): for a new reward r~ on the same MDP, the new soft optimum
# is the old one plus a correction,  Q~ = Q + K,  where K is the soft optimum of the reward
# difference r~ - r under the old optimal policy pi* as its prior. (Proof in one line: with
# pi* = pi0 exp(beta (Q - V)), V_pi0(Q + K) = V + V_pi*(K), so Q + K solves Q~'s equation iff K
# solves K = (r~ - r) + gamma P V_pi*(K).) Since a soft value under a prior is at least the
# prior's average, K >= the plain value of pi* on r~ - r: a lower bound from the old solution
# alone, with no new learning.


def evaluate_stochastic_policy(P, R, terminal, policy, gamma: float) -> np.ndarray:
    """Q^pi [S, A] of a stochastic policy [S, A] (no entropy term), by one linear solve:
    Q = R + gamma P V,  V(s) = sum_a pi(a|s) Q(s, a)."""
    P, R, terminal = _check(P, R, terminal, gamma)
    live = ~terminal
    pi = np.asarray(policy, np.float64)
    P_pi = np.einsum("sa,sat->st", pi, P)[np.ix_(live, live)]
    V = np.zeros(R.shape[0])
    V[live] = np.linalg.solve(np.eye(int(live.sum())) - gamma * P_pi, (pi * R).sum(axis=1)[live])
    return q_from_v(P, R, terminal, V, gamma)


def soft_q_from_prior_solution(P, R_old, R_new, terminal, gamma: float, beta: float,
                               prior=None):
    """The new task's soft optimum from the old one (AAAI-23): returns (Q_old + K, K, lower
    bound Q_old + Q^{pi*_old} of the reward difference), K solved by soft value iteration on
    R_new - R_old with the old optimal policy as its prior."""
    _, Q_old, pi_old = soft_value_iteration(P, R_old, terminal, gamma, beta, prior)
    delta = np.asarray(R_new, np.float64) - np.asarray(R_old, np.float64)
    _, K, _ = soft_value_iteration(P, delta, terminal, gamma, beta, prior=pi_old)
    bound = Q_old + evaluate_stochastic_policy(P, delta, terminal, pi_old, gamma)
    return Q_old + K, K, bound
