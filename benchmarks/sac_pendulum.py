"""rlcore's SAC on Pendulum-v1 (``experiments/sac_pendulum.yaml``) in the protocol of the peer
``benchmarks/sb3_sac_pendulum.py``: 10 deterministic episodes every 1,000 env steps, 15k steps,
no early stop; one JSON line per seed (task ``sac_pendulum``) with the first evaluation >= -200,
the step from which every later evaluation stays >= -200, and the final evaluation.

    python benchmarks/sac_pendulum.py --seeds 0 1 2 3 4 [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sustained(evals: list, threshold: float):
    """The first evaluation from which every later one (the final included) is >= threshold."""
    hit = None
    for e in evals:
        hit = (hit or e) if e["mean"] >= threshold else None
    return hit


def run_seed(seed: int, steps: int, threshold: float) -> dict:
    from rlcore.run.lifecycle import train_experiment

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary, run = train_experiment(ROOT / "experiments" / "sac_pendulum.yaml", Path(tmp) / "r", [
            f"seed={seed}", f"stop.num_env_steps={steps}", "stop.eval_return=null",
            "eval.every_env_steps=1000", "eval.episodes=10", "checkpoint.every_env_steps=0"])
        learn_s = time.perf_counter() - t
    evals = summary["evals"]
    first = next((e for e in evals if e["mean"] >= threshold), None)
    hold = sustained(evals, threshold)
    metrics = {"steps_to_threshold": first and first["env_steps"],
               "steps_to_sustained_threshold": hold and hold["env_steps"],
               "final_eval_mean": evals[-1]["mean"], "final_eval_std": evals[-1]["std"],
               "total_steps": summary["env_steps"],
               "train_steps_per_s": summary["env_steps"] / (learn_s - run.eval_s)}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"bench": "rlcore_sac_pendulum", "task": "sac_pendulum", "lib": "rlcore", "seed": seed,
            "metrics": metrics, "config": {"experiment": "experiments/sac_pendulum.yaml",
                                           "commit": commit},
            "details": {"threshold": threshold, "load_avg_end": list(os.getloadavg()),
                        "evals": [[e["env_steps"], round(e["mean"], 1)] for e in evals]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=15_000)
    p.add_argument("--threshold", type=float, default=-200.0)
    p.add_argument("--out")
    args = p.parse_args()
    for seed in args.seeds:
        line = run_seed(seed, args.steps, args.threshold)
        print(json.dumps(line), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
