"""Tiny deterministic-given-seed envs for contract checks and tests: terminations and
truncations both occur (FakeEnv, FakeBoxEnv), or observations are known (CounterEnv); and a
CartPole paced by a sleep per step (SlowCartPole), for cluster tests."""

import time

import gymnasium as gym
import numpy as np

FAKE_ID = "rlcore-test/Fake-v0"
FAKE_BOX_ID = "rlcore-test/FakeBox-v0"


class FakeEnv(gym.Env):
    """Obs in R^3; reward 1 when the action matches sign(obs[0]); terminates after a random
    3..8 steps, truncated at 6 by the TimeLimit registered with it. ``info['label']`` is the
    right action for the observation acted on; ``info['step_left']`` counts down to 0 at a
    termination and is also in the reset info (where it must not be mistaken for the step's)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._left = int(self.np_random.integers(3, 9))
        return self._obs(), {"step_left": self._left}

    def _obs(self):
        self._shown = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self._shown

    def step(self, action):
        label = int(self._shown[0] > 0)  # the right action for the observation acted on
        obs = self._obs()
        self._left -= 1
        reward = float(int(action) == int(obs[0] > 0))
        return obs, reward, self._left <= 0, False, {"label": label, "step_left": self._left}


class FakeBoxEnv(FakeEnv):
    """FakeEnv with a 2-D Box action in asymmetric bounds [-2, 3] x [0, 1]: reward is minus the
    squared distance of the action to a target set by the observation. Raises on an action
    outside the bounds or of the wrong shape/dtype, so tests see what the env was stepped with."""

    action_space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([3.0, 1.0], np.float32))

    def step(self, action):
        if not self.action_space.contains(np.asarray(action, np.float32)):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        target = np.array([self._shown[0] * 2.0, 0.5], np.float32)
        obs = self._obs()
        self._left -= 1
        reward = -float(np.sum((np.asarray(action) - target) ** 2))
        # the label: the best action for the observation acted on (for the supervised plugin)
        return obs, reward, self._left <= 0, False, {"step_left": self._left, "label": target}


def register(kind: str = "discrete") -> str:
    env_id, entry = (FAKE_BOX_ID, FakeBoxEnv) if kind == "box" else (FAKE_ID, FakeEnv)
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry, max_episode_steps=6)
    return env_id


# Importing the module registers both fake envs, so another process (a Ray actor) finds them by
# "rlcore.testing.fake_env:rlcore-test/Fake-v0", Gymnasium's module-qualified id.
register("discrete")
register("box")


COUNTER_ID = "rlcore-test/Counter-v0"


class CounterEnv(gym.Env):
    """Observation ``[k, 10 k + 1]`` at the k-th step of an episode (k = 0 after reset), reward 1,
    never terminates; truncated at k = 4 by its TimeLimit. Known observations for statistics tests."""

    observation_space = gym.spaces.Box(-100.0, 100.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._k = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self._k, 10 * self._k + 1], np.float32)

    def step(self, action):
        self._k += 1
        return self._obs(), 1.0, False, False, {}


def register_counter() -> str:
    if COUNTER_ID not in gym.registry:
        gym.register(COUNTER_ID, entry_point=CounterEnv, max_episode_steps=4)
    return COUNTER_ID


SLOW_ID = "rlcore-test/SlowCartPole-v1"


def _slow_cartpole(step_s: float = 0.01, **kwargs):
    """CartPole whose every step also sleeps ``step_s`` seconds: a run paced by the env at
    little CPU, long enough for a cluster test to lose or add nodes during it."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    class SlowCartPole(CartPoleEnv):
        def step(self, action):
            time.sleep(step_s)
            return super().step(action)

    return SlowCartPole(**kwargs)


if SLOW_ID not in gym.registry:  # a Ray actor finds it as "rlcore.testing.fake_env:" + SLOW_ID
    gym.register(SLOW_ID, entry_point=_slow_cartpole, max_episode_steps=500)
