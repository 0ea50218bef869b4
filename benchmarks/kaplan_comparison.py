"""Kaplan's notes 8.4: policy gradient vs maximum likelihood on the same one-step digits env.

Runs experiments/digits_pg.yaml and experiments/digits_supervised.yaml through the normal rollout
worker and learner with the same network, Adam and batch (32 envs x ``--fragment-length`` 2 = 64
samples per step here), measures greedy accuracy on the whole test split (one batched forward
pass) at a log-spaced schedule of sample counts (every step for the first few, then about
``--evals-per-decade`` points per factor of 10), writes benchmarks/kaplan_comparison.png (test
accuracy vs samples seen, every seed) and prints

    ratio(L) = median over seeds of samples PG needs to first reach test accuracy L
             / median over seeds of samples supervised learning needs to first reach L

for every level L, and the early-phase efficiency ratio: the median of ratio(L) over the early
levels 30-70 % (the notes predict about the number of classes, 10, early in training, since a
random policy's reward carries signal for only 1/n_L of the samples). Both are resolved to one
step of 64 samples at the start and to the schedule's spacing (about 12 % with 20 points per
decade) later; a run that never reaches a level within its budget counts as not reaching it
(NaN, shown as such).

    .venv/bin/python benchmarks/kaplan_comparison.py [--seeds 0 1 2 3 4] [--out PATH]

About 20 s on 2 CPU cores with the defaults (5 seeds, 30k PG and 10k supervised samples each).
Early on, supervised learning is limited by optimizer steps rather than samples (one Adam step
takes it from 10 % to about 70 %), so the early ratio is about PG's samples / one batch and
grows with a smaller batch (32 samples per step: about 16).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlcore.actors.pool import rollout_pool
from rlcore.config import load_experiment
from rlcore.envs.datasets import split_mean_reward
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces
from rlcore.registry import ensure_env_registered

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"pg": ROOT / "experiments/digits_pg.yaml",
        "supervised": ROOT / "experiments/digits_supervised.yaml"}
EARLY_LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7)
LATE_LEVELS = (0.8, 0.9, 0.95)


def eval_schedule(batch: int, budget: int, per_decade: float) -> np.ndarray:
    """Sample counts to evaluate at: 0, then multiples of ``batch`` spaced ~log-uniformly."""
    n = max(2, int(np.ceil(per_decade * np.log10(max(budget / batch, 1.0)))) + 1)
    points = np.ceil(np.geomspace(batch, budget, n) / batch).astype(np.int64) * batch
    return np.unique(np.concatenate([[0], points]))


def run(file: Path, seed: int, budget: int, per_decade: float, *overrides: str) -> dict:
    """Train one experiment for ``budget`` samples: test accuracy at the eval schedule."""
    # the noise-scale estimate splits each step into 4 backward passes: not needed here
    exp = load_experiment(file, [f"seed={seed}", f"stop.num_env_steps={budget}",
                                 "learner.gns_every=1000000000", *overrides])
    torch.set_num_threads(1)
    spaces = check_spaces(exp)
    ensure_env_registered(exp.config.env.id)
    test_env = gym.make(exp.config.env.id, **{**exp.config.env.kwargs, "split": "test"})
    pool, learner = rollout_pool(exp, spaces), Learner(exp, spaces, torch.device("cpu"))
    batch = exp.config.env.num_envs * exp.config.rollout.fragment_length
    todo = list(eval_schedule(batch, budget, per_decade))
    samples, acc, steps, t0 = [], [], 0, time.perf_counter()

    def evaluate():
        policy = exp.plugin.make_policy(learner.modules, exp.algo, spaces, explore=False)
        samples.append(steps)
        acc.append(split_mean_reward(policy, test_env))  # the whole test split at once
        while todo and todo[0] <= steps:
            todo.pop(0)

    try:
        evaluate()
        while steps < budget:
            frags = pool.sample(learner.weights(), learner.version)
            steps += sum(f.num_steps for f in frags)
            learner.update(frags, steps / budget)
            if (todo and steps >= todo[0]) or steps >= budget:
                evaluate()
    finally:
        pool.close()
    return {"samples": np.asarray(samples), "accuracy": np.asarray(acc),
            "wall_s": time.perf_counter() - t0}


def samples_to_reach(curve: dict, level: float) -> float:
    hit = np.flatnonzero(curve["accuracy"] >= level)
    return float(curve["samples"][hit[0]]) if len(hit) else float("nan")


def plot(curves: dict, path: Path, ratios: dict, early_ratio: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = {"pg": "tab:red", "supervised": "tab:blue"}
    for name, runs in curves.items():
        for i, c in enumerate(runs):
            # sample count 0 (the untrained network) is drawn at 1 on the log axis
            ax.plot(np.maximum(c["samples"], 1), c["accuracy"], color=colors[name], alpha=0.7,
                    lw=1.2, marker=".", ms=3, label=name if i == 0 else None)
    ax.axhline(0.1, color="gray", ls=":", lw=1, label="chance (1/10)")
    ax.set_xscale("log")
    ax.set_xlabel("samples seen (env steps = one-step episodes; 64 per Adam step)")
    ax.set_ylabel("test accuracy (greedy, whole test split)")
    levels = ", ".join(f"{k:.0%}: {v:.1f}x" for k, v in ratios.items())
    ax.set_title(f"digits, {len(next(iter(curves.values())))} seeds: PG / supervised samples to "
                 f"reach test accuracy\n{levels}; early phase (30-70%): {early_ratio:.1f}x",
                 fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--pg-samples", type=int, default=30_000, help="PG budget per seed")
    ap.add_argument("--supervised-samples", type=int, default=10_000,
                    help="supervised budget per seed")
    ap.add_argument("--fragment-length", type=int, default=2,
                    help="steps per env per update: 32 envs x 2 = 64 samples per Adam step, "
                         "fine enough to resolve the first few hundred samples")
    ap.add_argument("--evals-per-decade", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/kaplan_comparison.png")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    frag = f"rollout.fragment_length={args.fragment_length}"
    budget = {"pg": args.pg_samples, "supervised": args.supervised_samples}
    curves = {name: [run(file, s, budget[name], args.evals_per_decade, frag) for s in args.seeds]
              for name, file in RUNS.items()}
    ratios, rows = {}, []
    for level in EARLY_LEVELS + LATE_LEVELS:
        need = {n: float(np.median([samples_to_reach(c, level) for c in cs]))
                for n, cs in curves.items()}
        ratios[level] = need["pg"] / need["supervised"]
        rows.append({"accuracy": level, **{f"{n}_samples": need[n] for n in need},
                     "ratio": round(ratios[level], 2)})
    early_ratio = float(np.median([ratios[lv] for lv in EARLY_LEVELS]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, args.out, ratios, early_ratio)
    result = {
        "seeds": args.seeds, "levels": rows, "early_phase_ratio": round(early_ratio, 2),
        "final_test_accuracy": {n: [round(float(c["accuracy"][-1]), 4) for c in cs]
                                for n, cs in curves.items()},
        "env_steps": {n: int(cs[0]["samples"][-1]) for n, cs in curves.items()},
        "evaluations_per_run": {n: len(cs[0]["samples"]) for n, cs in curves.items()},
        "wall_s_per_run": {n: round(float(np.mean([c["wall_s"] for c in cs])), 1)
                           for n, cs in curves.items()},
        "wall_s": round(time.perf_counter() - t0, 1), "figure": str(args.out)}
    print(json.dumps(result, indent=1))
    print(f"early-phase efficiency ratio (PG / supervised samples to first reach test accuracy "
          f"{', '.join(f'{lv:.0%}' for lv in EARLY_LEVELS)}; median over levels of the ratio of "
          f"seed medians): {early_ratio:.1f} (Kaplan: about the number of classes, 10)")
    return result


if __name__ == "__main__":
    main()
