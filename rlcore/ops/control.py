"""Model-based control: LQR (finite and infinite horizon), linearization by autograd, iterative
LQR, and the sampling planners CEM and MPPI.

Conventions: state x [n], control u [m], dynamics x_{t+1} = f(x_t, u_t), horizon N, control
sequence U [N, m], state trajectory X [N + 1, n]. Every cost is minimized. LQR uses the cost

    J = sum_{t<N} (x_t' Q x_t + u_t' R u_t + 2 x_t' S u_t) + x_N' Qf x_N,

whose optimal policy is linear, u_t = -K_t x_t, with optimal cost-to-go V_t(x) = x' P_t x.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.autograd.functional import hessian, jacobian


def _array(name: str, value, shape: tuple) -> np.ndarray:
    out = np.asarray(value, np.float64)
    if out.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, found {out.shape}")
    return out


def _positive_definite(name: str, M: np.ndarray) -> None:
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name}: expected a symmetric matrix, found max |{name} - {name}'| = "
                         f"{np.abs(M - M.T).max():.3g}")
    eig = np.linalg.eigvalsh(M)
    if eig.min() <= 0:
        raise ValueError(f"{name}: expected positive definite, found eigenvalues {eig}")


def _cost_matrices(n: int, m: int, Q, R, S, Qf=None):
    Q = _array("Q", Q, (n, n))
    R = _array("R", R, (m, m))
    S = np.zeros((n, m)) if S is None else _array("S", S, (n, m))
    _positive_definite("R", R)
    Qf = Q if Qf is None else _array("Qf", Qf, (n, n))
    return Q, R, S, Qf


def _riccati_step(A, B, Q, R, S, P):
    """One backward step of the Riccati recursion from P_{t+1} = P:

    H_uu = R + B'PB,  H_ux = S' + B'PA,  K = H_uu^{-1} H_ux,  P_t = Q + A'PA - H_ux' K.
    """
    Huu = R + B.T @ P @ B
    Hux = S.T + B.T @ P @ A
    K = np.linalg.solve(Huu, Hux)
    P_prev = Q + A.T @ P @ A - Hux.T @ K
    return K, 0.5 * (P_prev + P_prev.T)


def lqr_finite(A, B, Q, R, N: int, Qf=None, S=None):
    """Finite-horizon discrete-time LQR for x_{t+1} = A_t x_t + B_t u_t.

    Backward Riccati recursion from P_N = Qf (Q when not given):

        K_t = (R + B_t' P_{t+1} B_t)^{-1} (S' + B_t' P_{t+1} A_t)
        P_t = Q + A_t' P_{t+1} A_t - (S + A_t' P_{t+1} B_t) K_t

    A [n, n] and B [n, m] are time-invariant; A [N, n, n] and B [N, n, m] give A_t, B_t.
    Returns (K [N, m, n], P [N + 1, n, n]): u_t = -K_t x_t is optimal and the optimal cost
    from x_t on is x_t' P_t x_t.
    """
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    if A.ndim not in (2, 3) or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A: expected [n, n] or [N, n, n], found {A.shape}")
    n = A.shape[-1]
    if B.ndim != A.ndim or B.shape[-2] != n or (A.ndim == 3 and B.shape[0] != A.shape[0]):
        raise ValueError(f"B: expected {'[n, m]' if A.ndim == 2 else '[N, n, m]'} with n = {n}"
                         f"{', N = ' + str(A.shape[0]) if A.ndim == 3 else ''}, found {B.shape}")
    if A.ndim == 3 and A.shape[0] != N:
        raise ValueError(f"A: expected {N} time steps for N = {N}, found {A.shape[0]}")
    m = B.shape[-1]
    Q, R, S, Qf = _cost_matrices(n, m, Q, R, S, Qf)
    A = np.broadcast_to(A, (N, n, n))
    B = np.broadcast_to(B, (N, n, m))
    K = np.zeros((N, m, n))
    P = np.zeros((N + 1, n, n))
    P[N] = Qf
    for t in range(N - 1, -1, -1):
        K[t], P[t] = _riccati_step(A[t], B[t], Q, R, S, P[t + 1])
    return K, P


def lqr_infinite(A, B, Q, R, S=None, tol: float = 1e-10, max_iter: int = 100_000):
    """Infinite-horizon LQR: the stabilizing solution P of the discrete algebraic Riccati
    equation

        P = Q + A'PA - (S + A'PB) (R + B'PB)^{-1} (S' + B'PA),

    found by iterating the Riccati recursion from P = Q until max |P_{k+1} - P_k| <=
    tol * max(1, max |P_k|). Returns (K [m, n], P [n, n]) with u = -K x.

    Raises ValueError when the iteration diverges or does not settle in max_iter steps
    ((A, B) not stabilizable), or when its limit leaves A - BK unstable ((Q, A) not
    detectable: some unstable mode is free of cost).
    """
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix [n, n], found {A.shape}")
    n = A.shape[0]
    if B.ndim != 2 or B.shape[0] != n:
        raise ValueError(f"B: expected [n, m] with n = {n}, found {B.shape}")
    Q, R, S, _ = _cost_matrices(n, B.shape[1], Q, R, S)
    P = Q.copy()
    for _ in range(max_iter):
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            K, P_next = _riccati_step(A, B, Q, R, S, P)
        if not np.all(np.isfinite(P_next)):
            break
        converged = np.abs(P_next - P).max() <= tol * max(1.0, np.abs(P).max())
        P = P_next
        if converged:
            K, _ = _riccati_step(A, B, Q, R, S, P)
            radius = np.abs(np.linalg.eigvals(A - B @ K)).max()
            if radius >= 1.0:
                raise ValueError(f"Riccati iteration converged, but A - BK is unstable: expected "
                                 f"spectral radius < 1, found {radius:.6g} ((Q, A) not "
                                 "detectable: an unstable mode carries no cost)")
            return K, P
    raise ValueError(f"Riccati iteration did not converge: expected max |P_(k+1) - P_k| <= "
                     f"{tol:g} within {max_iter} steps, found a diverging or unsettled P "
                     "((A, B) not stabilizable?)")


def linearize(f: Callable, x0, u0):
    """Jacobians A = df/dx and B = df/du of the dynamics x' = f(x, u) at (x0, u0), by
    torch.autograd.functional.jacobian. f is called with float64 tensors x [n] and u [m] and
    must return x' [n]. Returns numpy arrays (A [n, n], B [n, m]), so that
    f(x0 + dx, u0 + du) ~ f(x0, u0) + A dx + B du."""
    x = torch.as_tensor(np.asarray(x0, np.float64))
    u = torch.as_tensor(np.asarray(u0, np.float64))
    if x.ndim != 1 or u.ndim != 1:
        raise ValueError(f"x0, u0: expected 1-D vectors, found shapes {tuple(x.shape)}, "
                         f"{tuple(u.shape)}")
    out = f(x, u)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"f(x, u): expected a next state of shape {tuple(x.shape)}, "
                         f"found {tuple(out.shape)}")
    A, B = jacobian(f, (x, u))
    return A.detach().numpy(), B.detach().numpy()


def _scalar(fn, *args) -> torch.Tensor:
    out = fn(*args)
    if out.numel() != 1:
        raise ValueError(f"cost: expected a scalar, found shape {tuple(out.shape)}")
    return out.reshape(())


def _rollout(f, cost, terminal_cost, x0, U, X_ref=None, k=None, K=None, alpha=0.0):
    """Simulate the horizon. Open loop applies U; with a reference trajectory X_ref it applies
    u_t = U_t + alpha k_t + K_t (x_t - X_ref_t). Returns (X [N + 1, n], U [N, m], total cost)."""
    N = U.shape[0]
    X = np.zeros((N + 1, x0.shape[0]))
    X[0] = x0
    U_out = U.copy()
    total = 0.0
    with torch.no_grad():
        for t in range(N):
            if X_ref is not None:
                U_out[t] = U[t] + alpha * k[t] + K[t] @ (X[t] - X_ref[t])
            x, u = torch.from_numpy(X[t]), torch.from_numpy(U_out[t])
            total += float(_scalar(cost, x, u))
            X[t + 1] = f(x, u).numpy()
        if terminal_cost is not None:
            total += float(_scalar(terminal_cost, torch.from_numpy(X[N])))
    return X, U_out, total


def _derivatives(f, cost, terminal_cost, X, U):
    """Along (X, U): f_x, f_u and the gradient and Hessian of the cost in z = (x, u)."""
    N, m = U.shape
    n = X.shape[1]
    fx, fu = np.zeros((N, n, n)), np.zeros((N, n, m))
    grad, hess = np.zeros((N, n + m)), np.zeros((N, n + m, n + m))

    def stage(z):
        return _scalar(cost, z[:n], z[n:])
    for t in range(N):
        fx[t], fu[t] = linearize(f, X[t], U[t])
        z = torch.from_numpy(np.concatenate([X[t], U[t]]))
        grad[t] = jacobian(stage, z).numpy()
        hess[t] = hessian(stage, z).numpy()
    gN, hN = np.zeros(n), np.zeros((n, n))
    if terminal_cost is not None:
        xN = torch.from_numpy(X[N])
        gN = jacobian(lambda x: _scalar(terminal_cost, x), xN).numpy()
        hN = hessian(lambda x: _scalar(terminal_cost, x), xN).numpy()
    return fx, fu, grad, hess, gN, hN


def _backward(derivs, mu: float):
    """iLQR backward pass with mu I added to Q_uu. Returns (k, K, expected reduction) or None
    when a regularized Q_uu is not positive definite."""
    fx, fu, grad, hess, Vx, Vxx = derivs
    N, n, m = fu.shape
    k, K = np.zeros((N, m)), np.zeros((N, m, n))
    reduction = 0.0
    for t in range(N - 1, -1, -1):
        A, B = fx[t], fu[t]
        Qx = grad[t, :n] + A.T @ Vx
        Qu = grad[t, n:] + B.T @ Vx
        Qxx = hess[t, :n, :n] + A.T @ Vxx @ A
        Quu = hess[t, n:, n:] + B.T @ Vxx @ B
        Qux = hess[t, n:, :n] + B.T @ Vxx @ A
        Quu_reg = Quu + mu * np.eye(m)
        try:
            np.linalg.cholesky(Quu_reg)
        except np.linalg.LinAlgError:
            return None
        gains = -np.linalg.solve(Quu_reg, np.column_stack([Qu, Qux]))
        k[t], K[t] = gains[:, 0], gains[:, 1:]
        reduction -= k[t] @ Qu + 0.5 * k[t] @ Quu @ k[t]
        Vx = Qx + K[t].T @ Quu @ k[t] + K[t].T @ Qu + Qux.T @ k[t]
        Vxx = Qxx + K[t].T @ Quu @ K[t] + K[t].T @ Qux + Qux.T @ K[t]
        Vxx = 0.5 * (Vxx + Vxx.T)
    return k, K, reduction


def ilqr(f: Callable, cost: Callable, x0, U0, terminal_cost: Callable | None = None,
         max_iter: int = 100, tol: float = 1e-10, mu_init: float = 0.0, mu_min: float = 1e-6,
         mu_max: float = 1e10, mu_factor: float = 10.0, backtracks: int = 10,
         callback: Callable | None = None, derivatives: Callable | None = None):
    """Iterative LQR (Li & Todorov 2004; Tassa et al. 2012) for J(U) = sum_t cost(x_t, u_t)
    + terminal_cost(x_N) under x_{t+1} = f(x_t, u_t).

    Each iteration linearizes f and takes second-order expansions of the costs along the
    current (X, U) by torch autograd, then runs the backward pass (V_N = terminal cost)

        Q_x = l_x + A'V_x          Q_u = l_u + B'V_x
        Q_xx = l_xx + A'V_xx A     Q_uu = l_uu + B'V_xx B     Q_ux = l_ux + B'V_xx A
        k = -(Q_uu + mu I)^{-1} Q_u      K = -(Q_uu + mu I)^{-1} Q_ux
        V_x = Q_x + K'Q_uu k + K'Q_u + Q_ux'k     V_xx = Q_xx + K'Q_uu K + K'Q_ux + Q_ux'K

    and a forward pass u_t = U_t + alpha k_t + K_t (x_t - X_t) with alpha = 1, 1/2, 1/4, ...
    (at most ``backtracks`` halvings) until the cost decreases. The Levenberg-Marquardt term
    mu grows by ``mu_factor`` (to at least mu_min) when Q_uu + mu I is not positive definite
    or no step decreases the cost, and shrinks by it (to 0 below mu_min) after a success.

    Stops when the expected reduction sum_t -(k'Q_u + k'Q_uu k / 2) or an accepted step's
    actual reduction falls below tol * (1 + |J|), at max_iter, or when mu exceeds mu_max.
    f, cost(x, u) and terminal_cost(x) are called with float64 tensors; the costs return
    scalars. callback(iteration, X, U, J) runs after every accepted step. derivatives(X, U),
    when given, replaces the step-by-step autograd expansion with the caller's own (e.g. one
    vectorized call over the horizon): it returns numpy (f_x [N, n, n], f_u [N, n, m], the
    stage costs' gradients [N, n + m] and Hessians [N, n + m, n + m] in z = (x, u), and the
    terminal cost's gradient [n] and Hessian [n, n]).
    Returns (X [N + 1, n], U [N, m], J, iterations).
    """
    x0 = np.asarray(x0, np.float64)
    U = np.array(U0, np.float64)
    if x0.ndim != 1 or U.ndim != 2:
        raise ValueError(f"x0, U0: expected [n] and [N, m], found {x0.shape} and {U.shape}")
    X, U, J = _rollout(f, cost, terminal_cost, x0, U)
    mu, iteration = mu_init, 0
    while iteration < max_iter:
        iteration += 1
        derivs = (_derivatives(f, cost, terminal_cost, X, U) if derivatives is None
                  else derivatives(X, U))
        while (step := _backward(derivs, mu)) is None:
            mu = max(mu_min, mu * mu_factor)
            if mu > mu_max:
                return X, U, J, iteration
        k, K, expected = step
        if expected < tol * (1.0 + abs(J)):
            break
        for alpha in 0.5 ** np.arange(backtracks + 1):
            X_new, U_new, J_new = _rollout(f, cost, terminal_cost, x0, U, X, k, K, alpha)
            if J_new < J:
                break
        else:
            mu = max(mu_min, mu * mu_factor)
            if mu > mu_max:
                break
            continue
        reduction = J - J_new
        X, U, J = X_new, U_new, J_new
        mu = mu / mu_factor if mu / mu_factor >= mu_min else 0.0
        if callback is not None:
            callback(iteration, X, U, J)
        if reduction < tol * (1.0 + abs(J)):
            break
    return X, U, J, iteration


def _evaluate(objective: Callable, samples: np.ndarray) -> np.ndarray:
    costs = np.asarray(objective(samples), np.float64)
    if costs.shape != (samples.shape[0],):
        raise ValueError(f"objective: expected costs of shape ({samples.shape[0]},), "
                         f"found {costs.shape}")
    return costs


def _clip(samples: np.ndarray, bounds) -> np.ndarray:
    return samples if bounds is None else np.clip(samples, bounds[0], bounds[1])


def cem(objective: Callable, mean, std, iterations: int, population: int, elites: int,
        rng: np.random.Generator, alpha: float = 0.0, bounds=None) -> np.ndarray:
    """Cross-entropy method (Rubinstein 1999) minimizing objective over arrays of mean's shape,
    e.g. action sequences [H, m].

    Each iteration samples x_i = mean + std * eps_i, eps_i ~ N(0, I), i < population (clipped
    to bounds = (low, high) when given), keeps the ``elites`` lowest costs and refits

        mean <- alpha mean + (1 - alpha) mean(elites)
        std  <- alpha std  + (1 - alpha) std(elites)

    objective(samples [P, ...]) returns costs [P]. Returns the final mean, the method's
    estimate of the minimizer.
    """
    mean = np.array(mean, np.float64)
    std = np.broadcast_to(np.asarray(std, np.float64), mean.shape).copy()
    if not 1 <= elites <= population:
        raise ValueError(f"elites: expected 1 <= elites <= population = {population}, "
                         f"found {elites}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha: expected 0 <= alpha < 1, found {alpha}")
    for _ in range(iterations):
        noise = rng.standard_normal((population,) + mean.shape)
        samples = _clip(mean + std * noise, bounds)
        best = samples[np.argsort(_evaluate(objective, samples), kind="stable")[:elites]]
        mean = alpha * mean + (1.0 - alpha) * best.mean(axis=0)
        std = alpha * std + (1.0 - alpha) * best.std(axis=0)
    return mean


def mppi(objective: Callable, U_nominal, noise_std, lam: float, samples: int,
         rng: np.random.Generator, bounds=None) -> np.ndarray:
    """One MPPI update (Williams et al. 2017) of a nominal control sequence U.

    Perturbations eps_k ~ N(0, diag(noise_std^2)), k < samples, are scored by
    S_k = objective(U + eps_k) (with U + eps_k clipped to bounds = (low, high) when given,
    eps_k then being the clipped perturbation), and

        w_k = exp(-(S_k - min_j S_j) / lam) / sum_j exp(-(S_j - min_j S_j) / lam)
        U  <- U + sum_k w_k eps_k.

    Subtracting the minimum cost leaves w unchanged and keeps exp from overflowing. The
    temperature lam > 0 trades averaging (large lam) against picking the best sample
    (lam -> 0). objective(samples [K, ...]) returns costs [K]. Returns the updated U.
    """
    U = np.asarray(U_nominal, np.float64)
    if not lam > 0:
        raise ValueError(f"lam: expected a temperature > 0, found {lam}")
    std = np.broadcast_to(np.asarray(noise_std, np.float64), U.shape)
    candidates = _clip(U + std * rng.standard_normal((samples,) + U.shape), bounds)
    costs = _evaluate(objective, candidates)
    w = np.exp(-(costs - costs.min()) / lam)
    w /= w.sum()
    return U + np.tensordot(w, candidates - U, axes=1)
