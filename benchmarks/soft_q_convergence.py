"""Tabular soft Q-learning against the exact soft optimum, with and without bounds: max-norm
error of the learned Q (every visited state-action) against soft value iteration's, at growing
env-step budgets, over seeds; one JSON line per (maze, bounds, seed), then summary tables and,
with --figure, the error curves.

    python benchmarks/soft_q_convergence.py [--seeds 0 1 2 3 4] [--bounds none empirical]
        [--mazes deterministic slippery] [--out results.jsonl] [--figure fig.png]

Env: experiments/tabular_soft_gridworld.yaml (a 3x4 maze with a wall and a hole, step reward
-0.05, gamma 0.9, beta 5, uniformly random behaviour, alpha = N(s, a)^-0.8), deterministic or
with FrozenLake's slip (rlcore/SlipperyGridWorld-v0). ``algo.bounds: empirical`` projects the
table into the bounds of plugins/tabular/bounds.py after every update; ``q_star_outside_by`` is
the most Q* lay outside the kept bounds on a tried pair at any milestone (the rewards are float32).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
MILESTONES = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
MAZES = {"deterministic": "rlcore/GridWorld-v0", "slippery": "rlcore/SlipperyGridWorld-v0"}


def run_seed(seed: int, bounds: str = "none", maze: str = "deterministic") -> dict:
    import gymnasium as gym

    from rlcore.config import load_experiment
    from rlcore.plugins.tabular.solvers import soft_value_iteration
    from rlcore.registry import ensure_env_registered
    from rlcore.run.lifecycle import Run

    exp = load_experiment(ROOT / "experiments" / "tabular_soft_gridworld.yaml",
                          [f"seed={seed}", f"stop.num_env_steps={MILESTONES[-1]}",
                           f"env.id={MAZES[maze]}", f"algo.bounds={bounds}",
                           "logging.progress_every_s=0"])
    cfg, algo = exp.config, exp.algo
    ensure_env_registered(cfg.env.id)
    env = gym.make(cfg.env.id, **cfg.env.kwargs).unwrapped
    _, q_exact, _ = soft_value_iteration(env.P, env.R, env.terminal, algo.gamma, algo.beta)
    errors, outside = {}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(exp, Path(tmp) / "r")
        run.t_run, run.steps_at_start = run.clock(), 0
        try:
            for milestone in MILESTONES:
                while run.env_steps < milestone:
                    run.regime.round()
                table = run.learner.modules["q"]
                q, tried = table.q.detach().numpy(), table.counts.numpy() > 0
                seen = tried.any(axis=1)
                errors[run.env_steps] = float(np.abs(q[seen] - q_exact[seen]).max())
                if bounds != "none":
                    lo, hi = table.lower.numpy(), table.upper.numpy()
                    gap = np.maximum(lo - q_exact, q_exact - hi)[tried]
                    outside = max(outside, float(gap.max(initial=0.0)))
        finally:
            run.pool.close()
            run.watchdog.close()
    return {"bench": "soft_q_convergence", "maze": maze, "bounds": bounds, "seed": seed,
            "max_abs_error_by_env_steps": errors, "q_star_outside_by": outside}


def figure(lines: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mazes = sorted({ln["maze"] for ln in lines})
    fig, axes = plt.subplots(1, len(mazes), figsize=(5.2 * len(mazes), 3.8), squeeze=False)
    for ax, maze in zip(axes[0], mazes):
        for bounds, colour in (("none", "tab:blue"), ("empirical", "tab:orange")):
            rows = [ln for ln in lines if ln["maze"] == maze and ln["bounds"] == bounds]
            if not rows:
                continue
            steps = np.array([int(s) for s in rows[0]["max_abs_error_by_env_steps"]])
            errs = np.array([list(r["max_abs_error_by_env_steps"].values()) for r in rows])
            label = "soft Q-learning" if bounds == "none" else "with empirical bounds"
            ax.plot(steps, np.median(errs, 0), "o-", color=colour,
                    label=f"{label} (median of {len(rows)} seeds)")
            ax.fill_between(steps, errs.min(0), errs.max(0), color=colour, alpha=0.2)
        ax.axhline(0.05, color="grey", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="env steps",
               ylabel="max |Q - Q*_soft| over visited (s, a)", title=f"{maze} 3x4 maze, β=5, γ=0.9")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--bounds", nargs="+", default=["none", "empirical"],
                   choices=["none", "empirical"])
    p.add_argument("--mazes", nargs="+", default=["deterministic", "slippery"], choices=list(MAZES))
    p.add_argument("--out")
    p.add_argument("--figure")
    args = p.parse_args()
    lines = []
    for maze in args.mazes:
        for bounds in args.bounds:
            for seed in args.seeds:
                line = run_seed(seed, bounds, maze)
                lines.append(line)
                print(json.dumps(line), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(line) + "\n")
    for maze in args.mazes:
        for bounds in args.bounds:
            rows = [ln for ln in lines if ln["maze"] == maze and ln["bounds"] == bounds]
            steps = list(rows[0]["max_abs_error_by_env_steps"])
            errs = np.array([list(r["max_abs_error_by_env_steps"].values()) for r in rows])
            print(f"\n{maze}, bounds: {bounds}, Q* outside the kept bounds by at most "
                  f"{max(r['q_star_outside_by'] for r in rows):.1e}")
            print("env steps  " + "  ".join(f"{int(s):>8,}" for s in steps))
            for name, row in (("median", np.median(errs, 0)), ("worst", errs.max(0))):
                print(f"{name:<9}  " + "  ".join(f"{e:8.4f}" for e in row))
    if args.figure:
        figure(lines, args.figure)


if __name__ == "__main__":
    main()
