"""Datasets as degenerate environments: supervised and unsupervised tasks as short episodes.

Classification (``rlcore/<Name>Classification-v0`` on scikit-learn's bundled digits, iris, wine
and breast-cancer data; no download): the observation is one sample, standardized with the
train split's statistics (float32); the action is a label (``Discrete(n_classes)``); the reward
is ``score[label, action]`` (default 1 if correct else 0, so the mean return is the accuracy);
``terminated`` is always true after the one step. The label travels only in ``info['label']``
of that step, so an RL plugin never sees it and the ``supervised`` plugin can.

Regression (``rlcore/DiabetesRegression-v0``): the action is a prediction in a ``Box``, the
reward is minus the squared error on standardized targets, ``info['label']`` the target.

Unsupervised (``rlcore/DigitsAutoencoder-v0``): reconstruction through a bottleneck that the
*environment* enforces, as a two-step episode. Step 1 shows the sample x and takes a code z
(only the first ``code_size`` action components count); step 2 shows only z and takes a
reconstruction x_hat; the reward is then -mean((x - x_hat)^2), the autoencoder's own metric, and
0 at step 1. The decoder cannot see x, so the policy must compress it. The best linear policy is
PCA with ``code_size`` components: ``pca_reward()`` gives that reference. A one-step design
cannot enforce the bottleneck (the policy could copy x), hence the second step.

Unsupervised (``rlcore/DigitsClustering-v0``): one step; the observation is a sample x, the
action a cluster ``Discrete(num_clusters)``, the reward -||x - c_a||^2 / d (squared distance to
the chosen centroid per feature, the k-means objective's own term). The centroids are fixed when
the env is made: Lloyd's k-means from k-means++ seeding on the *train* split, seeded by
``split_seed`` (``kmeans()``; the test env uses the same train centroids). Fixed centroids keep
the reward a stationary function of (x, a): with running means the reward would depend on the
policy's own past choices, the optimum would move as it learns, and a policy that sends
everything to one cluster would drag that centroid to the global mean. The best policy is the
nearest-centroid rule; ``optimal_reward()`` gives its mean reward on the split as the reference,
``nearest()`` its actions. ``clustering_env(X, num_clusters)`` or ``centroids=`` wraps your own.

Every sample is drawn with the env's ``np_random``, so a seeded reset fixes the sequence. The
train/test split is fixed by ``split_seed`` (not by the reset seed); ``split: test`` gives the
held-out samples. ``classification_env(X, y)``, ``regression_env(X, y)`` and
``torch_dataset_env(dataset)`` make the same envs from a user's arrays or a torch ``Dataset``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import gymnasium as gym
import numpy as np

from rlcore.plugin import EnvPlugin

CLASSIFICATION = {"Digits": "load_digits", "Iris": "load_iris", "Wine": "load_wine",
                  "BreastCancer": "load_breast_cancer"}
REGRESSION = {"Diabetes": "load_diabetes"}


def split_indices(n: int, test_fraction: float, split_seed: int, split: str) -> np.ndarray:
    """The deterministic train or test rows of an n-sample dataset."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(split_seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(perm[:n_test] if split == "test" else perm[n_test:])


def _standardize(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    return ((X - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


class DatasetEnv(gym.Env):
    """One sample per episode, drawn uniformly from the split with ``np_random``."""

    metadata = {"render_modes": []}

    def __init__(self, X: np.ndarray, split_rows: np.ndarray):
        self.X = X[split_rows]  # the split's observations (float32, standardized)
        # bounds over both splits, so the train and test envs share one observation space
        self.bound = float(np.ceil(np.abs(X).max()))
        self.observation_space = gym.spaces.Box(-self.bound, self.bound, self.X.shape[1:],
                                                np.float32)
        self._i = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._i = int(self.np_random.integers(len(self.X)))
        return self.X[self._i].copy(), {}


class ClassificationEnv(DatasetEnv):
    def __init__(self, X, y, split_rows, score: np.ndarray):
        super().__init__(X, split_rows)
        self.y = np.asarray(y)[split_rows].astype(np.int64)
        self.score = score
        self.action_space = gym.spaces.Discrete(len(score))

    def step(self, action):
        label = int(self.y[self._i])
        reward = float(self.score[label, int(action)])
        return self.X[self._i].copy(), reward, True, False, {"label": label}


class RegressionEnv(DatasetEnv):
    def __init__(self, X, y, split_rows, action_bound: float):
        super().__init__(X, split_rows)
        self.y = y[split_rows]  # [n, k] float32, standardized
        self.action_space = gym.spaces.Box(-action_bound, action_bound, self.y.shape[1:],
                                           np.float32)

    def step(self, action):
        target = self.y[self._i]
        err = np.asarray(action, np.float32).reshape(target.shape) - target
        return self.X[self._i].copy(), -float(np.dot(err, err)), True, False, {"label": target.copy()}


class AutoencoderEnv(DatasetEnv):
    def __init__(self, X, split_rows, code_size: int, action_bound: float):
        super().__init__(X, split_rows)
        d = self.X.shape[1]
        if not 1 <= code_size < d:
            raise ValueError(f"code_size must be in [1, {d - 1}], got {code_size}")
        self.code_size = code_size
        # [phase, content]: phase 0 shows x, phase 1 shows the code padded with zeros
        high = max(self.bound, action_bound)
        self.observation_space = gym.spaces.Box(-high, high, (d + 1,), np.float32)
        self.action_space = gym.spaces.Box(-action_bound, action_bound, (d,), np.float32)
        self._obs = np.zeros(d + 1, np.float32)

    def reset(self, *, seed=None, options=None):
        x, info = super().reset(seed=seed, options=options)
        self._obs = np.concatenate([[0.0], x]).astype(np.float32)
        return self._obs.copy(), info

    def step(self, action):
        action = np.asarray(action, np.float32)
        if self._obs[0] == 0.0:  # encode: only the code crosses to the decoder
            self._obs = np.zeros_like(self._obs)
            self._obs[0] = 1.0
            self._obs[1:1 + self.code_size] = np.clip(action[:self.code_size],
                                                      self.action_space.low[0],
                                                      self.action_space.high[0])
            return self._obs.copy(), 0.0, False, False, {}
        err = action - self.X[self._i]
        return self._obs.copy(), -float(np.mean(err * err)), True, False, {}

    def pca_reward(self) -> float:
        """Mean reward of the best linear encoder/decoder (PCA, ``code_size`` parts)."""
        X = self.X - self.X.mean(axis=0)
        s = np.linalg.svd(X, compute_uv=False) ** 2
        return -float(s[self.code_size:].sum() / X.size)


class ClusteringEnv(DatasetEnv):
    def __init__(self, X, split_rows, centroids: np.ndarray):
        super().__init__(X, split_rows)
        self.centroids = np.asarray(centroids, np.float32)  # [k, d], fixed
        if self.centroids.ndim != 2 or self.centroids.shape[1] != self.X.shape[1]:
            raise ValueError(f"centroids must be [k, {self.X.shape[1]}], got "
                             f"{self.centroids.shape}")
        self.action_space = gym.spaces.Discrete(len(self.centroids))

    def sq_distances(self, X: np.ndarray) -> np.ndarray:
        """[n, k] squared distance per feature from each row of X to each centroid."""
        diff = np.asarray(X, np.float64)[:, None, :] - self.centroids[None].astype(np.float64)
        return (diff ** 2).mean(axis=-1)

    def step(self, action):
        x = self.X[self._i]
        reward = -float(self.sq_distances(x[None])[0, int(action)])
        return x.copy(), reward, True, False, {}

    def nearest(self, X: np.ndarray | None = None) -> np.ndarray:
        """The optimal actions: each row's nearest centroid (the split's rows by default)."""
        return self.sq_distances(self.X if X is None else X).argmin(axis=1)

    def optimal_reward(self) -> float:
        """Mean reward of the nearest-centroid policy over the split."""
        return -float(self.sq_distances(self.X).min(axis=1).mean())


def kmeans(X: np.ndarray, k: int, seed: int, max_iter: int = 300) -> np.ndarray:
    """Deterministic k-means: k-means++ seeding with ``default_rng(seed)``, then Lloyd's
    iterations until the assignment stops changing (an emptied cluster keeps its centroid)."""
    X = np.asarray(X, np.float64)
    if not 1 <= k <= len(X):
        raise ValueError(f"num_clusters must be in [1, {len(X)}], got {k}")
    rng = np.random.default_rng(seed)
    centroids = [X[rng.integers(len(X))]]
    for _ in range(1, k):  # k-means++: the next centroid with probability ~ D(x)^2
        d2 = ((X[:, None] - np.asarray(centroids)[None]) ** 2).sum(-1).min(1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(X), 1.0 / len(X))
        centroids.append(X[rng.choice(len(X), p=p)])
    C = np.asarray(centroids)
    assign = None
    for _ in range(max_iter):
        new = ((X[:, None] - C[None]) ** 2).sum(-1).argmin(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            if (assign == j).any():
                C[j] = X[assign == j].mean(axis=0)
    return C


def clustering_env(X, num_clusters: int = 10, split: str = "train", test_fraction: float = 0.25,
                   split_seed: int = 0, centroids=None, standardize: bool = True):
    """A one-step clustering env on arrays ``X`` [n, ...]: reward = -||x - c_action||^2 / d with
    centroids from ``kmeans`` on the train split (or the given ``centroids``, in the space of
    the env's observations, i.e. standardized unless ``standardize=False``)."""
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    rows = split_indices(len(X), test_fraction, split_seed, split)
    train = split_indices(len(X), test_fraction, split_seed, "train")
    Xs = _standardize(X, train) if standardize else X.astype(np.float32)
    if centroids is None:
        centroids = kmeans(Xs[train], num_clusters, split_seed)
    return ClusteringEnv(Xs, rows, centroids)


def classification_env(X, y, split: str = "train", test_fraction: float = 0.25,
                       split_seed: int = 0, score: Sequence[Sequence[float]] | None = None,
                       num_classes: int | None = None):
    """A one-step classification env on arrays ``X`` [n, ...] and integer labels ``y`` [n].

    ``score[label][action]`` is the reward table (default: the identity, i.e. accuracy)."""
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    y = np.asarray(y)
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("y must be non-negative integer labels, one per row of X")
    n_classes = int(num_classes or y.max() + 1)
    table = np.eye(n_classes) if score is None else np.asarray(score, np.float64)
    if table.shape != (n_classes, n_classes):
        raise ValueError(f"score must be a {n_classes}x{n_classes} table [label][action]")
    rows = split_indices(len(X), test_fraction, split_seed, split)
    train = split_indices(len(X), test_fraction, split_seed, "train")
    return ClassificationEnv(_standardize(X, train), y, rows, table)


def regression_env(X, y, split: str = "train", test_fraction: float = 0.25, split_seed: int = 0,
                   action_bound: float = 5.0):
    """A one-step regression env: reward = -||prediction - target||^2 on standardized targets."""
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    y = np.asarray(y, np.float64).reshape(len(X), -1)
    rows = split_indices(len(X), test_fraction, split_seed, split)
    train = split_indices(len(X), test_fraction, split_seed, "train")
    return RegressionEnv(_standardize(X, train), _standardize(y, train), rows, action_bound)


def torch_dataset_env(dataset, **kwargs):
    """A classification env on a map-style torch ``Dataset`` of ``(x, label)`` pairs."""
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    X = np.stack([np.asarray(x, np.float64).reshape(-1) for x in xs])
    return classification_env(X, np.asarray([int(v) for v in ys], np.int64), **kwargs)


def _load(loader: str):
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    return data.data, data.target


def make_classification(name: str, **kwargs):
    return classification_env(*_load(CLASSIFICATION[name]), **kwargs)


def make_regression(name: str, **kwargs):
    return regression_env(*_load(REGRESSION[name]), **kwargs)


def make_autoencoder(name: str = "Digits", code_size: int = 8, split: str = "train",
                     test_fraction: float = 0.25, split_seed: int = 0, action_bound: float = 10.0):
    X, _ = _load(CLASSIFICATION[name])
    X = np.asarray(X, np.float64)
    rows = split_indices(len(X), test_fraction, split_seed, split)
    train = split_indices(len(X), test_fraction, split_seed, "train")
    return AutoencoderEnv(_standardize(X, train), rows, code_size, action_bound)


@functools.lru_cache(maxsize=16)
def _dataset_centroids(name: str, num_clusters: int, test_fraction: float, split_seed: int):
    """k-means once per process and setting: a vector env makes one env per copy."""
    env = clustering_env(_load(CLASSIFICATION[name])[0], num_clusters,
                         test_fraction=test_fraction, split_seed=split_seed)
    env.centroids.flags.writeable = False
    return env.centroids


def make_clustering(name: str = "Digits", num_clusters: int = 10, split: str = "train",
                    test_fraction: float = 0.25, split_seed: int = 0):
    centroids = _dataset_centroids(name, num_clusters, test_fraction, split_seed)
    return clustering_env(_load(CLASSIFICATION[name])[0], num_clusters, split, test_fraction,
                          split_seed, centroids=centroids)


def split_mean_reward(policy, env, split: str = "test", **kwargs) -> float:
    """The mean reward of ``policy`` (greedy for an exact number) over every sample of a
    classification, regression or clustering env's split, in order: test accuracy by default.
    ``env`` is
    an env id (made with ``split`` and ``kwargs``) or an env already made."""
    if isinstance(env, str):
        from rlcore.registry import ensure_env_registered

        ensure_env_registered(env)
        env = gym.make(env, split=split, **kwargs)
    env = env.unwrapped
    action = policy.act(env.X, np.random.default_rng(0)).action
    if isinstance(env, ClassificationEnv):
        return float(env.score[env.y, np.asarray(action, np.int64)].mean())
    if isinstance(env, ClusteringEnv):
        d = env.sq_distances(env.X)
        return -float(d[np.arange(len(d)), np.asarray(action, np.int64)].mean())
    err = np.asarray(action, np.float32).reshape(env.y.shape) - env.y
    return -float((err ** 2).sum(axis=-1).mean())


IDS = {
    **{f"rlcore/{n}Classification-v0": ("make_classification", n) for n in CLASSIFICATION},
    **{f"rlcore/{n}Regression-v0": ("make_regression", n) for n in REGRESSION},
    "rlcore/DigitsAutoencoder-v0": ("make_autoencoder", "Digits"),
    "rlcore/DigitsClustering-v0": ("make_clustering", "Digits"),
}


def register() -> None:
    import gymnasium as gym

    for env_id, (factory, name) in IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"rlcore.envs.datasets:{factory}",
                         kwargs={"name": name})


PLUGIN = EnvPlugin(
    name="datasets",
    description="scikit-learn datasets as one-step classification/regression episodes, and an "
                "autoencoder and a clustering task (label in info['label'])",
    register=register,
    ids=tuple(IDS),
)
