"""MuJoCo benchmarks: learning results over seeds, training speed, rollout throughput.

    python benchmarks/mujoco.py train experiments/ppo_halfcheetah.yaml --seeds 0 1 2 \\
        [--steps 1000000] [--out results.jsonl]
        trains each seed for the budget (no evaluations on the way) and prints the final
        deterministic evaluation (mean action, 10 episodes): mean +- std per seed, then over
        seeds, and the wall time of each run.
    python benchmarks/mujoco.py speed experiments/ppo_halfcheetah.yaml [--steps 50000]
        training throughput, env steps/s with the updates included and the final evaluation
        excluded; the line has the same task and metric names as the Stable-Baselines3 peer
        (bench/peers/sb3_ppo_halfcheetah.py, RL-Zoo settings), so summarize.py shows both.
    python benchmarks/mujoco.py throughput experiments/ppo_halfcheetah.yaml [--envs 1 4 16]
        the raw MuJoCo step rate (Gymnasium sync vector env, random actions) beside the inline
        rollout path (policy inference, observation normalization and reward scaling included)
        at the same env count, measured in the same run; target >= 60 % of raw.

Run the SB3 peer in the same run with benchmarks/run_mujoco_vs_sb3.sh. Every line is JSON in
the peers' format, appended to --out when given.
"""

from __future__ import annotations

import os
import sys

# This file is named like the MuJoCo package: put its folder after site-packages so that
# ``import mujoco`` (inside Gymnasium) finds the real one and the sibling modules still import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import bench_common as bc  # noqa: E402  (before rlcore: starts the clock, keeps Ray on loopback)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rollout_throughput import print_table, throughput_lines  # noqa: E402

from rlcore.config import load_experiment  # noqa: E402
from rlcore.run.logging import RunLogger  # noqa: E402
from rlcore.run.lifecycle import Run  # noqa: E402





def task_name(exp) -> str:
    from rollout_throughput import env_slug

    return f"{exp.plugin.name}_{env_slug(exp.config.env.id)}"


def run_once(file: str, seed: int, steps: int, episodes: int, run_dir: Path,
             extra: list[str]) -> tuple:
    overrides = [f"seed={seed}", f"stop.num_env_steps={steps}", "eval.every_env_steps=0",
                 f"eval.episodes={episodes}", "checkpoint.every_env_steps=0",
                 "logging.progress_every_s=30", *extra]
    exp = load_experiment(file, overrides)
    t = time.perf_counter()
    trainer = Run(exp, run_dir)
    setup_s = time.perf_counter() - t
    logger = RunLogger(run_dir, 0, exp.config.logging.progress_every_s)
    try:
        t = time.perf_counter()
        summary = trainer.run(logger)
        learn_s = time.perf_counter() - t - trainer.eval_s
    finally:
        logger.close()
    return summary, learn_s, setup_s, exp


def cmd_train(args) -> None:
    finals = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="rlcore-mujoco-") as tmp:
            summary, learn_s, setup_s, exp = run_once(args.file, seed, args.steps, args.episodes,
                                                      Path(tmp) / "run", args.set)
        bc.TASK = task_name(exp)
        metrics = {"eval_return_mean": summary["eval_return_mean"],
                   "eval_return_std": summary["eval_return_std"],
                   "env_steps": summary["env_steps"], "wall_s": summary["wall_s"],
                   "train_steps_per_s": summary["env_steps"] / learn_s}
        finals.append(metrics)
        bc.emit(bc.make_line(f"rlcore_{bc.TASK}_train", seed, metrics,
                             {"file": args.file, "overrides": args.set,
                              "eval_episodes": args.episodes, "deterministic_eval": True},
                             {"load_avg_end": bc.load_avg(), "setup_s": setup_s}), args.out)
        print(f"seed {seed}: eval {metrics['eval_return_mean']:.1f} +- "
              f"{metrics['eval_return_std']:.1f} after {metrics['env_steps']:,} steps, "
              f"{metrics['wall_s'] / 60:.1f} min", file=sys.stderr, flush=True)
    means = np.array([f["eval_return_mean"] for f in finals])
    print(f"{args.file}: final deterministic eval over seeds {args.seeds}: "
          f"{means.mean():.1f} +- {means.std():.1f} (per seed {np.round(means, 1).tolist()}), "
          f"{args.steps:,} steps, wall {np.mean([f['wall_s'] for f in finals]) / 60:.1f} min "
          "per run", flush=True)


def cmd_speed(args) -> None:
    with tempfile.TemporaryDirectory(prefix="rlcore-mujoco-") as tmp:
        summary, learn_s, setup_s, exp = run_once(args.file, args.seeds[0], args.steps, 1,
                                                  Path(tmp) / "run", args.set)
    bc.TASK = f"{task_name(exp)}_speed"
    steps = summary["env_steps"]
    metrics = {"train_steps_per_s": steps / learn_s, "projected_1M_steps_min": 1e6 * learn_s / steps / 60,
               "total_steps": steps, "learn_s": learn_s, "setup_s": setup_s,
               "train_ep_return_mean_last": None}
    import torch

    bc.emit(bc.make_line(f"rlcore_{bc.TASK}", args.seeds[0], metrics,
                         {"file": args.file, "overrides": args.set,
                          "torch_threads": torch.get_num_threads()},
                         {"load_avg_end": bc.load_avg()}), args.out)
    print(f"{args.file}: {metrics['train_steps_per_s']:,.0f} env steps/s with updates "
          f"({steps:,} steps in {learn_s:.1f} s; 1M steps would take "
          f"{metrics['projected_1M_steps_min']:.1f} min)", flush=True)


def cmd_throughput(args) -> None:
    """``--repeats`` rounds of (raw, inline) at every env count; on a machine where other work
    comes and goes the ratio is the median over rounds, each from back-to-back measurements."""
    exp = load_experiment(args.file, args.set)
    bc.TASK = f"{task_name(exp)}_rollout"
    ratios: dict[int, list[float]] = {}
    for _ in range(args.repeats):
        lines = []
        for ln in throughput_lines(exp, args.envs, args.seconds):
            bc.emit(ln, args.out)
            lines.append(ln)
            if ln["config"]["kind"] == "inline":
                ratios.setdefault(ln["config"]["envs_per_worker"], []).append(ln["metrics"]["to_raw"])
        print_table(lines, target=0.6)
    print("inline / raw, median over rounds: " + ", ".join(
        f"{n} envs {np.median(r):.0%} (rounds {', '.join(f'{x:.0%}' for x in r)})"
        for n, r in ratios.items()), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["train", "speed", "throughput"])
    p.add_argument("file", help="experiment file, e.g. experiments/ppo_halfcheetah.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, help="env steps per run (train: 1M, speed: 50k)")
    p.add_argument("--episodes", type=int, default=10, help="final evaluation episodes")
    p.add_argument("--envs", type=int, nargs="+", default=[1, 4, 16], help="throughput: env counts")
    p.add_argument("--seconds", type=float, default=5.0, help="throughput: per measurement")
    p.add_argument("--repeats", type=int, default=3, help="throughput: rounds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="experiment override for every run")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args()
    args.steps = args.steps or {"train": 1_000_000, "speed": 50_000}.get(args.command, 0)
    {"train": cmd_train, "speed": cmd_speed, "throughput": cmd_throughput}[args.command](args)


if __name__ == "__main__":
    main()
