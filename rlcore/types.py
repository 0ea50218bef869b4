"""Records that cross process boundaries: numpy arrays and plain numbers only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ActionOut:
    """What a policy returns for a batch of observations (one row per sub-environment)."""

    action: np.ndarray  # what fragments keep and log-probs score
    log_prob: np.ndarray | None = None
    # what the env steps with when it differs from ``action`` (a Box action squashed or clipped
    # to the bounds and rescaled); None: ``action`` itself
    env_action: np.ndarray | None = None

    def for_env(self) -> np.ndarray:
        return self.action if self.env_action is None else self.env_action


@dataclass(frozen=True)
class SpaceSpec:
    """A picklable, framework-free description of an env's observation and action spaces."""

    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_kind: str  # "discrete" | "box"
    action_shape: tuple[int, ...]
    num_actions: int = 0  # discrete only
    action_low: tuple[float, ...] = ()  # box only
    action_high: tuple[float, ...] = ()
    num_obs: int = 0  # Discrete observation spaces only: the number of states

    @classmethod
    def from_gym(cls, observation_space, action_space) -> "SpaceSpec":
        import gymnasium as gym

        if isinstance(action_space, gym.spaces.Discrete):
            kind, shape, n, low, high = "discrete", (), int(action_space.n), (), ()
        elif isinstance(action_space, gym.spaces.Box):
            kind, shape, n = "box", tuple(action_space.shape), 0
            low = tuple(float(x) for x in np.ravel(action_space.low))
            high = tuple(float(x) for x in np.ravel(action_space.high))
        else:
            kind, shape, n, low, high = type(action_space).__name__, (), 0, (), ()
        num_obs = int(observation_space.n) if isinstance(observation_space, gym.spaces.Discrete) else 0
        return cls(tuple(observation_space.shape), str(observation_space.dtype), kind, shape, n,
                   low, high, num_obs)

    def action_bounds(self):
        """(low, high) of a Box action space as float32 arrays of the action's shape."""
        low = np.asarray(self.action_low, np.float32).reshape(self.action_shape)
        high = np.asarray(self.action_high, np.float32).reshape(self.action_shape)
        return low, high

    def to_env_action(self, a: np.ndarray) -> np.ndarray:
        """Actions in the policy's range [-1, 1] mapped affinely onto the env's Box bounds
        (unbounded dimensions pass as they are): the one helper every Box plugin uses."""
        from rlcore.ops.actions import rescale_action

        return rescale_action(a, *self.action_bounds())

    def describe_action(self) -> str:
        if self.action_kind == "discrete":
            return f"Discrete({self.num_actions})"
        if self.action_kind == "box":
            return f"Box({min(self.action_low)}, {max(self.action_high)}, {self.action_shape})"
        return self.action_kind

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class Fragment:
    """T steps of N sub-environments from one actor, time-major.

    ``terminated`` and ``truncated`` stay separate: after a truncation the episode's value is
    bootstrapped from ``final_obs`` (the observation the env returned before its reset); after a
    termination it is not. ``bootstrap_obs`` is the observation after the last step.
    """

    obs: np.ndarray  # [T, N, *obs_shape]
    action: np.ndarray  # [T, N, *action_shape]
    reward: np.ndarray  # [T, N] float32
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    bootstrap_obs: np.ndarray  # [N, *obs_shape]
    final_obs: np.ndarray  # [K, *obs_shape]: true last observations of truncated episodes
    final_idx: np.ndarray  # [K, 2] int64: (t, n) of each row of final_obs
    log_prob: np.ndarray | None  # [T, N] float32, behaviour policy
    policy_version: int
    actor_id: int
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # the step infos a plugin declared in ``DataSpec.info_keys``: key -> [T, N, *shape], the
    # info of the step itself (for a finished episode its final info, not the reset's)
    info: dict[str, np.ndarray] = field(default_factory=dict)
    # running-normalization statistics of what this fragment's actor saw since its previous
    # fragment (``rlcore.ops.normalize``), merged by the learner; None when normalization is off
    norm_delta: dict | None = None

    @property
    def num_steps(self) -> int:
        return int(self.reward.size)
