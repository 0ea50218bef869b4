"""Model-based control against model-free on Pendulum-v1, in one run: cem_mpc and ilqr_mpc
(plugins/mpc) next to SAC and TD3, each from its experiment file, over seeds, with a fixed
env-step budget per algorithm, evaluations at a fixed cadence and no early stop.

Per algorithm and seed, one JSON line: the first evaluation >= the threshold, the env steps
from which every later evaluation stays >= it ("holds from", ``sustained_hit`` of
benchmarks/bench_common.py), the final evaluation, wall time per env step (evaluations excluded, and
with them), and for the planners their actions/s: planning alone, from the states of one
evaluation episode, with the final weights (one process, one torch thread).

    python benchmarks/model_based.py --seeds 0 1 --out results.jsonl
    python benchmarks/model_based.py --algos cem_mpc --seeds 0 --steps cem_mpc=1500

Budgets and cadences (``ALGOS``) are sized for a shared 2-core machine: the planners spend
0.1-0.2 s per planned step (evaluation episodes included), the model-free learners about
0.02 s per env step.
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

import bench_common  # first import: starts the process clock

ROOT = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

THRESHOLD = -200.0
ALGOS = {
    "cem_mpc": dict(experiment="cem_mpc_pendulum.yaml", steps=1_500, eval_every=500,
                    episodes=3),
    "ilqr_mpc": dict(experiment="ilqr_mpc_pendulum.yaml", steps=1_500, eval_every=500,
                     episodes=3),
    "sac": dict(experiment="sac_pendulum.yaml", steps=8_000, eval_every=1_000, episodes=5),
    "td3": dict(experiment="td3_pendulum.yaml", steps=8_000, eval_every=1_000, episodes=5),
}


def actions_per_s(modules: dict, exp, spaces, seed: int, steps: int = 50) -> float:
    """Planned actions per second of the final model (greedy policy), on the states the
    policy itself visits in Pendulum-v1 from reset(seed)."""
    import gymnasium as gym
    import numpy as np

    policy = exp.plugin.make_policy(modules, exp.algo, spaces, explore=False)
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(steps):
        out = policy.act(obs[None], rng)
        obs, *_ = env.step(out.env_action[0])
    return steps / (time.perf_counter() - t)


def run_seed(algo: str, seed: int, steps: int) -> dict:
    import torch

    spec = ALGOS[algo]
    experiment = ROOT / "experiments" / spec["experiment"]
    with tempfile.TemporaryDirectory() as tmp:
        summary, run, learn_s = bench_common.train_full_budget(
            experiment, Path(tmp) / "r", seed, steps, spec["eval_every"], spec["episodes"],
            ["learner.torch_threads=1"])
        torch.set_num_threads(1)
        aps = (actions_per_s(run.eval_modules, run.exp, run.spaces, seed)
               if algo.endswith("_mpc") else None)
    evals = summary["evals"]
    n = summary["env_steps"]
    metrics = {**bench_common.threshold_metrics(evals, THRESHOLD), "total_steps": n, "wall_s": learn_s, "eval_s": run.eval_s,
               "train_s_per_env_step": (learn_s - run.eval_s) / n,
               "s_per_env_step_incl_eval": learn_s / n, "planner_actions_per_s": aps}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"bench": f"rlcore_{algo}_pendulum", "task": "model_based_pendulum", "lib": "rlcore",
            "algo": algo, "seed": seed, "metrics": metrics,
            "config": {"experiment": f"experiments/{spec['experiment']}", "commit": commit,
                       "eval_every": spec["eval_every"], "eval_episodes": spec["episodes"]},
            "details": {"threshold": THRESHOLD, "load_avg_end": list(os.getloadavg()),
                        "evals": [[e["env_steps"], round(e["mean"], 1)] for e in evals]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", choices=sorted(ALGOS), default=list(ALGOS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", nargs="*", default=[], metavar="ALGO=N",
                   help="env-step budget of an algorithm (default: ALGOS)")
    p.add_argument("--out")
    args = p.parse_args()
    budget = {a: s["steps"] for a, s in ALGOS.items()}
    for item in args.steps:
        name, _, value = item.partition("=")
        if name not in ALGOS or not value.isdigit():
            p.error(f"--steps {item}: expected ALGO=N with ALGO one of {', '.join(ALGOS)}")
        budget[name] = int(value)
    for seed in args.seeds:
        for algo in args.algos:
            line = run_seed(algo, seed, budget[algo])
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
