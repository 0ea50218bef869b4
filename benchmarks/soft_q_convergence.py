"""Tabular soft Q-learning against the exact soft optimum: max-norm error of the learned Q
(every visited state-action) against soft value iteration's, at growing env-step budgets, over
seeds; one JSON line per seed, then a summary table.

    python benchmarks/soft_q_convergence.py [--seeds 0 1 2 3 4] [--out results.jsonl]

Env: experiments/tabular_soft_gridworld.yaml (a 3x4 deterministic maze with a wall and a hole,
step reward -0.05, gamma 0.9, beta 5, uniformly random behaviour, alpha = N(s, a)^-0.8).
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


def run_seed(seed: int) -> dict:
    import gymnasium as gym

    from rlcore.config import load_experiment
    from rlcore.plugins.tabular.solvers import soft_value_iteration
    from rlcore.registry import ensure_env_registered
    from rlcore.run.lifecycle import Run

    exp = load_experiment(ROOT / "experiments" / "tabular_soft_gridworld.yaml",
                          [f"seed={seed}", f"stop.num_env_steps={MILESTONES[-1]}",
                           "logging.progress_every_s=0"])
    cfg, algo = exp.config, exp.algo
    ensure_env_registered(cfg.env.id)
    env = gym.make(cfg.env.id, **cfg.env.kwargs).unwrapped
    _, q_exact, _ = soft_value_iteration(env.P, env.R, env.terminal, algo.gamma, algo.beta)
    errors = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(exp, Path(tmp) / "r")
        run.t_run, run.steps_at_start = run.clock(), 0
        try:
            for milestone in MILESTONES:
                while run.env_steps < milestone:
                    run.regime.round()
                table = run.learner.modules["q"]
                q, seen = table.q.detach().numpy(), table.counts.numpy().sum(axis=1) > 0
                errors[run.env_steps] = float(np.abs(q[seen] - q_exact[seen]).max())
        finally:
            run.pool.close()
            run.watchdog.close()
    return {"bench": "soft_q_convergence", "seed": seed,
            "max_abs_error_by_env_steps": errors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out")
    args = p.parse_args()
    lines = []
    for seed in args.seeds:
        line = run_seed(seed)
        lines.append(line)
        print(json.dumps(line), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    steps = list(lines[0]["max_abs_error_by_env_steps"])
    print("env steps  " + "  ".join(f"{s:>8,}" for s in steps))
    errs = np.array([list(line["max_abs_error_by_env_steps"].values()) for line in lines])
    for name, row in (("median", np.median(errs, 0)), ("worst", errs.max(0))):
        print(f"{name:<9}  " + "  ".join(f"{e:8.4f}" for e in row))


if __name__ == "__main__":
    main()
