"""Entropy-regularized exact solvers (plugins/tabular/solvers.py) against hand calculations:
soft value iteration, the soft log-sum-exp, and the tilted-matrix (large-deviation) solution of
the average-reward problem, with the limits that tie them to ordinary value iteration (beta ->
infinity), to the prior (beta -> 0) and to each other (gamma -> 1)."""

import gymnasium as gym
import numpy as np
import pytest

from rlcore.plugins.tabular.solvers import (boltzmann_policy, soft_relative_value_iteration,
                                            soft_value, soft_value_iteration, tilted_matrix,
                                            tilted_solution, value_iteration)
from rlcore.registry import ensure_env_registered

E = np.e


def switch_chain():
    """Two states, actions 0 = stay, 1 = switch; reward 1 in state 0, 0 in state 1."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    return P, np.array([[1.0, 1.0], [0.0, 0.0]])


def test_soft_value_iteration_on_a_one_step_task_by_hand():
    # State 0 -> terminal state 1 by either action; rewards 1 and 0; uniform prior, beta 1:
    # V(0) = log(e/2 + 1/2), Q(0) = (1, 0), pi*(0) = (e, 1) / (e + 1).
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 0.0]])
    V, Q, pi = soft_value_iteration(P, R, np.array([False, True]), 0.9, 1.0)
    np.testing.assert_allclose(V, [np.log((E + 1) / 2), 0.0], atol=1e-12)
    np.testing.assert_allclose(Q, [[1.0, 0.0], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(pi[0], [E / (E + 1), 1 / (E + 1)], atol=1e-12)


def test_soft_value_iteration_on_a_self_loop_by_hand():
    # One state, two actions that stay, rewards 1 and 0, prior (0.25, 0.75), beta 2, gamma 0.9:
    # V = beta^-1 log(sum_a pi0 e^{beta r_a}) + gamma V  =>  V = log(0.25 e^2 + 0.75) / 2 / 0.1.
    P = np.ones((1, 2, 1))
    R = np.array([[1.0, 0.0]])
    V, Q, pi = soft_value_iteration(P, R, np.array([False]), 0.9, 2.0, prior=[[0.25, 0.75]])
    v = np.log(0.25 * E ** 2 + 0.75) / 2 / 0.1
    np.testing.assert_allclose(V, [v], atol=1e-9)
    np.testing.assert_allclose(Q, [[1 + 0.9 * v, 0.9 * v]], atol=1e-9)
    np.testing.assert_allclose(pi, np.array([[0.25 * E ** 2, 0.75]]) / (0.25 * E ** 2 + 0.75),
                               atol=1e-12)


def test_tilted_solution_of_the_switch_chain_by_hand():
    # The soft Q over N steps is M^N 1. With w(s) = sum_a pi0 v(s, a): rho w(0) = e/2 (w0 + w1),
    # rho w(1) = 1/2 (w0 + w1), so rho = (e + 1)/2 and w0/w1 = e; v(s, a) = e^{r(s)}
    # w(next(s, a)) / rho gives v = [[e^2, e], [1, e]] up to scale, so the differential soft Q
    # (max 0) is [[0, -1], [-2, -1]] and pi*(stay|0) = pi*(switch|1) = e / (e + 1).
    P, R = switch_chain()
    theta, Q, pi = tilted_solution(P, R, 1.0)
    assert theta == pytest.approx(np.log((E + 1) / 2), abs=1e-12)
    np.testing.assert_allclose(Q, [[0.0, -1.0], [-2.0, -1.0]], atol=1e-10)
    np.testing.assert_allclose(pi, [[E / (E + 1), 1 / (E + 1)], [1 / (E + 1), E / (E + 1)]],
                               atol=1e-12)
    M = tilted_matrix(P, R, 1.0)
    assert M.shape == (4, 4)
    # the eigen-equation itself, with numpy's dense solver as a second opinion
    rho = max(np.linalg.eigvals(M * E).real)  # M has the largest reward (1) factored out
    assert np.log(rho) == pytest.approx(theta, abs=1e-12)


def test_tilted_solution_of_a_bandit_is_the_free_energy_of_the_rewards():
    # One state: theta = beta^-1 log sum_a pi0(a) e^{beta r_a}, pi* = pi0 e^{beta r} / Z.
    P = np.ones((1, 3, 1))
    R = np.array([[0.5, -1.0, 2.0]])
    prior = np.array([[0.2, 0.5, 0.3]])
    theta, Q, pi = tilted_solution(P, R, 3.0, prior=prior)
    Z = (prior * np.exp(3.0 * R)).sum()
    assert theta == pytest.approx(np.log(Z) / 3.0, abs=1e-12)
    np.testing.assert_allclose(pi, prior * np.exp(3.0 * R) / Z, atol=1e-12)
    np.testing.assert_allclose(Q, R - R.max(), atol=1e-10)


def random_mdp(seed: int, deterministic: bool, S: int = 6, A: int = 3):
    rng = np.random.default_rng(seed)
    if deterministic:
        P = np.zeros((S, A, S))
        P[np.arange(S)[:, None], np.arange(A)[None], rng.integers(0, S, size=(S, A))] = 1.0
    else:
        P = rng.dirichlet(np.ones(S), size=(S, A))
    return P, rng.normal(size=(S, A)), rng.dirichlet(np.ones(A), size=S)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("deterministic", [True, False])
def test_soft_value_iteration_approaches_the_average_reward_solution_as_gamma_goes_to_one(
        seed, deterministic):
    P, R, prior = random_mdp(seed, deterministic)
    theta, Q, pi = soft_relative_value_iteration(P, R, 2.0, prior=prior)
    if deterministic:  # the tilted matrix's eigenpair is the same answer
        theta_t, Q_t, pi_t = tilted_solution(P, R, 2.0, prior=prior)
        assert theta_t == pytest.approx(theta, abs=1e-9)
        np.testing.assert_allclose(pi_t, pi, atol=1e-8)
        np.testing.assert_allclose(Q_t, Q, atol=1e-8)
    else:  # it solves the problem with controlled transitions, whose rate is higher
        with pytest.raises(ValueError, match="controlled_dynamics=True"):
            tilted_solution(P, R, 2.0, prior=prior)
        assert tilted_solution(P, R, 2.0, prior=prior, controlled_dynamics=True)[0] > theta + 1e-3
    errors = []
    for gamma in (0.9, 0.99, 0.999):
        V, Qg, pig = soft_value_iteration(P, R, np.zeros(6, bool), gamma, 2.0, prior=prior,
                                          tol=1e-11)
        np.testing.assert_allclose((1 - gamma) * V, theta, atol=30 * (1 - gamma))
        np.testing.assert_allclose(Qg - Qg.max(), Q, atol=100 * (1 - gamma))
        errors.append(np.abs(pig - pi).max())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-2


@pytest.mark.parametrize("layout", ["SFFFF/F#H#F/FFFFG", "SFF/FHF/FFG"])
def test_large_beta_recovers_value_iteration_and_small_beta_the_prior(layout):
    ensure_env_registered("rlcore/GridWorld-v0")
    env = gym.make("rlcore/GridWorld-v0", layout=layout, step_reward=-0.01).unwrapped
    P, R, terminal, gamma = env.P, env.R, env.terminal, 0.95
    V, Q, greedy = value_iteration(P, R, terminal, gamma)
    Vs, Qs, pi = soft_value_iteration(P, R, terminal, gamma, beta=1e4, tol=1e-10)
    # the entropy term is at most log(A) / beta per step
    np.testing.assert_allclose(Vs, V, atol=np.log(4) / 1e4 / (1 - gamma))
    live = ~terminal
    top2 = np.sort(Q, axis=1)[:, -2:]
    unique = (top2[:, 1] - top2[:, 0] > 1e-3) & live
    np.testing.assert_array_equal(pi[unique].argmax(axis=1), greedy[unique])
    # beta -> 0: the prior, and V = the prior's own value (solve V = R_pi0 + gamma P_pi0 V);
    # the gap is O(beta), and a much smaller beta loses digits in log(1 + O(beta))
    prior = np.random.default_rng(0).dirichlet(np.ones(R.shape[1]), size=R.shape[0])
    V0, _, pi0 = soft_value_iteration(P, R, terminal, gamma, beta=1e-5, prior=prior, tol=1e-10)
    np.testing.assert_allclose(pi0, prior, atol=1e-5)
    P_pi = np.einsum("sa,sat->st", prior, P)[np.ix_(live, live)]
    R_pi = (prior * R).sum(axis=1)[live]
    V_prior = np.linalg.solve(np.eye(int(live.sum())) - gamma * P_pi, R_pi)
    np.testing.assert_allclose(V0[live], V_prior, atol=1e-4)


def test_soft_log_sum_exp_is_exact_and_finite_for_large_beta_q():
    Q = np.array([[1000.0, 0.0], [-1e6, -1e6], [3.0, 3.0]])
    prior = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    V = soft_value(Q, prior, beta=10.0)  # exp(10 * 1000) overflows a naive sum
    np.testing.assert_allclose(V, [1000.0 + np.log(0.5) / 10.0, -1e6, 3.0], rtol=0, atol=1e-9)
    assert np.isfinite(V).all()
    pi = boltzmann_policy(Q, prior, beta=10.0)
    np.testing.assert_allclose(pi, [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]], atol=1e-12)
    # an action outside the prior's support is never chosen and adds nothing to V
    np.testing.assert_allclose(soft_value(np.array([[0.0, 50.0]]), np.array([[1.0, 0.0]]), 1.0),
                               [0.0])
    # large beta * R in the tilted matrix (e^{beta r} factored by its largest value): theta ->
    # the best reward rate (stay in state 0), by the closed form of the switch chain
    P, R = switch_chain()
    theta, _, pi = tilted_solution(P, R, 20.0)
    assert theta == pytest.approx(np.log((np.exp(20.0) + 1) / 2) / 20.0, abs=1e-12)
    assert pi[0, 0] == pytest.approx(1 / (1 + np.exp(-20.0)), abs=1e-12)
    assert pi[1, 1] == pytest.approx(1 / (1 + np.exp(-20.0)), abs=1e-12)


def test_bad_arguments_are_refused_by_name():
    P, R = switch_chain()
    with pytest.raises(ValueError, match="beta=0 must be > 0"):
        soft_value_iteration(P, R, np.zeros(2, bool), 0.9, 0)
    with pytest.raises(ValueError, match="must be a distribution over actions"):
        tilted_solution(P, R, 1.0, prior=[[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(RuntimeError, match="tilted_solution for the average-reward case"):
        soft_value_iteration(P, R, np.zeros(2, bool), 1.0, 1.0, max_iter=100)


@pytest.mark.parametrize("slip", [0.0, 0.2])  # the identity needs no determinism
def test_a_prior_solution_gives_the_new_soft_optimum_and_a_lower_bound(slip):
    """Same maze, a second reward (the goal worth more, every step costing more): the new soft
    optimum is the old one plus K (AAAI-23), and the old solution alone bounds it from below."""
    from rlcore.plugins.tabular.solvers import soft_q_from_prior_solution

    ensure_env_registered("rlcore/GridWorld-v0")
    old = gym.make("rlcore/GridWorld-v0", layout="SFFF/F#HF/FFFG", slip=slip,
                   step_reward=-0.05).unwrapped
    new = gym.make("rlcore/GridWorld-v0", layout="SFFF/F#HF/FFFG", slip=slip, step_reward=-0.2,
                   goal_reward=2.0).unwrapped
    np.testing.assert_array_equal(old.P, new.P)
    gamma, beta = 0.9, 5.0
    prior = np.random.default_rng(0).dirichlet(np.ones(4), size=old.R.shape[0])
    _, Q_new, _ = soft_value_iteration(new.P, new.R, new.terminal, gamma, beta, prior=prior)
    composed, K, bound = soft_q_from_prior_solution(old.P, old.R, new.R, old.terminal, gamma,
                                                    beta, prior=prior)
    np.testing.assert_allclose(composed, Q_new, atol=1e-9)
    live = ~old.terminal
    assert (Q_new[live] >= bound[live] - 1e-9).all()
    assert (Q_new[live] - bound[live]).max() > 1e-3  # a bound, not the answer
    assert np.abs(K[live]).max() > 0.1  # and the tasks do differ


@pytest.mark.parametrize("slip", [0.0, 0.2])
def test_soft_q_bounds_from_any_estimate_contain_the_optimum_and_close_on_it(slip):
    from rlcore.plugins.tabular.solvers import soft_q_bounds

    ensure_env_registered("rlcore/GridWorld-v0")
    env = gym.make("rlcore/GridWorld-v0", layout="SFFF/F#HF/FFFG", slip=slip,
                   step_reward=-0.05).unwrapped
    gamma, beta = 0.9, 5.0
    _, Q_star, _ = soft_value_iteration(env.P, env.R, env.terminal, gamma, beta)
    live = ~env.terminal
    rng = np.random.default_rng(0)
    widths = []
    for scale in (3.0, 1.0, 0.1, 0.01):  # estimates ever closer to Q*
        for _ in range(20):
            Q = Q_star + scale * rng.normal(size=Q_star.shape)
            lower, upper = soft_q_bounds(env.P, env.R, env.terminal, gamma, beta, Q)
            assert (lower[live] <= Q_star[live] + 1e-12).all()
            assert (Q_star[live] <= upper[live] + 1e-12).all()
        widths.append((upper - lower)[live].max())
    assert widths == sorted(widths, reverse=True) and widths[-1] < 0.5 * widths[0] / 100
    lower, upper = soft_q_bounds(env.P, env.R, env.terminal, gamma, beta, Q_star)
    np.testing.assert_allclose(lower, Q_star, atol=1e-9)  # at Q* the bounds are Q* itself
    np.testing.assert_allclose(upper, Q_star, atol=1e-9)


def test_goal_rewards_and_the_continuing_gridworld_by_hand():
    ensure_env_registered("rlcore/GridWorld-v0")
    # G S G, step reward -0.1: left pays the first goal's 0.5, right the second's 1.0
    env = gym.make("rlcore/GridWorld-v0", layout="GSG", goal_rewards=[0.5, 1.0],
                   step_reward=-0.1, obs_mode="index").unwrapped
    np.testing.assert_allclose(env.R[1], [0.4, -0.1, 0.9, -0.1])  # left, down, right, up
    assert env.terminal.tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"goal_rewards=\[1.0\]: the layout has 2 goal cell"):
        gym.make("rlcore/GridWorld-v0", layout="GSG", goal_rewards=[1.0])
    # continuing: a goal pays and puts the agent back on S, nothing terminates
    env = gym.make("rlcore/GridWorld-v0", layout="SG", step_reward=-0.1, obs_mode="index",
                   continuing=True).unwrapped
    env.reset(seed=0)
    assert env.step(2)[:4] == (0, 0.9, False, False) and env.step(0)[:4] == (0, -0.1, False, False)
    assert not env.terminal.any() and env.reachable().tolist() == [True, False]
    np.testing.assert_allclose(env.P[0, :, 0], 1.0)
    # one reachable state: the rate is the free energy of its four rewards
    theta, _, pi = tilted_solution(env.P[:1, :, :1], env.R[:1], 1.0)
    rewards = np.array([-0.1, -0.1, 0.9, -0.1])
    assert theta == pytest.approx(np.log(np.exp(rewards).mean()), abs=1e-12)
    np.testing.assert_allclose(pi[0], np.exp(rewards) / np.exp(rewards).sum(), atol=1e-12)


def test_the_continuing_maze_rate_from_the_tilted_matrix_is_where_soft_vi_goes_as_gamma_to_1():
    ensure_env_registered("rlcore/GridWorld-v0")
    env = gym.make("rlcore/GridWorld-v0", layout="SFFF/F#HF/FFFG", step_reward=-0.05,
                   continuing=True).unwrapped
    keep = np.flatnonzero(env.reachable())
    assert keep.tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10]  # not the wall, the hole, the goal
    P, R = env.P[np.ix_(keep, np.arange(4), keep)], env.R[keep]
    theta, Q, pi = tilted_solution(P, R, 5.0)
    theta_rvi, Q_rvi, _ = soft_relative_value_iteration(P, R, 5.0)
    assert theta == pytest.approx(theta_rvi, abs=1e-10)
    np.testing.assert_allclose(Q, Q_rvi, atol=1e-8)
    gaps = [abs((1 - g) * soft_value_iteration(env.P, env.R, env.terminal, g, 5.0)[0][0] - theta)
            for g in (0.9, 0.99, 0.999)]
    # the gap is (1 - gamma) times the start's relative value: ten times smaller per digit
    assert gaps[0] > 5 * gaps[1] > 25 * gaps[2] and gaps[2] < 5e-4, gaps
