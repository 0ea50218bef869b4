"""Model-predictive control by iterative LQR through the ensemble's mean dynamics.

At every env step and for every sub-env, iLQR (``rlcore.ops.control.ilqr``) improves a control
sequence V = (v_0, ..., v_{H-1}) over the horizon H = ``horizon`` for ``iterations``
iterations, starting from the previous step's sequence shifted by one step with a zero
appended (zeros when the policy is built). The env gets the first action a_0 = tanh(v_0).

Actions are squashed, a = tanh(v), so iLQR (which knows no bounds) searches an unbounded v and
every action lies in (-1, 1); the reward code's clip is then never active and its gradient
never vanishes.

Dynamics: the ensemble's mean prediction (``model.MeanDynamics``, a float64 copy of the
published weights taken at every env step),

    s_{t+1} = s_t + mu_y + sigma_y * (1/E) sum_e mean_e(x_t),

deterministic: no trajectory sampling (iLQR needs one differentiable trajectory; the spread
between members enters through the cost instead). Cost, minimized:

    l(s, v) = -r(s, tanh v, f(s, v)) + c * D(s, tanh v),   l_H(s) = -r(s, 0, f(s, 0)),

with the task's reward code r (differentiable torch; f enters only for the tasks whose reward
reads the state a step reaches, and then iLQR's cost Hessian holds the model's second
derivatives too) and D the members' disagreement: the
variance over members of their predicted normalized mean state change, averaged over
dimensions, weighted by ``disagreement_coef`` c (0: off; then D is not computed). A positive
c keeps plans where the members agree, i.e. where the model has data.

The derivatives iLQR needs along the trajectory (f_x, f_u, the stage costs' gradients and
Hessians) come from a few batched backward passes over the whole horizon (f and the costs act
row by row, so the gradient of a sum over rows holds every row's own gradient): n passes for
the Jacobian of f, one for the costs' gradients and n + m more for their Hessians, instead of
the per-step autograd calls of ``ilqr``'s default.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.ops.control import ilqr
from rlcore.plugins.mpc.planner import RecedingHorizonPlanner


def _rowwise(fn, Z: torch.Tensor, order: int):
    """Per-row gradients (order 1: [N, d]) or gradients and Hessians (order 2) of a row-wise
    scalar function fn(Z [N, d]) -> [N], by backward passes of its sum."""
    Z = Z.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(fn(Z).sum(), Z, create_graph=order > 1)
        if order == 1:
            return grad.detach()
        rows = []
        for j in range(Z.shape[1]):
            row = (torch.autograd.grad(grad[:, j].sum(), Z, retain_graph=True,
                                       allow_unused=True)[0] if grad.requires_grad else None)
            rows.append(torch.zeros_like(Z) if row is None else row)
    return grad.detach(), torch.stack(rows, 1).detach()


class ILQRProblem:
    """The dynamics f(s, v), stage cost l(s, v), terminal cost and their batched derivatives
    for ``ilqr``. ``dynamics(s, a) -> (s', D)`` acts on rows (``MeanDynamics``)."""

    def __init__(self, dynamics, task, disagreement_coef: float):
        self.dynamics, self.task = dynamics, task
        self.action_dim = len(task.action_low)
        self.coef = float(disagreement_coef)

    def f(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.dynamics(s, torch.tanh(v))[0]

    def cost(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(v)
        if not (self.task.uses_next or self.coef):
            return -self.task.reward(s, a, None)
        nxt, disagreement = self.dynamics(s, a)
        out = -self.task.reward(s, a, nxt if self.task.uses_next else None)
        return out + self.coef * disagreement if self.coef else out

    def terminal(self, s: torch.Tensor) -> torch.Tensor:
        """l_H(s) = -r(s, 0, f(s, 0)): the reward of one more step with zero action."""
        a = s.new_zeros(s.shape[:-1] + (self.action_dim,))
        return -self.task.reward(s, a, self.dynamics(s, a)[0] if self.task.uses_next else None)

    def derivatives(self, X: np.ndarray, U: np.ndarray):
        X, U = torch.from_numpy(X), torch.from_numpy(U)
        n = X.shape[1]
        Z = torch.cat([X[:-1], U], -1)
        jac = torch.stack([_rowwise(lambda z, i=i: self.f(z[:, :n], z[:, n:])[:, i], Z, 1)
                           for i in range(n)], 1)  # [N, n, n + m]
        grad, hess = _rowwise(lambda z: self.cost(z[:, :n], z[:, n:]), Z, 2)
        gN, hN = _rowwise(self.terminal, X[-1:], 2)
        return tuple(t.numpy() for t in (jac[:, :, :n], jac[:, :, n:], grad, hess, gN[0],
                                         hN[0]))

    def plan(self, obs: np.ndarray, V0: np.ndarray, iterations: int, mu_init: float = 0.0,
             backtracks: int = 10, restarts=()) -> np.ndarray:
        """iLQR from state ``obs`` [n] and the initial sequence V0 [H, m] -> improved V; with
        ``restarts`` (constant actions in (-1, 1)) also from those constant sequences, the
        result of lowest cost taken (ties: the earlier start, V0 first)."""
        best = None
        for V_init in [V0] + [np.full_like(V0, np.arctanh(a)) for a in restarts]:
            _, V, J, _ = ilqr(self.f, self.cost, np.asarray(obs, np.float64), V_init,
                              terminal_cost=self.terminal, max_iter=iterations, mu_init=mu_init,
                              backtracks=backtracks, derivatives=self.derivatives)
            if best is None or J < best[1]:
                best = (V, J)
        return best[0]


class ILQRPlanner(RecedingHorizonPlanner):
    """ilqr_mpc's policy: iLQR-MPC (RecedingHorizonPlanner; the plans it keeps are the
    unsquashed sequences V), plus ``action_noise`` when exploring."""

    def plan(self, obs: np.ndarray, rng: np.random.Generator, warm: np.ndarray | None = None):
        """The planned action sequence [H, m] in [-1, 1] from one state (zeros warm start
        unless given): what the diagnostics compare with random sequences."""
        cfg, m = self.cfg, int(np.prod(self.action_shape))
        V0 = np.zeros((cfg.horizon, m)) if warm is None else warm
        if cfg.warm_clip is not None:
            bound = np.arctanh(cfg.warm_clip)
            V0 = np.clip(V0, -bound, bound)
        problem = ILQRProblem(self.model.mean_dynamics(), self.task, cfg.disagreement_coef)
        V = problem.plan(obs, V0, cfg.iterations, cfg.mu_init, cfg.backtracks, cfg.restarts)
        return V, np.tanh(V)

    def planning_step(self, rng: np.random.Generator):
        def step(obs: np.ndarray, warm: np.ndarray):
            V, actions = self.plan(obs, rng, warm)
            return V, actions[0]

        return step

    def perturb(self, first: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.explore and self.cfg.action_noise:
            return np.clip(first + self.cfg.action_noise * rng.standard_normal(first.shape), -1, 1)
        return first
