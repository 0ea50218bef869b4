"""Reward and termination as code, per environment: what the planner scores imagined
trajectories with (PETS, Chua et al. 2018, and mbrl-lib do the same). Learning the reward
too is possible, but on the envs below it is a known, cheap function of the observation and
the action, and an error in a learned reward would be planned against as eagerly as a true one.

A ``Task`` names the env it was written for and the spaces that env has; ``task_for`` refuses
any other name, and a supported name whose spaces do not match the env the run makes. The
plugin sees the env's spaces, not its id, so ``algo.task`` names the reward code to use.

Functions take torch tensors with any leading dimensions: ``obs [..., obs_dim]`` and the
policy's action ``a [..., act_dim]`` in [-1, 1] (before the env's rescaling), and return
``[...]``. The reward of step t is computed from (s_t, a_t), as the envs do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from rlcore.errors import IncompatibleEnvError


def pendulum_reward(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1 from its observation (cos th, sin th, th_dot) and action a in [-1, 1]:

        th = atan2(sin th, cos th) in (-pi, pi],   u = 2 clip(a, -1, 1)   (max torque 2)
        r = -(th^2 + 0.1 th_dot^2 + 0.001 u^2)

    gymnasium computes it from its angle normalized to [-pi, pi), the same number (at th = pi
    too, since only th^2 enters)."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    torque = 2.0 * action[..., 0].clamp(-1.0, 1.0)
    return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * torque.square())


def pendulum_dynamics(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's own step (gymnasium's equations; g = 10, m = l = 1, dt = 0.05):

        th_dot' = clip(th_dot + (3 g / (2 l) sin th + 3 u / (m l^2)) dt, -8, 8)
        th' = th + th_dot' dt,   u = 2 clip(a, -1, 1)

    The diagnostics roll it out next to the model (planned versus random sequences)."""
    theta, theta_dot = torch.atan2(obs[..., 1], obs[..., 0]), obs[..., 2]
    torque = 2.0 * action[..., 0].clamp(-1.0, 1.0)
    g, m, length, dt = 10.0, 1.0, 1.0, 0.05
    theta_dot = theta_dot + (3 * g / (2 * length) * torch.sin(theta)
                             + 3.0 / (m * length ** 2) * torque) * dt
    theta_dot = theta_dot.clamp(-8.0, 8.0)
    theta = theta + theta_dot * dt
    return torch.stack([torch.cos(theta), torch.sin(theta), theta_dot], -1)


@dataclass(frozen=True)
class Task:
    env_id: str
    obs_shape: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    reward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    # obs [..., obs_dim] -> bool [...], whether the episode ended there; None: never ends
    terminated: Callable[[torch.Tensor], torch.Tensor] | None = None
    # the env's true step (obs, a) -> next obs, where it is known as code: the diagnostics'
    # planned-versus-random comparison needs it; None: that comparison is skipped
    dynamics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


TASKS: dict[str, Task] = {
    "Pendulum-v1": Task("Pendulum-v1", (3,), (-2.0,), (2.0,), pendulum_reward,
                        dynamics=pendulum_dynamics),
}


def task_for(name: str, spaces) -> Task:
    """The reward code named ``name``, checked against the env's spaces."""
    supported = ", ".join(sorted(TASKS))
    task = TASKS.get(name)
    if task is None:
        raise IncompatibleEnvError(
            f"cem_mpc and ilqr_mpc plan with reward code written per env and have it for "
            f"{supported} only; "
            f"algo.task is '{name}'. Set algo.task to one of them and run it on that env, or "
            "use a model-free algorithm (sac, td3) for other envs (plugins/mpc/README.md)")
    found = (tuple(spaces.obs_shape), spaces.action_kind, tuple(spaces.action_low),
             tuple(spaces.action_high))
    if found != (task.obs_shape, "box", task.action_low, task.action_high):
        raise IncompatibleEnvError(
            f"cem_mpc and ilqr_mpc plan with reward code written per env ({supported}); algo.task "
            f"'{name}' needs observations of shape {task.obs_shape} and actions Box("
            f"{task.action_low}, {task.action_high}), this env has observations of shape "
            f"{tuple(spaces.obs_shape)} and actions {spaces.describe_action()}. Run them on "
            f"{supported}, or use a model-free algorithm (sac, td3) for this env")
    return task
