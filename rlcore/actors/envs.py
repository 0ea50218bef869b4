"""Making the rollout's environments: the vector env every worker steps, and the probe that
checks an env speaks the Gymnasium API (on the driver, before any actor starts)."""

from __future__ import annotations

import importlib

import numpy as np

from rlcore.errors import IncompatibleEnvError
from rlcore.types import SpaceSpec


def make_vec_env(env_id: str, num_envs: int, kwargs: dict | None = None):
    """A synchronous Gymnasium vector env that autoresets in the same step, so the final
    observation of a truncated episode is available (``info['final_obs']``) for bootstrapping.
    (On 2 cores the async vector env is not faster: per-step synchronization dominates.)"""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from rlcore.registry import ensure_env_registered

    ensure_env_registered(env_id)
    # a registered native vector env (ale-py's AtariVectorEnv: uint8 frames) takes no wrappers.
    # gym.spec() does not take a module-qualified id ("module:ns/Name-v0"), which gym.make
    # does: the module is imported (it registers the id) and the bare id asked for.
    module, _, bare_id = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    native = gym.spec(bare_id).vector_entry_point is not None
    # copy=False: step() returns its own observation buffer; callers copy what they keep
    # (the rollout writes each observation into its fragment before the next step)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP, "copy": False},
                        wrappers=None if native else [float32_observations], **(kwargs or {}))


def float32_observations(env):
    """Networks, fragments and replay hold float32; Gymnasium's MuJoCo envs (and many others)
    declare float64 observations, which reached the networks as float64 and failed there
    ("mat1 and mat2 must have the same dtype") after every worker restart. Such observations
    are cast to float32 in the env, once; other spaces are left as they are."""
    import gymnasium as gym

    space = env.observation_space
    if isinstance(space, gym.spaces.Box) and space.dtype == np.float64:
        # the bounds cast here, not by Box (which warns that it lowered their precision)
        box = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                             space.shape, np.float32)
        return gym.wrappers.TransformObservation(env, lambda obs: np.asarray(obs, np.float32),
                                                 box)
    return env


# The extra that brings a missing module, for the message of an env that cannot be made.
MISSING_PACKAGE_FIX = {
    "ale_py": "install the Atari extra: pip install 'rlcore[atari]'",
    "cv2": "install the Atari extra: pip install 'rlcore[atari]'",
    "mujoco": "install the MuJoCo extra: pip install 'rlcore[mujoco]'",
    "pettingzoo": "install PettingZoo: pip install pettingzoo",
}


def probe_spaces(env_id: str, kwargs: dict | None = None) -> SpaceSpec:
    """Make one env on the driver and check it speaks the Gymnasium API (before any actor)."""
    import gymnasium as gym

    from rlcore.registry import ensure_env_registered

    ensure_env_registered(env_id)
    try:
        env = gym.make(env_id, **(kwargs or {}))
    except gym.error.NamespaceNotFound as exc:
        hint = " (install the Atari extra: pip install 'rlcore[atari]')" if env_id.startswith("ALE/") else ""
        raise IncompatibleEnvError(f"env.id '{env_id}': {exc}{hint}") from None
    except gym.error.Error as exc:  # Gymnasium's own did-you-mean messages
        raise IncompatibleEnvError(f"env.id '{env_id}': {exc}") from None
    except TypeError as exc:
        raise IncompatibleEnvError(f"env '{env_id}' rejected env.kwargs {kwargs}: {exc}") from None
    except ImportError as exc:
        fix = MISSING_PACKAGE_FIX.get((exc.name or "").partition(".")[0], "install it")
        raise IncompatibleEnvError(f"env '{env_id}' needs a package that is missing ({exc}); "
                                   f"{fix}") from None
    try:
        try:
            obs, info = env.reset(seed=0)
            obs_ok = env.observation_space.contains(np.asarray(obs, dtype=env.observation_space.dtype))
            result = env.step(env.action_space.sample()) if obs_ok else ()
        except (ValueError, TypeError, AssertionError) as exc:  # Gymnasium's wrappers unpacking
            raise IncompatibleEnvError(
                f"env '{env_id}' does not follow the Gymnasium API ({type(exc).__name__}: {exc}); "
                "rlcore needs reset() -> (obs, info) and step() -> (obs, reward, terminated, "
                "truncated, info). Wrap old gym envs with gymnasium's compatibility wrapper "
                "(shimmy) or port them") from None
        if not obs_ok:
            raise IncompatibleEnvError(
                f"env '{env_id}': reset() returned an observation of shape {np.shape(obs)} and dtype "
                f"{np.asarray(obs).dtype}; its observation_space is {env.observation_space}")
        if len(result) != 5:
            raise IncompatibleEnvError(
                f"env '{env_id}': step() returned {len(result)} values; rlcore needs the Gymnasium "
                "API (obs, reward, terminated, truncated, info). Wrap old gym envs with "
                "gymnasium's compatibility wrapper or port them")
        return SpaceSpec.from_gym(float32_observations(env).observation_space, env.action_space)
    finally:
        env.close()
