"""Running observation normalization and reward scaling, with one set of statistics per run.

Each rollout worker normalizes with the run's statistics (published by the learner with the
weights) updated by what the worker itself has seen since; it also keeps the *delta* (what it saw
since its last fragment) and ships it with the fragment. The learner merges every actor's delta
into the run's statistics (Chan et al.'s parallel mean/variance update), so N actors build exactly
the statistics one process would have built from all their steps, and the checkpoint holds them.

Reward scaling follows the common continuous-control recipe (Engstrom et al. 2020, SB3's
VecNormalize): divide each reward by the running standard deviation of the discounted return
``R_t = gamma R_{t-1} + r_t`` (reset at episode ends); the mean is not subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-8


def _array(x) -> np.ndarray:
    """A float64 copy of an array or a (CPU) tensor from a checkpoint."""
    return np.array(x.numpy() if hasattr(x, "numpy") else x, np.float64)


class RunningStats:
    """Count, mean and sum of squared deviations (M2) of a stream of arrays of one shape."""

    def __init__(self, shape: tuple = (), count: float = 0.0, mean=None, m2=None):
        self.count = float(count)
        self.mean = np.zeros(shape, np.float64) if mean is None else _array(mean)
        self.m2 = np.zeros(shape, np.float64) if m2 is None else _array(m2)

    @property
    def var(self) -> np.ndarray:
        """Population variance; 1 before anything was seen (so normalizing is the identity)."""
        return self.m2 / self.count if self.count > 0 else np.ones_like(self.m2)

    def update(self, batch: np.ndarray) -> None:
        """Add the rows of ``batch`` ([B, *shape])."""
        n = len(batch)
        if n == 0:
            return
        if n == 1:  # Welford's single-sample update (one env per worker: every step)
            x = np.asarray(batch[0], np.float64)
            self.count += 1.0
            delta = x - self.mean
            self.mean = self.mean + delta / self.count
            self.m2 = self.m2 + delta * (x - self.mean)
            return
        batch = np.asarray(batch, np.float64)
        mean = np.add.reduce(batch, axis=0) / n
        centred = batch - mean
        self._combine(n, mean, np.add.reduce(centred * centred, axis=0))

    def merge(self, other: "RunningStats") -> None:
        """Add everything ``other`` has seen (Chan, Golub & LeVeque's pairwise update)."""
        if other.count > 0:
            self._combine(other.count, other.mean, other.m2)

    def _combine(self, n_b: float, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (n_a * n_b / n)
        self.count = n

    def copy(self) -> "RunningStats":
        return RunningStats(self.mean.shape, self.count, self.mean.copy(), self.m2.copy())

    def to_numpy(self) -> dict:
        return {"count": np.array(self.count), "mean": self.mean.copy(), "m2": self.m2.copy()}

    @classmethod
    def from_numpy(cls, d: dict) -> "RunningStats":
        mean = _array(d["mean"])
        return cls(mean.shape, float(d["count"]), mean, d["m2"])


@dataclass(frozen=True)
class NormSettings:
    obs: bool = False
    reward: bool = False
    obs_clip: float = 10.0
    reward_clip: float = 10.0
    gamma: float = 0.99

    @classmethod
    def of(cls, exp) -> "NormSettings":
        """The experiment's ``env.normalize_*`` settings; the return's discount defaults to the
        algorithm's ``gamma``."""
        env = exp.config.env
        gamma = env.reward_gamma if env.reward_gamma is not None else getattr(exp.algo, "gamma", 0.99)
        return cls(obs=env.normalize_obs, reward=env.normalize_reward, obs_clip=env.obs_clip,
                   reward_clip=env.reward_clip, gamma=float(gamma))

    @property
    def active(self) -> bool:
        return self.obs or self.reward


class RunNormalizer:
    """The run's statistics: merged from actors' deltas, published with weights, checkpointed."""

    KEY = "_normalizer"  # its entry in the published weights dict

    def __init__(self, settings: NormSettings, obs_shape: tuple):
        self.settings = settings
        self.obs = RunningStats(obs_shape)
        self.ret = RunningStats(())

    def absorb(self, deltas) -> None:
        for d in deltas:
            if d is None:
                continue
            self.obs.merge(RunningStats.from_numpy(d["obs"]))
            self.ret.merge(RunningStats.from_numpy(d["ret"]))

    def to_numpy(self) -> dict:
        return {"obs": self.obs.to_numpy(), "ret": self.ret.to_numpy()}

    def load_numpy(self, d: dict) -> None:
        self.obs = RunningStats.from_numpy(d["obs"])
        self.ret = RunningStats.from_numpy(d["ret"])

    def frozen(self) -> "RunNormalizer":
        """A copy that later merges do not change (for an evaluation in progress)."""
        out = RunNormalizer(self.settings, self.obs.mean.shape)
        out.load_numpy(self.to_numpy())
        return out

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        return normalize_obs(obs, self.obs, self.settings.obs_clip) if self.settings.obs else obs


def normalize_obs(obs: np.ndarray, stats: RunningStats, clip: float) -> np.ndarray:
    out = (np.asarray(obs, np.float64) - stats.mean) / np.sqrt(stats.var + EPS)
    return np.clip(out, -clip, clip).astype(np.float32)


def scale_reward(reward: np.ndarray, ret_stats: RunningStats, clip: float) -> np.ndarray:
    out = np.asarray(reward, np.float64) / np.sqrt(ret_stats.var + EPS)
    return np.clip(out, -clip, clip).astype(np.float32)


class WorkerNormalizer:
    """A rollout worker's side: normalizes with (run statistics + its own steps since), and
    collects the delta it ships with each fragment."""

    def __init__(self, settings: NormSettings, obs_shape: tuple, num_envs: int):
        self.settings = settings
        self.obs_shape = obs_shape
        self.local_obs, self.local_ret = RunningStats(obs_shape), RunningStats(())
        self.delta_obs, self.delta_ret = RunningStats(obs_shape), RunningStats(())
        self.discounted = np.zeros(num_envs)

    def load(self, published: dict) -> None:
        """Take the run's statistics (published by the learner with the weights)."""
        self.local_obs = RunningStats.from_numpy(published["obs"])
        self.local_ret = RunningStats.from_numpy(published["ret"])
        # what this worker saw after the learner merged its last delta is not lost: it is in
        # the delta still to be shipped, and counts locally too
        self.local_obs.merge(self.delta_obs)
        self.local_ret.merge(self.delta_ret)

    def observe(self, raw_obs: np.ndarray) -> np.ndarray:
        """Count ``raw_obs`` (a batch of one obs per sub-env) and return it normalized."""
        if not self.settings.obs:
            return raw_obs
        self.local_obs.update(raw_obs)
        self.delta_obs.update(raw_obs)
        return normalize_obs(raw_obs, self.local_obs, self.settings.obs_clip)

    def normalize(self, raw_obs: np.ndarray) -> np.ndarray:
        """Normalize without counting (final observations of truncated episodes)."""
        if not self.settings.obs:
            return raw_obs
        return normalize_obs(raw_obs, self.local_obs, self.settings.obs_clip)

    def reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """The scaled reward of one step; ``done`` resets the discounted return after it."""
        if not self.settings.reward:
            return reward
        self.discounted = self.discounted * self.settings.gamma + reward
        self.local_ret.update(self.discounted)
        self.delta_ret.update(self.discounted)
        self.discounted[done] = 0.0
        return scale_reward(reward, self.local_ret, self.settings.reward_clip)

    def snapshot(self) -> tuple:
        """The worker's statistics now, for ``restore`` (a fragment dropped for NaNs must not
        leave them in the statistics)."""
        return (self.local_obs.copy(), self.local_ret.copy(), self.delta_obs.copy(),
                self.delta_ret.copy(), self.discounted.copy())

    def restore(self, snap: tuple) -> None:
        (self.local_obs, self.local_ret, self.delta_obs, self.delta_ret, self.discounted) = (
            x.copy() for x in snap)

    def take_delta(self) -> dict:
        out = {"obs": self.delta_obs.to_numpy(), "ret": self.delta_ret.to_numpy()}
        self.delta_obs, self.delta_ret = RunningStats(self.obs_shape), RunningStats(())
        return out


class NormalizedPolicy:
    """A policy that sees observations normalized with fixed statistics (evaluation)."""

    def __init__(self, policy, normalizer: RunNormalizer):
        self.policy, self.normalizer = policy, normalizer

    def act(self, obs, rng):
        return self.policy.act(self.normalizer.normalize_obs(obs), rng)
