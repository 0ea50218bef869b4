"""Atari with the standard DeepMind preprocessing, from Gymnasium's and ale-py's wrappers.

``rlcore/<Game>-v5``: ALE v5 at frameskip 1, then ``AtariPreprocessing`` (up to 30 no-op
starts, frame skip 4 with max-pooling of the last two frames, 84x84 grayscale) and a 4-frame
stack -> uint8 observations [4, 84, 84]. Reward clipping is the experiment's
``env.clip_rewards: true`` (the rollout records raw returns, the learner sees sign(r)).
Sticky actions are off by default (DeepMind protocol); pass ``repeat_action_probability: 0.25``
in ``env.kwargs`` for the v5 protocol.
"""

from __future__ import annotations

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


def register() -> None:
    import gymnasium as gym

    for game in GAMES:
        env_id = f"rlcore/{game}-v5"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=make_atari_env, kwargs={"game": game})


PLUGIN = EnvPlugin(
    name="atari",
    description="Atari 2600 with DeepMind preprocessing (84x84 gray, skip 4, stack 4)",
    register=register,
    ids=tuple(f"rlcore/{g}-v5" for g in GAMES),
    requires="atari",
)
