"""System identification of CartPole's physical constants from (x, u, x') transitions.

Gymnasium's CartPole-v1 state is x = (p, v, theta, omega) and a step applies a force
F = +-force_mag for tau = 0.02 s with explicit Euler (every update uses the *old* state):

    temp     = (F + m_p l omega^2 sin(theta)) / M                    M = m_c + m_p
    thetaacc = (g sin(theta) - cos(theta) temp) / (l (4/3 - m_p cos^2(theta) / M))
    xacc     = temp - m_p l thetaacc cos(theta) / M
    p' = p + tau v,  v' = v + tau xacc,  theta' = theta + tau omega,  omega' = omega + tau thetaacc

Identification (least squares, linear in a reparametrization). Euler makes both accelerations
exactly observable: xacc = (v' - v) / tau and thetaacc = (omega' - omega) / tau. Substituting
temp = xacc + (m_p l / M) thetaacc cos(theta) into the thetaacc equation, the m_p terms cancel
and the two equations become

    thetaacc = (3g / 4l) sin(theta) - (3 / 4l) cos(theta) xacc                       (1)
    xacc     = (force_mag / M) u + (m_p l / M) (omega^2 sin(theta) - thetaacc cos(theta))  (2)

with u = +-1 the action sign. Each is linear in two unknowns, so two ordinary least-squares
fits give q1 = 3g/4l, q2 = 3/4l, k1 = force_mag/M and k2 = m_p l/M, exactly on noise-free data
(no initial guess, no local minima, unlike nonlinear least squares on the prediction error).

Identifiability: g = q1/q2 and l = 3/(4 q2) are identified absolutely (time comes from tau,
length from the position units), and so are the acceleration per unit action force_mag/M and
the mass fraction m_p/M = k2/l. Scaling every mass and force_mag by the same factor leaves the
dynamics unchanged, so one mass scale must be given: with force_mag known (it defines the
action units: action 1 pushes with +force_mag newtons, action 0 with -force_mag), M =
force_mag/k1, m_p = M k2/l and m_c = M - m_p follow.

Transitions that end an episode (``dones``: terminated or truncated) are dropped: with
auto-resetting collectors their next state is a reset, not a product of the dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from rlcore.ops.control import linearize


@dataclass(frozen=True)
class CartPoleParams:
    """CartPole's physical constants (Gymnasium's defaults). Fields may be floats or tensors."""

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0


def _as_params(params) -> CartPoleParams:
    if isinstance(params, CartPoleParams):
        return params
    if len(params) != 5:
        raise ValueError(f"params: expected (gravity, masscart, masspole, length, force_mag), "
                         f"found {len(params)} values")
    return CartPoleParams(*params)


def action_to_force(actions, force_mag: float = 10.0):
    """Action index -> force in newtons: 1 -> +force_mag, 0 -> -force_mag."""
    return (2 * actions - 1) * force_mag


def cartpole_step(x, force, params=CartPoleParams(), tau: float = 0.02):
    """One explicit-Euler step of CartPole; x [..., 4], force [...] in newtons -> x' [..., 4].

    Works on numpy arrays and on torch tensors (differentiable in x, force and the params).
    ``params.force_mag`` is unused here: the force is given in newtons.
    """
    p = _as_params(params)
    is_torch = torch.is_tensor(x)
    xp = torch if is_torch else np
    pos, vel, theta, omega = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    total_mass = p.masspole + p.masscart
    polemass_length = p.masspole * p.length
    cos, sin = xp.cos(theta), xp.sin(theta)
    temp = (force + polemass_length * omega ** 2 * sin) / total_mass
    thetaacc = (p.gravity * sin - cos * temp) / (
        p.length * (4.0 / 3.0 - p.masspole * cos ** 2 / total_mass))
    xacc = temp - polemass_length * thetaacc * cos / total_mass
    new = (pos + tau * vel, vel + tau * xacc, theta + tau * omega, omega + tau * thetaacc)
    return torch.stack(new, dim=-1) if is_torch else np.stack(new, axis=-1)


def linear_model(params=CartPoleParams(), x0=None, force0: float = 0.0, tau: float = 0.02):
    """(A, B) of the Euler step linearized at (x0, force0): x' ~ f(x0, F0) + A dx + B dF.

    A = df/dx [4, 4], B = df/dF [4, 1] per newton (numpy, as ``rlcore.ops.control``'s LQR takes
    them), by autograd (``rlcore.ops.control.linearize``). Default x0 = 0 is the upright
    equilibrium, where A[1, 2] = -tau (m_p l / M) a and A[3, 2] = tau a with
    a = g / (l (4/3 - m_p/M)), and B[3] = -tau / (M l (4/3 - m_p/M)).
    """
    return linearize(lambda x, u: cartpole_step(x, u[0], params, tau),
                     np.zeros(4) if x0 is None else x0, [float(force0)])


@dataclass(frozen=True)
class SysIdResult:
    """Identified quantities; ``params`` needs force_mag (the mass scale) and is None without."""

    gravity: float
    length: float
    force_per_mass: float  # force_mag / (masscart + masspole)
    masspole_fraction: float  # masspole / (masscart + masspole)
    params: CartPoleParams | None
    n_used: int  # transitions used after dropping episode ends
    residual_rms: float  # rms of the two fits' residuals, in m/s^2 and rad/s^2


def _lstsq(design: np.ndarray, target: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary least squares, refusing rank-deficient designs."""
    sol, _, rank, sv = np.linalg.lstsq(design, target, rcond=None)
    if rank < design.shape[1] or sv[-1] <= 1e-10 * sv[0]:
        raise ValueError(f"{what}: expected transitions that excite both regressors "
                         f"(full-rank design of {design.shape[1]} columns), found rank {rank} "
                         f"from {len(design)} transitions; collect more varied data")
    return sol, target - design @ sol


def identify_cartpole(states, actions, next_states, tau: float = 0.02, *, dones=None,
                      force_mag: float | None = 10.0, min_transitions: int = 10) -> SysIdResult:
    """Fit CartPole's constants to transitions by the linear least squares of equations (1)-(2).

    states, next_states [N, 4] (float64 internal states for exact recovery); actions [N]
    indices in {0, 1} (1 pushes with +force_mag); dones [N] bool, True rows are dropped.
    Identifiable from data: g, l, force_mag/M, m_p/M. The masses need ``force_mag`` (newtons
    per unit action); with ``force_mag=None`` only the scale-free quantities are returned.
    """
    s = np.asarray(states, np.float64)
    s2 = np.asarray(next_states, np.float64)
    a = np.asarray(actions)
    if s.ndim != 2 or s.shape[1] != 4:
        raise ValueError(f"states: expected shape [N, 4], found {s.shape}")
    if s2.shape != s.shape:
        raise ValueError(f"next_states: expected shape {s.shape} (same as states), "
                         f"found {s2.shape}")
    if a.shape != (len(s),):
        raise ValueError(f"actions: expected shape ({len(s)},), found {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"actions: expected indices in {{0, 1}}, found {np.unique(a)[:5]}")
    keep = np.ones(len(s), bool)
    if dones is not None:
        d = np.asarray(dones, bool)
        if d.shape != (len(s),):
            raise ValueError(f"dones: expected shape ({len(s)},), found {d.shape}")
        keep = ~d
    s, s2, u = s[keep], s2[keep], 2.0 * a[keep] - 1.0
    if len(s) < min_transitions:
        raise ValueError(f"transitions: expected at least {min_transitions} not ending an "
                         f"episode to identify 4 quantities, found {len(s)}")
    if not (np.isfinite(s).all() and np.isfinite(s2).all()):
        raise ValueError("states/next_states: expected finite values, found NaN or inf")

    theta, omega = s[:, 2], s[:, 3]
    cos, sin = np.cos(theta), np.sin(theta)
    xacc = (s2[:, 1] - s[:, 1]) / tau
    thetaacc = (s2[:, 3] - omega) / tau
    (q1, q2), r1 = _lstsq(np.stack([sin, -cos * xacc], 1), thetaacc, "pole equation")
    (k1, k2), r2 = _lstsq(np.stack([u, omega ** 2 * sin - thetaacc * cos], 1), xacc,
                          "cart equation")
    if q2 <= 0 or k1 == 0:
        raise ValueError(f"fit: expected 3/(4 length) > 0 and a nonzero push per action, "
                         f"found {q2:.3g} and {k1:.3g}; the data is not from CartPole")
    gravity, length = q1 / q2, 3.0 / (4.0 * q2)
    fraction = k2 / length
    params = None
    if force_mag is not None:
        total_mass = force_mag / k1
        masspole = fraction * total_mass
        params = CartPoleParams(float(gravity), float(total_mass - masspole), float(masspole),
                                float(length), float(force_mag))
    rms = float(np.sqrt(np.mean(np.concatenate([r1, r2]) ** 2)))
    return SysIdResult(float(gravity), float(length), float(k1), float(fraction), params,
                       int(len(s)), rms)


class Transitions(NamedTuple):
    """Random-policy data: states/next_states [N, 4] float64, actions [N] int64 indices
    (1 -> +force_mag N, 0 -> -force_mag N; see ``action_to_force``), dones [N] bool."""

    states: np.ndarray
    actions: np.ndarray
    next_states: np.ndarray
    dones: np.ndarray


def collect_random_transitions(env_id: str = "CartPole-v1", steps: int = 2000, seed: int = 0,
                               exact_state: bool = True) -> Transitions:
    """Run a uniformly random policy for ``steps`` steps, resetting at episode ends.

    ``exact_state`` records ``env.unwrapped.state`` (float64, what the dynamics integrate);
    otherwise the float32 observations, whose rounding costs precision (relative errors
    near 1e-7 on 2,000 steps instead of ~1e-15).
    ``next_states`` is always the state the step produced, never the following reset.
    """
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    read = (lambda o: np.array(env.unwrapped.state, np.float64)) if exact_state else (
        lambda o: np.asarray(o, np.float64))
    x = read(obs)
    states, actions, next_states, dones = [], [], [], []
    for _ in range(steps):
        action = int(rng.integers(2))
        obs, _, terminated, truncated, _ = env.step(action)
        x2 = read(obs)
        states.append(x)
        actions.append(action)
        next_states.append(x2)
        dones.append(terminated or truncated)
        if terminated or truncated:
            obs, _ = env.reset()
            x2 = read(obs)
        x = x2
    env.close()
    return Transitions(np.array(states), np.array(actions, np.int64), np.array(next_states),
                       np.array(dones, bool))
