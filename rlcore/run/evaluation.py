"""Evaluation episodes on the driver, on a separate vector env with its own seeds."""

from __future__ import annotations

import numpy as np

from rlcore import seeding
from rlcore.actors.worker import make_vec_env


def evaluate(policy, env_id: str, env_kwargs: dict, episodes: int, seed: int,
             max_envs: int = 16) -> np.ndarray:
    """Returns of ``episodes`` complete episodes. Each sub-env runs a fixed share of the
    episodes, so short episodes are not over-represented (as SB3's evaluate_policy does)."""
    n_envs = min(episodes, max_envs)
    targets = np.full(n_envs, episodes // n_envs) + (np.arange(n_envs) < episodes % n_envs)
    envs = make_vec_env(env_id, n_envs, env_kwargs)
    rng = np.random.default_rng(seeding.derive(seed, seeding.EVAL_STREAM))
    try:
        obs, _ = envs.reset(seed=seeding.derive(seed, seeding.EVAL_STREAM, 1))
        counts = np.zeros(n_envs, np.int64)
        running = np.zeros(n_envs)
        returns: list[float] = []
        while (counts < targets).any():
            obs, r, term, trunc, _ = envs.step(policy.act(obs, rng).for_env())
            running += r
            for i in np.flatnonzero(term | trunc):
                if counts[i] < targets[i]:
                    returns.append(running[i])
                    counts[i] += 1
                running[i] = 0.0
        return np.asarray(returns)
    finally:
        envs.close()
