"""``rlcore eval``: a run's checkpoint evaluated on fresh episodes, outside training."""

from __future__ import annotations

from pathlib import Path


def evaluate_run(exp, run_dir: Path, episodes: int, seed: int, stochastic: bool,
                 which: str = "latest", video: Path | None = None) -> dict:
    """Evaluate a checkpoint of ``run_dir`` (``which``: ``latest``, the newest whose meta.json,
    modules and normalizer fit ``exp``, see rlcore.run.fit; ``best``; or an env step); the
    result is what ``rlcore eval`` prints. ``video``: play the episodes in one rendered env and
    write each to that folder (rlcore.run.video)."""
    import torch

    from rlcore.actors.watchdog import Watchdog
    from rlcore.ops.normalize import NormalizedPolicy, NormSettings, RunNormalizer
    from rlcore.run import chosen
    from rlcore.run.checks import check_spaces
    from rlcore.run.evaluation import evaluate
    from rlcore.run.fit import EVAL_PARTS, RunFit

    if video is not None:
        from rlcore.run import video as recorder

        recorder.headless()
        recorder.check_video_folder(video)
    spaces = check_spaces(exp)
    path, meta, tensors = chosen.load_chosen(run_dir, which, exp.plugin.name,
                                                 spaces.to_json(), torch.device("cpu"),
                                                 RunFit(exp, spaces, parts=EVAL_PARTS))
    modules = exp.plugin.make_modules(exp.algo, spaces)
    for name, m in modules.items():
        m.load_state_dict(tensors["modules"][name])
        m.eval()
    policy = exp.plugin.make_policy(modules, exp.algo, spaces, explore=stochastic)
    norm = NormSettings.of(exp)
    if norm.obs and "normalizer" in tensors:  # trained on observations normalized with these
        normalizer = RunNormalizer(norm, spaces.obs_shape)
        normalizer.load_numpy(tensors["normalizer"])
        policy = NormalizedPolicy(policy, normalizer)
    watchdog = Watchdog(exp.config.rollout.sample_timeout_s)  # a hung env stops, not hangs
    extra = {}
    try:
        if video is None:
            returns = evaluate(policy, exp.config.env.id, exp.config.eval_env_kwargs, episodes,
                               seed, watchdog=watchdog)
        else:
            out = recorder.record(policy, exp.config.env.id, exp.config.eval_env_kwargs, episodes,
                                  seed, video, watchdog=watchdog)
            returns = out["returns"]
            extra = {"videos": out["files"], "episode_lengths": out["lengths"]}
    finally:
        watchdog.close()
    return {"eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
            "eval_episodes": int(len(returns)), "env_steps": meta["env_steps"], **extra,
            "checkpoint": str(path), "skipped": meta["skipped"],
            **({"best_eval_return": meta["best_eval_return"]} if "best_eval_return" in meta
               else {})}
