"""lqr: identify a system of known form, then balance it with the linear-quadratic regulator.

The physicist's route to control: the model's form is known (CartPole-v1's equations,
``rlcore.ops.sysid``), its constants are not. Until a fit exists the actors act uniformly at
random; every ``1 / replay_ratio`` env steps after ``learning_starts`` the learner takes a
replay sample of ``batch_size`` transitions (terminated ones dropped: their next observation
is not the dynamics' output), identifies the constants by linear least squares, linearizes the
Euler dynamics at the upright equilibrium (autograd), solves the infinite-horizon discrete LQR
(``rlcore.ops.control.lqr_infinite``, weights ``algo.q_diag`` and ``algo.r``) and publishes the
gain K with the constants. The actors push in the direction of the LQR force -K x (CartPole's
actions are +-force_mag): ``action = 1 if -K x > 0 else 0``.

Only CartPole-v1's model form is known to this plugin; other envs are refused when the run
builds its modules (before any actor starts).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from rlcore.errors import IncompatibleEnvError
from rlcore.learner.batches import replay_batch
from rlcore.plugin import AlgorithmPlugin, DataSpec
from rlcore.regimes.transition_config import ReplayConfig
from rlcore.types import ActionOut

FIELDS = ("gravity", "masscart", "masspole", "length", "force_mag")


class LQRConfig(ReplayConfig):
    batch_size: int = Field(2000, ge=4, le=65_536,
                            description="transitions per identification (a replay sample)")
    learning_starts: int = Field(2000, ge=0, description="random-policy env steps before the "
                                 "first identification")
    replay_ratio: float = Field(0.001, gt=0, le=256,
                                description="identifications per env step (0.001: every 1,000)")
    q_diag: list[float] = Field([1.0, 1.0, 10.0, 1.0], min_length=4, max_length=4,
                                description="LQR state weights (x, x_dot, theta, theta_dot)")
    r: float = Field(1e-3, gt=0, description="LQR weight of the force (per newton squared)")
    force_mag: float = Field(10.0, gt=0, description="newtons per action (fixes the mass scale, "
                             "which transitions cannot)")


class Controller(nn.Module):
    """The identified constants (a parameter the learner writes, never a gradient) and the gain
    K [1, 4]; ``fitted`` is 0 until the first identification."""

    def __init__(self):
        super().__init__()
        self.constants = nn.Parameter(torch.zeros(5, dtype=torch.float64), requires_grad=False)
        self.register_buffer("gain", torch.zeros(1, 4, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.float64))


def make_modules(cfg, spaces) -> dict:
    if spaces.obs_shape != (4,) or spaces.num_actions != 2:
        raise IncompatibleEnvError(
            f"lqr knows only CartPole-v1's model form (4 state variables, 2 actions); this env "
            f"has observations of shape {spaces.obs_shape} and {spaces.num_actions} actions. "
            "Use a model-free algorithm for it (ppo, dqn; sac or td3 for continuous actions)")
    return {"controller": Controller()}


class LQRPolicy:
    def __init__(self, controller: Controller):
        self.controller = controller

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if float(self.controller.fitted) == 0.0:  # nothing identified yet: explore at random
            return ActionOut(rng.integers(0, 2, len(obs)))
        force = -np.asarray(obs, np.float64) @ self.controller.gain.numpy().T  # [N, 1]
        return ActionOut((force[:, 0] > 0).astype(np.int64))


def make_policy(modules: dict, cfg, spaces, explore: bool) -> LQRPolicy:
    return LQRPolicy(modules["controller"])


def prepare_batch(modules, sample, cfg, state, rng=None):
    return replay_batch(sample, torch.device("cpu"))


def _transitions(batch):
    keep = (batch.discount > 0).numpy()  # terminated: the stored next obs is not f(x, u)
    return (batch.obs.double().numpy()[keep], batch.action.long().numpy()[keep],
            batch.next_obs.double().numpy()[keep])


def update(learner, batch) -> dict[str, float]:
    from rlcore.ops.control import lqr_infinite
    from rlcore.ops.sysid import identify_cartpole, linear_model

    cfg, controller = learner.cfg, learner.modules["controller"]
    states, actions, next_states = _transitions(batch)
    try:
        fit = identify_cartpole(states, actions, next_states, force_mag=cfg.force_mag,
                                min_transitions=4)
        A, B = linear_model(fit.params)
        K, _ = lqr_infinite(A, B, np.diag(cfg.q_diag), [[cfg.r]])
    except ValueError:  # too few or degenerate transitions: keep the last fit
        return {"fitted": float(controller.fitted), "transitions": float(len(states))}
    with torch.no_grad():
        controller.constants.copy_(torch.tensor([getattr(fit.params, f) for f in FIELDS]))
        controller.gain.copy_(torch.from_numpy(np.asarray(K, np.float64)))
        controller.fitted.fill_(1.0)
    return {"fitted": 1.0, "transitions": float(fit.n_used), "residual_rms": fit.residual_rms,
            **{f: float(getattr(fit.params, f)) for f in FIELDS[:4]},
            "gain_norm": float(np.linalg.norm(K))}


def loss(modules, batch, cfg, state, rng=None):
    """The identified model's one-step prediction error on ``batch`` (a diagnostic: ``update``
    fits by least squares, not by gradient steps)."""
    from rlcore.ops.sysid import CartPoleParams, action_to_force, cartpole_step

    states, actions, next_states = _transitions(batch)
    c = modules["controller"].constants.detach()
    if float(modules["controller"].fitted) == 0.0 or not len(states):
        err = torch.zeros((), dtype=torch.float64)
    else:
        params = CartPoleParams(*[float(v) for v in c])
        pred = cartpole_step(states, action_to_force(actions, params.force_mag), params)
        err = torch.as_tensor(float(np.mean((pred - next_states) ** 2)))
    return {"model": err}, {"model_mse": err}


PLUGIN = AlgorithmPlugin(
    name="lqr",
    description="identify CartPole's physical constants by least squares, balance it by LQR",
    config_cls=LQRConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    update=update,
    learner_defaults={"device": "cpu"},
    contract_env=("CartPole-v1", {}),
)
