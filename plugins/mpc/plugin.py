"""cem_mpc: PETS-style model-based control. A probabilistic ensemble learns the dynamics from
replay; the actors plan with it by CEM model-predictive control, scoring imagined
trajectories with the task's reward code.

    actors:  uniformly random actions for ``random_steps`` env steps, then at every step
             CEM over action sequences (planner.py) through the published ensemble
    learner: every 1 / ``replay_ratio`` env steps after ``learning_starts``, one Adam step on
             the ensemble's Gaussian NLL over a replay sample (model.py)

Only envs with reward code in ``rewards.py`` are supported (Pendulum-v1); others are refused
when the run builds its modules, before any actor starts.
"""

from __future__ import annotations

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.mpc.config import CEMMPCConfig
from rlcore.plugins.mpc.model import loss, make_ensemble, prepare_batch
from rlcore.plugins.mpc.planner import CEMPlanner
from rlcore.plugins.mpc.rewards import task_for


def make_modules(cfg, spaces) -> dict:
    task_for(cfg.task, spaces)  # refuses envs without reward code first
    return {"model": make_ensemble(cfg, spaces)}


def make_policy(modules: dict, cfg, spaces, explore: bool) -> CEMPlanner:
    return CEMPlanner(modules["model"], task_for(cfg.task, spaces), cfg, spaces, explore)


PLUGIN = AlgorithmPlugin(
    name="cem_mpc",
    description="PETS: probabilistic ensemble dynamics, CEM model-predictive control "
                "with the env's reward code",
    config_cls=CEMMPCConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("box",),
    learner_defaults={"lr": 1e-3, "max_grad_norm": None, "num_epochs": 1, "minibatch_size": 0},
    contract_env=("Pendulum-v1", {}),
)
