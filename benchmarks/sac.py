"""rlcore's SAC in the protocol of its peer ``benchmarks/sb3_sac.py``: deterministic evaluations
on a separate env at a fixed cadence, a fixed env-step budget, no early stop; one JSON line per
seed with the first evaluation >= the threshold, the step from which every later evaluation
stays >= it, the final evaluation and the training throughput (evaluation time excluded).

Tasks (``--task``):
  sac_pendulum     experiments/sac_pendulum.yaml, 15k steps, 10 episodes every 1k, threshold -200
  sac_halfcheetah  experiments/sac_halfcheetah.yaml, 300k steps, 10 episodes every 20k,
                   threshold 5000

    python benchmarks/sac.py --task sac_pendulum --seeds 0 1 2 3 4 [--out results.jsonl]
    python benchmarks/sac.py --task sac_halfcheetah --seeds 0 [--steps 300000] [--out ...]

Each evaluation is also printed as it happens (the run's console log), so a long run's curve survives an
interruption.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_common  # before the benchmarks folder leaves sys.path

ROOT = Path(__file__).resolve().parent.parent
# This folder holds mujoco.py (the PPO/TRPO MuJoCo benchmark), which would shadow the mujoco
# package for HalfCheetah when the script runs as ``python benchmarks/sac.py``.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

TASKS = {
    "sac_pendulum": dict(experiment="sac_pendulum.yaml", steps=15_000, eval_every=1_000,
                         episodes=10, threshold=-200.0),
    "sac_halfcheetah": dict(experiment="sac_halfcheetah.yaml", steps=300_000, eval_every=20_000,
                            episodes=10, threshold=5000.0),
}


def run_seed(task: str, seed: int, steps: int, threshold: float) -> dict:
    spec = TASKS[task]
    experiment = ROOT / "experiments" / spec["experiment"]
    with tempfile.TemporaryDirectory() as tmp:
        summary, run, learn_s = bench_common.train_full_budget(
            experiment, Path(tmp) / "r", seed, steps, spec["eval_every"], spec["episodes"])
    evals = summary["evals"]
    metrics = {**bench_common.threshold_metrics(evals, threshold),
               "total_steps": summary["env_steps"],
               "train_steps_per_s": summary["env_steps"] / (learn_s - run.eval_s)}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"bench": f"rlcore_{task}", "task": task, "lib": "rlcore", "seed": seed,
            "metrics": metrics, "config": {"experiment": f"experiments/{spec['experiment']}",
                                           "commit": commit},
            "details": {"threshold": threshold, "load_avg_end": list(os.getloadavg()),
                        "evals": [[e["env_steps"], round(e["mean"], 1)] for e in evals]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="sac_pendulum")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, help="env-step budget (default: the task's)")
    p.add_argument("--threshold", type=float, help="return threshold (default: the task's)")
    p.add_argument("--out")
    args = p.parse_args()
    spec = TASKS[args.task]
    for seed in args.seeds:
        line = run_seed(args.task, seed, args.steps or spec["steps"],
                        spec["threshold"] if args.threshold is None else args.threshold)
        print(json.dumps(line), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
