"""Natural-gradient step with a KL trust region (Schulman et al. 2015, appendix C), as pure
functions of a parameter list and closures that evaluate the surrogate and the mean KL.

    g = grad of the surrogate L(theta) at theta_old
    F v = d^2/dtheta^2 [mean KL(pi_old || pi_theta)] v  at theta = theta_old  (+ damping v)
    s = CG(F, g);  full step = sqrt(2 max_kl / s^T F s) s
    backtracking: try step * 0.5^k, k = 0..max_backtracks-1; accept the first whose surrogate
    improves by more than accept_ratio x the linear prediction and whose measured KL <= max_kl;
    if none does, keep theta_old.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters


def flat_grad(output: torch.Tensor, params: list, create_graph: bool = False) -> torch.Tensor:
    grads = torch.autograd.grad(output, params, create_graph=create_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params)])


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iters: int = 10, residual_tol: float = 1e-10) -> tuple[torch.Tensor, float]:
    """Approximately solve A x = b for symmetric positive-definite A given only x -> A x.
    Returns x and the norm of the final residual b - A x."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    for _ in range(iters):
        if float(rr) < residual_tol:
            break
        Ap = Avp(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, float(rr.sqrt())


def fisher_vector_product(kl_fn: Callable[[], torch.Tensor], params: list, v: torch.Tensor,
                          damping: float) -> torch.Tensor:
    """(H + damping I) v, with H the Hessian of ``kl_fn()`` (the mean KL(pi_old || pi_theta),
    pi_old detached) w.r.t. ``params``; at theta = theta_old H is the Fisher information."""
    g = flat_grad(kl_fn(), params, create_graph=True)
    return flat_grad(torch.dot(g, v.detach()), params) + damping * v


@dataclass
class LineSearchResult:
    accepted: bool
    steps: int            # step sizes tried (1 = the full step was accepted)
    improvement: float    # surrogate(new) - surrogate(old); 0 when rejected
    expected: float       # linear prediction g^T step for the accepted (or last tried) step
    kl: float             # measured mean KL of the kept parameters (0 when rejected)


@torch.no_grad()
def line_search(params: list, full_step: torch.Tensor, expected_full: float,
                evaluate: Callable[[], tuple[float, float]], max_kl: float,
                max_backtracks: int = 10, accept_ratio: float = 0.1,
                backtrack_coef: float = 0.5) -> LineSearchResult:
    """Backtracking line search from the current parameters along ``full_step``: tries the
    fractions 1, c, c^2, ... (c = ``backtrack_coef``) of it, ``max_backtracks`` in all.

    ``evaluate()`` returns (surrogate, mean KL from pi_old) at the parameters currently loaded;
    ``expected_full`` is g^T full_step. Restores the old parameters when no step is accepted."""
    old = parameters_to_vector(params).clone()
    surr_old, _ = evaluate()
    expected = expected_full
    for k in range(max_backtracks):
        frac = backtrack_coef ** k
        expected = expected_full * frac
        vector_to_parameters(old + frac * full_step, params)
        surr, kl = evaluate()
        improvement = surr - surr_old
        if (math.isfinite(surr) and math.isfinite(kl) and kl <= max_kl
                and improvement > accept_ratio * expected and improvement > 0):
            return LineSearchResult(True, k + 1, improvement, expected, kl)
    vector_to_parameters(old, params)
    return LineSearchResult(False, max_backtracks, 0.0, expected, 0.0)


def natural_gradient_step(params: list, surrogate_fn: Callable[[], torch.Tensor],
                          kl_fn: Callable[[], torch.Tensor], max_kl: float, damping: float,
                          cg_iters: int = 10, cg_residual_tol: float = 1e-10,
                          max_backtracks: int = 10, accept_ratio: float = 0.1,
                          backtrack_coef: float = 0.5) -> dict[str, float]:
    """One TRPO policy step in place on ``params``; returns its diagnostics."""
    surrogate = surrogate_fn()
    g = flat_grad(surrogate, params)
    metrics = {"surrogate": float(surrogate.detach()), "grad_norm": float(g.norm())}
    Fvp = lambda v: fisher_vector_product(kl_fn, params, v, damping)  # noqa: E731
    s, residual = conjugate_gradient(Fvp, g, cg_iters, cg_residual_tol)
    sFs = float(torch.dot(s, Fvp(s)))
    metrics["cg_residual"] = residual
    if not (math.isfinite(sFs) and sFs > 0 and float(g.norm()) > 0):
        metrics.update(kl=0.0, surrogate_improvement=0.0, expected_improvement=0.0,
                       line_search_steps=0.0, step_accepted=0.0)
        return metrics
    full_step = math.sqrt(2.0 * max_kl / sFs) * s
    expected_full = float(torch.dot(g, full_step))

    def evaluate() -> tuple[float, float]:
        return float(surrogate_fn()), float(kl_fn())

    res = line_search(params, full_step, expected_full, evaluate, max_kl, max_backtracks,
                      accept_ratio, backtrack_coef)
    metrics.update(kl=res.kl, surrogate_improvement=res.improvement,
                   expected_improvement=res.expected, line_search_steps=float(res.steps),
                   step_accepted=float(res.accepted))
    return metrics
