"""A tiny deterministic-given-seed env for contract tests: terminations and truncations both occur."""

import gymnasium as gym
import numpy as np

FAKE_ID = "rlcore-test/Fake-v0"


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


def register() -> str:
    if FAKE_ID not in gym.registry:
        gym.register(FAKE_ID, entry_point=FakeEnv, max_episode_steps=6)
    return FAKE_ID
