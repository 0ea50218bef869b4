"""MuJoCo locomotion (Gymnasium's v5 tasks) with rlcore's continuous-control defaults.

``rlcore/<Task>-v5`` is Gymnasium's ``<Task>-v5`` (same dynamics, rewards and 1000-step time
limit, so returns compare with published numbers) with float32 observations, the dtype the
policy networks use. The rest of the usual continuous-control recipe is the experiment's, not
the env's, because its statistics must be shared by every rollout actor and saved with the run:

    env:
      normalize_obs: true      # running mean/std, one set of statistics for the whole run
      normalize_reward: true   # divide by the running std of the discounted return
    algo:
      squash: false            # Gaussian actions clipped to the bounds (tanh squashing optional)

Deterministic evaluation (``eval.deterministic: true``, the default) uses the mean action.
Needs the ``mujoco`` extra: ``pip install 'rlcore[mujoco]'``.
"""

from __future__ import annotations

from rlcore.plugin import EnvPlugin

TASKS = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid", "HumanoidStandup", "Swimmer",
         "Reacher", "InvertedPendulum", "InvertedDoublePendulum", "Pusher")


def _route_mujoco_warnings() -> None:
    """MuJoCo prints its warnings and appends them to MUJOCO_LOG.TXT in the working directory
    (Gymnasium's v5 models trigger a deprecation warning at every compile); send them to the
    ``rlcore.envs.mujoco`` logger instead."""
    import logging

    import mujoco

    log = logging.getLogger(__name__)
    mujoco.set_mju_user_warning(lambda msg: log.debug("MuJoCo: %s", msg.strip()))


def make_mujoco_env(task: str, render_mode: str | None = None, **kwargs):
    import gymnasium as gym
    import numpy as np
    from gymnasium.wrappers import TransformObservation

    _route_mujoco_warnings()  # an ImportError names the mujoco module: the probe says which extra
    try:
        env = gym.make(f"{task}-v5", render_mode=render_mode, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise ImportError(str(exc), name="mujoco") from None
    space = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)
    return TransformObservation(env, lambda obs: obs.astype(np.float32), space)


def register() -> None:
    import gymnasium as gym

    for task in TASKS:
        env_id = f"rlcore/{task}-v5"
        if env_id not in gym.registry:
            # the inner gym.make applies Gymnasium's own TimeLimit (1000 steps for locomotion)
            gym.register(env_id, entry_point=make_mujoco_env, kwargs={"task": task},
                         disable_env_checker=True, order_enforce=False)


PLUGIN = EnvPlugin(
    name="mujoco",
    description="MuJoCo v5 locomotion (HalfCheetah, Hopper, ...) with float32 observations",
    register=register,
    ids=tuple(f"rlcore/{t}-v5" for t in TASKS),
    requires="mujoco",
)
