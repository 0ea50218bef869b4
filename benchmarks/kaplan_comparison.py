"""Kaplan's notes 8.4: policy gradient vs maximum likelihood on the same one-step digits env.

Runs experiments/digits_pg.yaml and experiments/digits_supervised.yaml (same network, batch of
256 samples, Adam, one step per batch) through the normal rollout worker and learner, measures
greedy test-set accuracy against samples seen after every update, writes
benchmarks/kaplan_comparison.png and prints, for early accuracy levels, the ratio

    samples PG needs to first reach the level / samples supervised learning needs,

which the notes predict is about the number of classes (10) early in training, since a random
policy's reward carries signal for 1/n_L of the samples.

    .venv/bin/python benchmarks/kaplan_comparison.py [--seeds 0 1 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlcore.actors import InlinePool
from rlcore.config import load_experiment
from rlcore.envs.datasets import split_mean_reward
from rlcore.learner import Learner
from rlcore.loops import check_spaces

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"pg": ROOT / "experiments/digits_pg.yaml",
        "supervised": ROOT / "experiments/digits_supervised.yaml"}
EARLY_LEVELS = (0.2, 0.3, 0.4, 0.5)
LATE_LEVELS = (0.8, 0.9)


def test_accuracy(exp, learner, test_env) -> float:
    policy = exp.plugin.make_policy(learner.modules, exp.algo, explore=False)
    return split_mean_reward(policy, test_env)


def run(file: Path, seed: int, *overrides: str) -> dict:
    """Train one experiment; test accuracy after every update: (samples, accuracy) arrays."""
    exp = load_experiment(file, [f"seed={seed}", *overrides])
    torch.set_num_threads(1)
    spaces = check_spaces(exp)
    test_env = gym.make(exp.config.env.id, **{**exp.config.env.kwargs, "split": "test"})
    pool, learner = InlinePool(exp, spaces), Learner(exp, spaces, torch.device("cpu"))
    samples, steps, t0 = [0], 0, time.perf_counter()
    acc = [test_accuracy(exp, learner, test_env)]
    try:
        while steps < exp.config.stop.num_env_steps:
            frags = pool.sample(learner.weights(), learner.version)
            steps += sum(f.num_steps for f in frags)
            learner.update(frags, steps / exp.config.stop.num_env_steps)
            samples.append(steps)
            acc.append(test_accuracy(exp, learner, test_env))
    finally:
        pool.close()
    return {"samples": np.asarray(samples), "accuracy": np.asarray(acc),
            "wall_s": time.perf_counter() - t0}


def samples_to_reach(curve: dict, level: float) -> float:
    hit = np.flatnonzero(curve["accuracy"] >= level)
    return float(curve["samples"][hit[0]]) if len(hit) else float("nan")


def plot(curves: dict, path: Path, ratios: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = {"pg": "tab:red", "supervised": "tab:blue"}
    for name, runs in curves.items():
        for i, c in enumerate(runs):
            ax.plot(np.maximum(c["samples"], 1), c["accuracy"], color=colors[name], alpha=0.7,
                    lw=1.2, label=name if i == 0 else None)
    ax.axhline(0.1, color="gray", ls=":", lw=1, label="chance (1/10)")
    ax.set_xscale("log")
    ax.set_xlabel("samples seen (env steps = one-step episodes)")
    ax.set_ylabel("test accuracy (greedy)")
    early = ", ".join(f"{k:.0%}: {v:.1f}x" for k, v in ratios.items() if k in EARLY_LEVELS)
    ax.set_title(f"digits (10 classes): PG / supervised samples to reach {early}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fragment-length", type=int, default=2,
                    help="steps per env per update: 32 envs x 2 = 64 samples, fine enough to "
                         "resolve the first few hundred samples")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/kaplan_comparison.png")
    args = ap.parse_args()
    frag = f"rollout.fragment_length={args.fragment_length}"
    curves = {name: [run(file, s, frag) for s in args.seeds] for name, file in RUNS.items()}
    ratios, rows = {}, []
    for level in EARLY_LEVELS + LATE_LEVELS:
        need = {n: np.median([samples_to_reach(c, level) for c in cs]) for n, cs in curves.items()}
        ratios[level] = need["pg"] / need["supervised"]
        rows.append({"accuracy": level, **{f"{n}_samples": need[n] for n in need},
                     "ratio": round(ratios[level], 2)})
    final = {n: [round(float(c["accuracy"][-1]), 4) for c in cs] for n, cs in curves.items()}
    steps = {n: int(cs[0]["samples"][-1]) for n, cs in curves.items()}
    wall = {n: round(float(np.mean([c["wall_s"] for c in cs])), 1) for n, cs in curves.items()}
    plot(curves, args.out, ratios)
    early = [ratios[lv] for lv in EARLY_LEVELS]
    print(json.dumps({"seeds": args.seeds, "levels": rows, "final_test_accuracy": final,
                      "env_steps": steps, "wall_s_per_run": wall}, indent=1))
    print(f"early-phase efficiency ratio (PG / supervised samples, median over levels "
          f"{', '.join(f'{lv:.0%}' for lv in EARLY_LEVELS)}): {np.median(early):.1f} "
          f"(Kaplan: about the number of classes, 10); figure: {args.out}")


if __name__ == "__main__":
    main()
