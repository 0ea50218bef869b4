"""Evaluation episodes on the driver, on a separate vector env with its own seeds, under the
run's watchdog (a hung evaluation env stops the run instead of hanging it)."""

from __future__ import annotations

import contextlib

import numpy as np

from rlcore import seeding
from rlcore.actors.envs import make_vec_env


def evaluate(policy, env_id: str, env_kwargs: dict, episodes: int, seed: int,
             max_envs: int = 16, watchdog=None) -> np.ndarray:
    """Returns of ``episodes`` complete episodes (``evaluate_episodes``)."""
    return evaluate_episodes(policy, env_id, env_kwargs, episodes, seed, max_envs, watchdog)[0]


def evaluate_episodes(policy, env_id: str, env_kwargs: dict, episodes: int, seed: int,
                      max_envs: int = 16, watchdog=None) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` complete episodes. Each sub-env runs a fixed share of
    the episodes, so short episodes are not over-represented (as SB3's evaluate_policy does)."""
    n_envs = min(episodes, max_envs)
    targets = np.full(n_envs, episodes // n_envs) + (np.arange(n_envs) < episodes % n_envs)
    at = {"step": -1, "action": None, "running": np.zeros(n_envs, np.int64)}

    def describe() -> str:
        from rlcore.actors.watchdog import hung_call, vector_env_position

        where = f"{hung_call()} of the evaluation env '{env_id}'"
        n = vector_env_position()
        if n is None or at["action"] is None:
            return where
        action = repr(np.asarray(at["action"][n]).tolist())
        return f"{where} (sub-env {n}, episode step {at['running'][n]}, last action {action})"

    guard = (watchdog.watch(lambda: at["step"], describe) if watchdog is not None
             else contextlib.nullcontext())
    with guard:
        envs = make_vec_env(env_id, n_envs, env_kwargs)
        rng = np.random.default_rng(seeding.derive(seed, seeding.EVAL_STREAM))
        try:
            obs, _ = envs.reset(seed=seeding.derive(seed, seeding.EVAL_STREAM, 1))
            counts = np.zeros(n_envs, np.int64)
            running = np.zeros(n_envs)
            returns: list[float] = []
            lengths: list[int] = []
            while (counts < targets).any():
                at["action"] = policy.act(obs, rng).for_env()
                at["step"] += 1
                obs, r, term, trunc, _ = envs.step(at["action"])
                running += r
                at["running"] += 1
                for i in np.flatnonzero(term | trunc):
                    if counts[i] < targets[i]:
                        returns.append(running[i])
                        lengths.append(int(at["running"][i]))
                        counts[i] += 1
                    running[i] = 0.0
                    at["running"][i] = 0
            return np.asarray(returns), np.asarray(lengths, np.int64)
        finally:
            envs.close()


def evaluate_policy(run, modules: dict, index: int) -> dict:
    """The trajectory and transition regimes' evaluation: ``eval.episodes`` episodes of the
    policy over ``modules`` (greedy unless ``eval.deterministic: false``)."""
    cfg = run.cfg
    policy = run.learner.policy_for_eval(modules, explore=not cfg.eval.deterministic)
    returns, lengths = evaluate_episodes(policy, cfg.env.id, cfg.eval_env_kwargs,
                                         cfg.eval.episodes, cfg.seed + index,
                                         watchdog=run.watchdog)
    mean, std = float(returns.mean()), float(returns.std())
    every, last = cfg.eval.video_every_env_steps, run.evals[-1]["env_steps"] if run.evals else -1
    video = None
    if every and run.env_steps // every > last // every:  # stateless, so resumes keep the rhythm
        from rlcore.run.video import clip

        video = clip(policy, cfg.env.id, cfg.eval_env_kwargs, cfg.seed + index, run.watchdog)
    return {"mean": mean, "std": std, "episodes": int(len(returns)), "video": video,
            "scalars": {"return_mean": mean, "return_std": std,
                        "episode_length": float(lengths.mean())},
            "text": f"eval return {mean:.4g} ± {std:.3g} over {len(returns)} episodes"}
