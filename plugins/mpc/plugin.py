"""cem_mpc and ilqr_mpc: model-based control with a learned dynamics ensemble. A probabilistic
ensemble learns the dynamics from replay (the same model, config and fitting for both); the
actors plan with it at every env step, scoring imagined trajectories with the task's reward
code.

    actors:  uniformly random actions for ``random_steps`` env steps, then at every step
             cem_mpc:  CEM over action sequences with trajectory sampling (planner.py)
             ilqr_mpc: iLQR through the ensemble's mean dynamics (ilqr_planner.py)
             through the published ensemble
    learner: every 1 / ``replay_ratio`` env steps after ``learning_starts``, one Adam step on
             the ensemble's Gaussian NLL over a replay sample (model.py)

Only envs with reward code in ``rewards.py`` are supported (Pendulum-v1, InvertedPendulum-v5,
Reacher-v5, HalfCheetah-v5; ilqr_mpc not InvertedPendulum, whose reward has no gradient);
others are refused when the run builds its modules, before any actor starts.
"""

from __future__ import annotations

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.mpc.config import CEMMPCConfig, ILQRMPCConfig
from rlcore.plugins.mpc.diagnostics import replay_metrics
from rlcore.plugins.mpc.ilqr_planner import ILQRPlanner
from rlcore.plugins.mpc.model import loss, make_ensemble, prepare_batch
from rlcore.plugins.mpc.planner import CEMPlanner
from rlcore.plugins.mpc.rewards import task_for


def make_modules(cfg, spaces) -> dict:
    task_for(cfg.task, spaces)  # refuses envs without reward code first
    return {"model": make_ensemble(cfg, spaces)}


def make_policy(modules: dict, cfg, spaces, explore: bool) -> CEMPlanner:
    return CEMPlanner(modules["model"], task_for(cfg.task, spaces), cfg, spaces, explore)


def make_ilqr_policy(modules: dict, cfg, spaces, explore: bool) -> ILQRPlanner:
    return ILQRPlanner(modules["model"], task_for(cfg.task, spaces), cfg, spaces, explore)


# what both planners share: the model, its fitting on replay, the diagnostics
SHARED = dict(
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("box",),
    learner_defaults={"lr": 1e-3, "max_grad_norm": None, "num_epochs": 1, "minibatch_size": 0},
    contract_env=("Pendulum-v1", {}),
    replay_metrics=replay_metrics,
)

PLUGIN = AlgorithmPlugin(
    name="cem_mpc",
    description="PETS: probabilistic ensemble dynamics, CEM model-predictive control "
                "with the env's reward code",
    config_cls=CEMMPCConfig, make_policy=make_policy, **SHARED)

ILQR = AlgorithmPlugin(
    name="ilqr_mpc",
    description="probabilistic ensemble dynamics, iLQR model-predictive control through its "
                "mean with a disagreement penalty, the env's reward code",
    config_cls=ILQRMPCConfig, make_policy=make_ilqr_policy, **SHARED)


def plugin_for(cfg) -> AlgorithmPlugin:
    """The plugin whose config ``cfg`` is (the diagnostics build that planner)."""
    return ILQR if isinstance(cfg, ILQRMPCConfig) else PLUGIN
