"""Atari with the standard DeepMind preprocessing, from Gymnasium's and ale-py's wrappers.

``rlcore/<Game>-v5``: ALE v5 at frameskip 1, then ``AtariPreprocessing`` (up to 30 no-op
starts, frame skip 4 with max-pooling of the last two frames, 84x84 grayscale) and a 4-frame
stack -> uint8 observations [4, 84, 84]. Reward clipping is the experiment's
``env.clip_rewards: true`` (the rollout records raw returns, the learner sees sign(r)).
Sticky actions are off by default (DeepMind protocol); pass ``repeat_action_probability: 0.25``
in ``env.kwargs`` for the v5 protocol.

``rlcore/<Game>Native-v5``: the same preprocessing done inside ale-py's C++ vector env
(``ale_py.vector_env.AtariVectorEnv``: no-op starts, FIRE on reset where the game needs it,
frame skip 4 with max-pooling, 84x84 grayscale, 4-frame stack padded with zeros after a reset),
which steps its sub-envs in threads: on 2 cores it ran 2.5-3x the step rate of the wrapped
single envs (benchmarks/RESULTS.md). ``episodic_life: true`` ends an episode at each life lost
without resetting the game (DeepMind's training protocol; evaluate with it off, through
``eval.env_kwargs``). Rewards stay raw here too (``env.clip_rewards``).
"""

from __future__ import annotations

import re

from rlcore.plugin import EnvPlugin

GAMES = ("Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert", "BeamRider", "Enduro",
         "Asteroids", "MsPacman", "Freeway")


def make_atari_env(game: str, noop_max: int = 30, frame_skip: int = 4, screen_size: int = 84,
                   frame_stack: int = 4, terminal_on_life_loss: bool = False,
                   repeat_action_probability: float = 0.0, render_mode: str | None = None):
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=repeat_action_probability,
                   full_action_space=False, render_mode=render_mode)
    env = AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size,
                             terminal_on_life_loss=terminal_on_life_loss, grayscale_obs=True)
    return FrameStackObservation(env, frame_stack)


def ale_rom_name(game: str) -> str:
    """'SpaceInvaders' -> 'space_invaders' (ale-py's ROM names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def make_atari_vector_env(num_envs: int = 1, game: str = "Pong", noop_max: int = 30,
                          frame_skip: int = 4, screen_size: int = 84, frame_stack: int = 4,
                          episodic_life: bool = False, repeat_action_probability: float = 0.0,
                          num_threads: int = 0, max_episode_steps: int | None = None, **_spec):
    """ale-py's native vector env with the DeepMind preprocessing, autoresetting in the same
    step (the final observation of a truncated episode is in ``info['final_obs']``)."""
    from ale_py.vector_env import AtariVectorEnv
    from gymnasium.vector import AutoresetMode

    frames = 108_000 if max_episode_steps is None else max_episode_steps * frame_skip
    return AtariVectorEnv(ale_rom_name(game), num_envs, num_threads=num_threads,
                          autoreset_mode=AutoresetMode.SAME_STEP, noop_max=noop_max,
                          frameskip=frame_skip, img_height=screen_size, img_width=screen_size,
                          stack_num=frame_stack, episodic_life=episodic_life,
                          repeat_action_probability=repeat_action_probability,
                          reward_clipping=False, max_num_frames_per_episode=frames)


def make_native_single(game: str, episodic_life: bool = False, num_threads: int = 0,
                       vectorization_mode=None, vector_kwargs=None, **kwargs):
    """One env with the native ids' spaces (``rlcore`` probes spaces on a single env)."""
    return make_atari_env(game, terminal_on_life_loss=episodic_life, **kwargs)


def register() -> None:
    import gymnasium as gym

    for game in GAMES:
        env_id = f"rlcore/{game}-v5"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=make_atari_env, kwargs={"game": game})
        native = f"rlcore/{game}Native-v5"
        if native not in gym.registry:
            # spec kwargs choose the vector entry point for gymnasium.make_vec (they take
            # precedence over the caller's vectorization_mode); a plain make() ignores them
            gym.register(native, entry_point=make_native_single,
                         vector_entry_point=make_atari_vector_env,
                         kwargs={"game": game, "vectorization_mode": "vector_entry_point",
                                 "vector_kwargs": {}})


PLUGIN = EnvPlugin(
    name="atari",
    description="Atari 2600 with DeepMind preprocessing (84x84 gray, skip 4, stack 4)",
    register=register,
    ids=tuple(f"rlcore/{g}{kind}-v5" for g in GAMES for kind in ("", "Native")),
    requires="atari",
)
