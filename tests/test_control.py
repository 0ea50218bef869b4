"""Control math against hand calculations, SciPy, and independent formulations: LQR by the
batch least-squares solution and scipy.linalg.solve_discrete_are, Jacobians derived by hand,
iLQR optimality by autograd through the rollout, CEM and MPPI on quadratics with known minima."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import torch

from rlcore.ops.control import cem, ilqr, linearize, lqr_finite, lqr_infinite, mppi

DT = 0.1
DOUBLE_A = np.array([[1.0, DT], [0.0, 1.0]])
DOUBLE_B = np.array([[0.5 * DT**2], [DT]])


def random_system(seed=0, n=4, m=2):
    """A random system with an unstable A (spectral radius 1.5); a generic (A, B) with m >= 1 is
    controllable, hence stabilizable."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= 1.5 / np.abs(np.linalg.eigvals(A)).max()
    return A, rng.normal(size=(n, m))


def batch_lqr(A, B, Q, R, S, Qf, x0, N):
    """The finite-horizon problem as one quadratic program in U = (u_0, ..., u_{N-1}):
    X = Phi x0 + Gamma U, J = X'Qb X + U'Rb U + 2 X'Sb U, solved by setting dJ/dU = 0.
    Time-varying A [N, n, n], B [N, n, m]. Returns (U* [N, m], J*)."""
    n, m = B.shape[1:]
    Phi, Gamma = [np.eye(n)], [np.zeros((n, N * m))]
    for t in range(N):
        select = np.zeros((m, N * m))
        select[:, t * m:(t + 1) * m] = np.eye(m)
        Phi.append(A[t] @ Phi[-1])
        Gamma.append(A[t] @ Gamma[-1] + B[t] @ select)
    Phi, Gamma = np.vstack(Phi), np.vstack(Gamma)
    Qb = scipy.linalg.block_diag(*([Q] * N + [Qf]))
    Rb = scipy.linalg.block_diag(*([R] * N))
    Sb = np.vstack([scipy.linalg.block_diag(*([S] * N)), np.zeros((n, N * m))])
    H = Gamma.T @ Qb @ Gamma + Rb + Sb.T @ Gamma + Gamma.T @ Sb
    U = np.linalg.solve(H, -(Gamma.T @ Qb + Sb.T) @ Phi @ x0)
    X = Phi @ x0 + Gamma @ U
    return U.reshape(N, m), X @ Qb @ X + U @ Rb @ U + 2 * X @ Sb @ U


# ---------------------------------------------------------------- finite-horizon LQR


def test_lqr_finite_scalar_hand_computed():
    # a = b = q = r = qf = 1. P_2 = 1; K_1 = 1/(1+1) = 0.5, P_1 = 1 + 1 - 1/2 = 1.5;
    # K_0 = 1.5/2.5 = 0.6, P_0 = 1 + 1.5 - 1.5^2/2.5 = 1.6
    K, P = lqr_finite([[1.0]], [[1.0]], [[1.0]], [[1.0]], N=2)
    np.testing.assert_allclose(K[:, 0, 0], [0.6, 0.5], atol=1e-14)
    np.testing.assert_allclose(P[:, 0, 0], [1.6, 1.5, 1.0], atol=1e-14)


@pytest.mark.parametrize("time_varying", [False, True])
def test_lqr_finite_matches_the_batch_quadratic_program(time_varying):
    rng = np.random.default_rng(1)
    n, m, N = 3, 2, 6
    A, B = random_system(1, n, m)
    if time_varying:
        A = A + 0.1 * rng.normal(size=(N, n, n))
        B = B + 0.1 * rng.normal(size=(N, n, m))
    Q = np.diag([1.0, 2.0, 0.5])
    R = np.array([[1.0, 0.2], [0.2, 0.5]])
    S = 0.1 * rng.normal(size=(n, m))  # small enough that [[Q, S], [S', R]] stays PD
    assert np.linalg.eigvalsh(np.block([[Q, S], [S.T, R]])).min() > 0
    Qf = 3.0 * np.eye(n)
    x0 = rng.normal(size=n)
    K, P = lqr_finite(A, B, Q, R, N, Qf=Qf, S=S)
    At, Bt = np.broadcast_to(A, (N, n, n)), np.broadcast_to(B, (N, n, m))
    U_star, J_star = batch_lqr(At, Bt, Q, R, S, Qf, x0, N)
    x, U = x0, []
    for t in range(N):
        U.append(-K[t] @ x)
        x = At[t] @ x + Bt[t] @ U[-1]
    np.testing.assert_allclose(np.array(U), U_star, atol=1e-10)
    assert x0 @ P[0] @ x0 == pytest.approx(J_star, rel=1e-10)
    np.testing.assert_allclose(P[N], Qf)


# ---------------------------------------------------------------- infinite-horizon LQR


@pytest.mark.parametrize("system", ["double_integrator", "random", "random_cross_term"])
def test_lqr_infinite_matches_scipy_dare_and_stabilizes(system):
    if system == "double_integrator":
        A, B, Q, R, S = DOUBLE_A, DOUBLE_B, np.eye(2), np.array([[0.1]]), None
    else:
        A, B = random_system(2)
        Q, R = np.diag([1.0, 0.5, 2.0, 1.0]), np.array([[1.0, 0.3], [0.3, 2.0]])
        S = None if system == "random" else 0.2 * np.random.default_rng(3).normal(size=(4, 2))
    K, P = lqr_infinite(A, B, Q, R, S=S)
    P_ref = scipy.linalg.solve_discrete_are(A, B, Q, R, s=S)
    S0 = np.zeros(B.shape) if S is None else S
    K_ref = np.linalg.solve(R + B.T @ P_ref @ B, B.T @ P_ref @ A + S0.T)
    np.testing.assert_allclose(P, P_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(K, K_ref, rtol=1e-7, atol=1e-9)
    assert np.abs(np.linalg.eigvals(A - B @ K)).max() < 1.0


def test_long_finite_horizon_approaches_the_infinite_horizon_gain():
    K_inf, P_inf = lqr_infinite(DOUBLE_A, DOUBLE_B, np.eye(2), [[0.1]])
    K, P = lqr_finite(DOUBLE_A, DOUBLE_B, np.eye(2), [[0.1]], N=2000)
    np.testing.assert_allclose(K[0], K_inf, rtol=1e-8)
    np.testing.assert_allclose(P[0], P_inf, rtol=1e-8)


def test_lqr_infinite_rejects_an_unstabilizable_pair():
    A = np.diag([2.0, 0.5])  # the unstable mode x_0 cannot be reached from u
    B = np.array([[0.0], [1.0]])
    with pytest.raises(ValueError, match="did not converge"):
        lqr_infinite(A, B, np.eye(2), [[1.0]])


def test_lqr_infinite_rejects_an_undetectable_cost():
    # Q = 0: P = 0 is a fixed point, but u = 0 leaves the unstable mode (2.0) alone
    with pytest.raises(ValueError, match="not detectable"):
        lqr_infinite([[2.0]], [[1.0]], [[0.0]], [[1.0]])


@pytest.mark.parametrize("R, match", [([[0.0]], "positive definite"),
                                      ([[1.0, 0.0], [0.0, 1.0]], r"R: expected shape \(1, 1\)"),
                                      ([[-1.0]], "positive definite")])
def test_lqr_rejects_bad_control_cost(R, match):
    with pytest.raises(ValueError, match=match):
        lqr_finite(DOUBLE_A, DOUBLE_B, np.eye(2), R, N=5)
    with pytest.raises(ValueError, match=match):
        lqr_infinite(DOUBLE_A, DOUBLE_B, np.eye(2), R)


def test_lqr_rejects_shape_mismatches():
    with pytest.raises(ValueError, match="B: expected"):
        lqr_finite(DOUBLE_A, np.ones((3, 1)), np.eye(2), [[1.0]], N=5)
    with pytest.raises(ValueError, match="Q: expected shape"):
        lqr_infinite(DOUBLE_A, DOUBLE_B, np.eye(3), [[1.0]])
    with pytest.raises(ValueError, match="A: expected 5 time steps"):
        lqr_finite(np.stack([DOUBLE_A] * 4), np.stack([DOUBLE_B] * 4), np.eye(2), [[1.0]], N=5)


# ---------------------------------------------------------------- linearization and iLQR

G, L, M, PDT = 9.81, 0.8, 1.3, 0.05


def pendulum(x, u):
    """Explicit Euler step: theta' = theta + dt omega, omega' = omega + dt (g/l sin theta
    + u / (m l^2))."""
    theta, omega = x[0], x[1]
    return torch.stack([theta + PDT * omega,
                        omega + PDT * (G / L * torch.sin(theta) + u[0] / (M * L**2))])


def test_linearize_pendulum_matches_the_hand_derived_jacobian():
    theta, omega, u = 0.7, -0.3, 0.4
    A, B = linearize(pendulum, [theta, omega], [u])
    A_hand = np.array([[1.0, PDT], [PDT * G / L * np.cos(theta), 1.0]])
    B_hand = np.array([[0.0], [PDT / (M * L**2)]])
    np.testing.assert_allclose(A, A_hand, atol=1e-14)
    np.testing.assert_allclose(B, B_hand, atol=1e-14)
    assert isinstance(A, np.ndarray) and isinstance(B, np.ndarray)


def test_linearize_rejects_a_wrong_output_shape():
    with pytest.raises(ValueError, match=r"expected a next state of shape \(2,\)"):
        linearize(lambda x, u: torch.cat([x, u]), [0.0, 0.0], [0.0])


def quadratic(M):
    Mt = torch.as_tensor(np.asarray(M, np.float64))
    return lambda v: v @ Mt @ v


def test_ilqr_on_a_linear_quadratic_problem_is_the_lqr_solution():
    A, B = random_system(4, n=3, m=2)
    Q, R, Qf = np.diag([1.0, 2.0, 0.5]), np.array([[1.0, 0.2], [0.2, 0.5]]), 2.0 * np.eye(3)
    N, x0 = 15, np.array([1.0, -0.5, 0.3])
    At, Bt = torch.from_numpy(A), torch.from_numpy(B)
    cost_x, cost_u = quadratic(Q), quadratic(R)
    X, U, J, iterations = ilqr(lambda x, u: At @ x + Bt @ u,
                               lambda x, u: cost_x(x) + cost_u(u), x0, np.zeros((N, 2)),
                               terminal_cost=quadratic(Qf))
    K, P = lqr_finite(A, B, Q, R, N, Qf=Qf)
    x, U_lqr = x0, []
    for t in range(N):
        U_lqr.append(-K[t] @ x)
        x = A @ x + B @ U_lqr[-1]
    assert iterations <= 2
    np.testing.assert_allclose(U, np.array(U_lqr), atol=1e-6)
    assert J == pytest.approx(x0 @ P[0] @ x0, rel=1e-9)
    np.testing.assert_allclose(X[-1], x, atol=1e-9)


def pendulum_cost(x, u):
    return x[0] ** 2 + 0.1 * x[1] ** 2 + 0.01 * u[0] ** 2


def pendulum_terminal(x):
    return 10.0 * (x[0] ** 2 + x[1] ** 2)


def rollout_cost(U, x0):
    """Total cost of U through the pendulum, differentiable in U."""
    x, total = x0, 0.0
    for u in U:
        total = total + pendulum_cost(x, u)
        x = pendulum(x, u)
    return total + pendulum_terminal(x)


def test_ilqr_pendulum_decreases_the_cost_to_a_local_optimum():
    x0, N = np.array([0.5, 0.0]), 30
    costs = []
    X, U, J, iterations = ilqr(pendulum, pendulum_cost, x0, np.zeros((N, 1)),
                               terminal_cost=pendulum_terminal,
                               callback=lambda it, X, U, J: costs.append(J))
    x0_t = torch.from_numpy(x0)
    start = float(rollout_cost(torch.zeros(N, 1, dtype=torch.float64), x0_t))
    assert len(costs) >= 2 and start > costs[0]
    assert all(b < a for a, b in itertools.pairwise(costs))  # strictly decreasing
    assert iterations < 100  # stopped by the convergence test, not by max_iter
    assert costs[-1] == pytest.approx(J)
    U_t = torch.from_numpy(U).requires_grad_(True)
    total = rollout_cost(U_t, x0_t)
    assert total.item() == pytest.approx(J, rel=1e-12)
    (grad,) = torch.autograd.grad(total, U_t)
    assert grad.norm() < 1e-4
    assert abs(X[-1, 0]) < 0.1 < x0[0]  # driven toward theta = 0


def test_ilqr_regularizes_an_indefinite_control_hessian():
    # l = (u^2 - 1)^2 + x^2 has l_uu = 12 u^2 - 4 = -4 at the start U = 0, so Q_uu is not
    # positive definite and only mu I makes the backward pass go through
    def step(x, u):
        return x + u

    def cost(x, u):
        return (u[0] ** 2 - 1.0) ** 2 + x[0] ** 2

    x0, costs = np.array([0.5]), []
    _, U, J, _ = ilqr(step, cost, x0, np.zeros((5, 1)),
                      callback=lambda it, X, U, J: costs.append(J))
    start = 5 * 1.0 + 5 * 0.25  # u = 0 and x = 0.5 throughout
    assert start > costs[0] and all(b < a for a, b in itertools.pairwise(costs))
    U_t, x, total = torch.from_numpy(U).requires_grad_(True), torch.tensor([0.5]).double(), 0.0
    for u in U_t:
        total = total + cost(x, u)
        x = step(x, u)
    assert total.item() == pytest.approx(J, rel=1e-12)
    (grad,) = torch.autograd.grad(total, U_t)
    assert grad.norm() < 1e-3


# ---------------------------------------------------------------- CEM and MPPI

TARGET = np.array([[0.3, -1.2], [0.8, 0.1], [-0.5, 2.0], [1.5, 0.0], [-0.7, -0.4]])


def distance(samples):
    """sum (x - TARGET)^2 over each sample [P, 5, 2]; minimum 0 at TARGET."""
    return ((samples - TARGET) ** 2).sum(axis=(1, 2))


def test_cem_finds_the_minimum_of_a_quadratic():
    mean = cem(distance, np.zeros((5, 2)), 1.0, iterations=40, population=200, elites=20,
               rng=np.random.default_rng(0))
    np.testing.assert_allclose(mean, TARGET, atol=1e-2)


def test_cem_smoothing_and_bounds():
    mean = cem(distance, np.zeros((5, 2)), 1.0, iterations=80, population=200, elites=20,
               rng=np.random.default_rng(1), alpha=0.5, bounds=(-1.0, 1.0))
    np.testing.assert_allclose(mean, np.clip(TARGET, -1.0, 1.0), atol=1e-2)


def test_cem_one_iteration_refits_to_the_elites():
    seen = []

    def objective(samples):
        seen.append(samples.copy())
        return distance(samples)

    mean0, std0 = np.ones((5, 2)), 0.5
    mean = cem(objective, mean0, std0, iterations=1, population=50, elites=5,
               rng=np.random.default_rng(2), alpha=0.25)
    samples = seen[0]
    assert samples.shape == (50, 5, 2)
    elite = samples[np.argsort(distance(samples))[:5]]
    np.testing.assert_allclose(mean, 0.25 * mean0 + 0.75 * elite.mean(axis=0), atol=1e-14)


def test_cem_rejects_bad_arguments():
    with pytest.raises(ValueError, match="elites"):
        cem(distance, np.zeros((5, 2)), 1.0, 1, population=10, elites=11,
            rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expected costs of shape \(10,\)"):
        cem(lambda s: s.sum(axis=1), np.zeros((5, 2)), 1.0, 1, population=10, elites=2,
            rng=np.random.default_rng(0))


def recording(objective):
    seen = []

    def wrapped(samples):
        costs = objective(samples)
        seen.append((samples.copy(), costs))
        return costs
    return wrapped, seen


def test_mppi_update_is_the_softmax_weighted_average():
    U = np.zeros((5, 2))
    wrapped, seen = recording(distance)
    new = mppi(wrapped, U, 0.5, lam=2.0, samples=64, rng=np.random.default_rng(3))
    samples, costs = seen[0]
    w = scipy.special.softmax(-costs / 2.0)
    np.testing.assert_allclose(new, np.tensordot(w, samples, axes=1), atol=1e-12)


def test_mppi_small_temperature_picks_the_best_sample():
    wrapped, seen = recording(lambda s: distance(s) + 1e6)  # large costs must not overflow
    new = mppi(wrapped, np.zeros((5, 2)), 0.5, lam=1e-12, samples=64,
               rng=np.random.default_rng(4))
    samples, costs = seen[0]
    np.testing.assert_array_equal(new, samples[np.argmin(costs)])


def test_mppi_expected_step_on_a_quadratic():
    # cost (u + eps - t)^2 with eps ~ N(0, s^2): the weights exp(-cost/lam) times the Gaussian
    # density form a Gaussian in eps with mean (t - u) s^2 / (s^2 + lam/2); for s^2 = lam/2
    # the step is half the distance to the minimum: 0 -> 0.5 for t = 1.
    new = mppi(lambda s: (s[:, 0] - 1.0) ** 2, np.zeros(1), 0.5, lam=0.5, samples=400_000,
               rng=np.random.default_rng(5))
    assert new[0] == pytest.approx(0.5, abs=5e-3)


def test_repeated_mppi_reaches_the_minimum_and_respects_bounds():
    rng, U = np.random.default_rng(6), np.zeros((5, 2))
    for _ in range(60):
        U = mppi(distance, U, 0.3, lam=0.1, samples=1000, rng=rng)
    assert distance(U[None])[0] < 0.01  # from 9.33 at U = 0
    np.testing.assert_allclose(U, TARGET, atol=0.05)
    for _ in range(60):
        U = mppi(distance, U, 0.3, lam=0.1, samples=1000, rng=rng, bounds=(-1.0, 1.0))
    assert U.min() >= -1.0 and U.max() <= 1.0
    # at an active bound the average of clipped samples sits slightly inside it
    np.testing.assert_allclose(U, np.clip(TARGET, -1.0, 1.0), atol=0.1)


def test_mppi_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="lam"):
        mppi(distance, np.zeros((5, 2)), 0.5, lam=0.0, samples=8, rng=np.random.default_rng(0))
