"""Reward and termination as code, per environment: what the planner scores imagined
trajectories with (PETS, Chua et al. 2018, and mbrl-lib do the same). Learning the reward
too is possible, but on the envs below it is a known, cheap function of the observation and
the action, and an error in a learned reward would be planned against as eagerly as a true one.

A ``Task`` names the env it was written for and the spaces that env has; ``task_for`` refuses
any other name, and a supported name whose spaces do not match the env the run makes. The
plugin sees the env's spaces, not its id, so ``algo.task`` names the reward code to use.

Functions take torch tensors with any leading dimensions: ``obs [..., obs_dim]``, the
policy's action ``a [..., act_dim]`` in [-1, 1] (before the env's rescaling) and, where the
env's reward depends on the state the step reaches, ``next_obs [..., obs_dim]``; they return
``[...]``. The reward of step t is r(s_t, a_t, s_{t+1}), as the envs compute it (Pendulum from
s_t and a_t; the MuJoCo envs after the simulation step, from s_{t+1}). A task whose reward
reads ``next_obs`` says so (``uses_next``): iLQR then differentiates the reward through the
model's prediction of s_{t+1}; the others are called with ``next_obs=None``.

Checked against the envs' own rewards on random-action transitions in tests/test_mpc_tasks.py:
exact for Pendulum-v1, InvertedPendulum-v5 and Reacher-v5; HalfCheetah-v5's is a surrogate
(its docstring says by how much).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from rlcore.errors import IncompatibleEnvError
from rlcore.plugins.mpc.mujoco_step import MujocoStep


def pendulum_reward(obs: torch.Tensor, action: torch.Tensor,
                    next_obs: torch.Tensor | None = None) -> torch.Tensor:
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


def inverted_pendulum_terminated(obs: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum-v5 ends when the pole's angle (obs[1], qpos[1]) leaves [-0.2, 0.2] or
    the observation is not finite (gymnasium's own test)."""
    return ~torch.isfinite(obs).all(-1) | (obs[..., 1].abs() > 0.2)


def inverted_pendulum_reward(obs: torch.Tensor, action: torch.Tensor,
                             next_obs: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum-v5: 1 for a step that does not end the episode, 0 for the one that does
    (``reward = int(not terminated)`` of the state reached). An indicator: nothing to
    differentiate, so only the sampling planner (cem_mpc) can plan with it."""
    return (~inverted_pendulum_terminated(next_obs)).to(obs.dtype)


def inverted_pendulum_rail_end(obs: torch.Tensor) -> torch.Tensor:
    """The cart within 0.1 of its rail's end (qpos[0] in [-1, 1], a joint limit). Not the env's
    termination: there the joint stops the cart dead and the pole falls a few steps later, a
    collision the model has no data on until it has crashed there (``Task.plan_terminated``)."""
    return obs[..., 0].abs() > 0.9


def inverted_pendulum_tie_break(next_obs: torch.Tensor) -> torch.Tensor:
    """In [0, 1]: how far the state is from the middle, the pole's angle relative to its
    termination bound and the cart's position relative to the rail's end (qpos[0] in
    [-1, 1]), ((obs[1] / 0.2)^2 + obs[0]^2) / 2, capped at 1. A cart that drifts to the end of
    its rail ends the episode there later; a planner that sees 0.6 s ahead needs the hint. Not
    a reward: the sampling planner subtracts it with a weight that keeps its sum over a horizon
    below one step of survival (``Task.tie_break``)."""
    return (0.5 * ((next_obs[..., 1] / 0.2).square() + next_obs[..., 0].square())).clamp(max=1.0)


def reacher_reward(obs: torch.Tensor, action: torch.Tensor,
                   next_obs: torch.Tensor) -> torch.Tensor:
    """Reacher-v5 (reward_dist_weight = reward_control_weight = 1, the defaults):

        r = -||fingertip - target|| - ||a||^2,

    the distance of the state reached: obs[8:10] is the fingertip-to-target vector in the
    plane (the bodies' heights are equal, so the planar norm is gymnasium's 3-d one). The
    action is the env's own (Box(-1, 1)^2: no rescaling); the clip keeps imagined actions in
    it."""
    return -next_obs[..., 8:10].norm(dim=-1) - action.clamp(-1.0, 1.0).square().sum(-1)


def half_cheetah_reward(obs: torch.Tensor, action: torch.Tensor,
                        next_obs: torch.Tensor) -> torch.Tensor:
    """HalfCheetah-v5 (forward_reward_weight 1, ctrl_cost_weight 0.1), a surrogate:

        r = (v_t + v_{t+1}) / 2 - 0.1 ||a||^2,   v = obs[8], the root's x velocity (qvel[0])

    The env rewards (x_{t+1} - x_t) / dt, and x is not in the observation (gymnasium excludes
    it by default). The mean of the velocities at both ends of the step approximates that
    displacement: on 3,000 random-action steps its error is 0.14 on average against a reward
    std of 0.67 (correlation 0.96), on smooth periodic actions 0.05 against 0.24; the velocity
    of s_{t+1} alone errs by 0.22 and 0.07 (tests/test_mpc_tasks.py bounds it). Over a horizon
    the velocities sum to the same distance up to the ends, which is what planning compares."""
    return (0.5 * (obs[..., 8] + next_obs[..., 8])
            - 0.1 * action.clamp(-1.0, 1.0).square().sum(-1))


@dataclass(frozen=True)
class Task:
    env_id: str
    obs_shape: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    # (obs, action, next_obs) -> reward [...]; next_obs is None unless uses_next
    reward: Callable[..., torch.Tensor]
    # obs [..., obs_dim] -> bool [...], whether the episode ended there; None: never ends
    terminated: Callable[[torch.Tensor], torch.Tensor] | None = None
    # the env's true step (obs, a) -> next obs: the diagnostics' planned-versus-random
    # comparison needs it (Pendulum's equations; MuJoCo itself for the MuJoCo envs,
    # mujoco_step.py); None: that comparison is skipped
    dynamics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # the reward reads next_obs (the state the step reaches)
    uses_next: bool = False
    # the reward has informative gradients (iLQR can plan with it); False for indicators
    smooth: bool = True
    # next_obs -> [...] in [0, 1], or None: breaks the ties of an indicator reward. With an
    # indicator, every sequence that survives the horizon scores the same, and CEM's elites are
    # then any sequences at all: the plan drifts until a fall is in sight. The sampling planner
    # scores r - tie_break(s') / (2 H) per step, whose sum over a horizon of H steps stays
    # below 1/2, less than one step of survival: longer survival always wins, and among
    # sequences that survive equally long the one that keeps the state closest to the middle.
    tie_break: Callable[[torch.Tensor], torch.Tensor] | None = None
    # obs -> bool [...], or None: states the planners treat as the end of an imagined episode
    # besides ``terminated``, where the env goes on but is known to be lost (a hard limit the
    # model cannot have learned before reaching it). The env's own rewards and termination,
    # and so every reported return, are unchanged.
    plan_terminated: Callable[[torch.Tensor], torch.Tensor] | None = None


TASKS: dict[str, Task] = {
    "Pendulum-v1": Task("Pendulum-v1", (3,), (-2.0,), (2.0,), pendulum_reward,
                        dynamics=pendulum_dynamics),
    "InvertedPendulum-v5": Task("InvertedPendulum-v5", (4,), (-3.0,), (3.0,),
                                inverted_pendulum_reward, inverted_pendulum_terminated,
                                dynamics=MujocoStep("InvertedPendulum-v5"),
                                uses_next=True, smooth=False,
                                tie_break=inverted_pendulum_tie_break,
                                plan_terminated=inverted_pendulum_rail_end),
    "Reacher-v5": Task("Reacher-v5", (10,), (-1.0,) * 2, (1.0,) * 2, reacher_reward,
                       dynamics=MujocoStep("Reacher-v5"), uses_next=True),
    "HalfCheetah-v5": Task("HalfCheetah-v5", (17,), (-1.0,) * 6, (1.0,) * 6,
                           half_cheetah_reward, dynamics=MujocoStep("HalfCheetah-v5"),
                           uses_next=True),
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
