"""Bandits: the no-state limit of RL (README, "Bandits and gridworlds").

Every episode is one pull: ``step`` returns ``terminated=True``, so a run of n env steps is n
pulls and the cumulative regret over a fixed horizon is the sum over steps of
``optimal_mean - mean[action]`` (``info["regret"]`` gives each step's term).

``rlcore/BernoulliBandit-v0``: k arms, reward 1 with probability ``means[a]`` (drawn U(0, 1)).
``rlcore/GaussianBandit-v0``: k arms, reward ~ N(means[a], ``reward_std``) (means drawn N(0, 1)).
``rlcore/ContextualBandit-v0``: each episode draws a context c uniformly from
``num_contexts``; the observation is c and arm a pays Bernoulli(``means[c, a]``).

The arm means are one fixed problem per env instance: ``means`` as a kwarg, or drawn from
``problem_seed`` at construction, so every sub-environment of a vector env faces the same bandit;
the reset seed drives only the rewards (and the contexts). ``env.unwrapped.means``,
``.optimal_arm`` and ``.optimal_mean`` (per context for the contextual bandit) give the answer.

Observations (kwarg ``obs_mode``): ``onehot`` (default; float32, the constant [1.0] for the
k-armed bandits, a one-hot of the context otherwise) or ``index`` (``Discrete(1)`` / ``Discrete(
num_contexts)``, for the ``tabular`` plugin).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlcore.plugin import EnvPlugin

OBS_MODES = ("onehot", "index")


class ContextualBandit(gym.Env):
    """``num_contexts`` x ``num_arms`` arm means; the k-armed bandits are the one-context case."""

    metadata = {"render_modes": []}

    def __init__(self, num_arms: int = 10, num_contexts: int = 4, means=None,
                 reward: str = "bernoulli", reward_std: float = 1.0, problem_seed: int = 0,
                 obs_mode: str = "onehot"):
        if reward not in ("bernoulli", "gaussian"):
            raise ValueError(f"bandit reward={reward!r}: use 'bernoulli' or 'gaussian'")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"bandit obs_mode={obs_mode!r}: use one of {', '.join(OBS_MODES)}")
        if means is None:
            rng = np.random.default_rng(problem_seed)
            shape = (num_contexts, num_arms)
            means = rng.uniform(0, 1, shape) if reward == "bernoulli" else rng.normal(0, 1, shape)
        means = np.asarray(means, np.float64).reshape(num_contexts, -1)
        if means.shape[1] < 2:
            raise ValueError(f"bandit means of shape {means.shape}: needs at least 2 arms")
        if reward == "bernoulli" and not ((means >= 0) & (means <= 1)).all():
            raise ValueError("Bernoulli bandit means must lie in [0, 1]")
        self.means, self.reward, self.reward_std = means, reward, float(reward_std)
        self.num_contexts, self.num_arms = means.shape
        self.optimal_arm = means.argmax(axis=1)
        self.optimal_mean = means.max(axis=1)
        self.obs_mode = obs_mode
        self.action_space = gym.spaces.Discrete(self.num_arms)
        if obs_mode == "index":
            self.observation_space = gym.spaces.Discrete(self.num_contexts)
        else:
            self.observation_space = gym.spaces.Box(0.0, 1.0, (self.num_contexts,), np.float32)
        self.context = 0

    def _obs(self):
        if self.obs_mode == "index":
            return int(self.context)
        obs = np.zeros(self.num_contexts, np.float32)
        obs[self.context] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.context = int(self.np_random.integers(self.num_contexts)) if self.num_contexts > 1 else 0
        return self._obs(), {"context": self.context}

    def step(self, action):
        a, c = int(action), self.context
        mean = self.means[c, a]
        if self.reward == "bernoulli":
            r = float(self.np_random.random() < mean)
        else:
            r = float(self.np_random.normal(mean, self.reward_std))
        info = {"context": c, "regret": float(self.optimal_mean[c] - mean)}
        return self._obs(), r, True, False, info


def make_bandit(num_arms: int = 10, means=None, reward: str = "bernoulli", reward_std: float = 1.0,
                problem_seed: int = 0, obs_mode: str = "onehot") -> ContextualBandit:
    """A k-armed bandit: the contextual bandit with one context."""
    if means is not None:
        num_arms = len(np.ravel(means))
    return ContextualBandit(num_arms, 1, means, reward, reward_std, problem_seed, obs_mode)


IDS = {
    "rlcore/BernoulliBandit-v0": (make_bandit, {"reward": "bernoulli"}),
    "rlcore/GaussianBandit-v0": (make_bandit, {"reward": "gaussian"}),
    "rlcore/ContextualBandit-v0": (ContextualBandit, {}),
}


def register() -> None:
    for env_id, (entry, kwargs) in IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry, kwargs=kwargs)


PLUGIN = EnvPlugin(
    name="bandits",
    description="k-armed Bernoulli/Gaussian and contextual bandits (one-pull episodes, known means)",
    register=register,
    ids=tuple(IDS),
)
