"""Model-based control against model-free, in one run: cem_mpc and ilqr_mpc (plugins/mpc)
next to SAC (and TD3 on Pendulum-v1), each from its experiment file, over seeds, with a fixed
env-step budget per algorithm, evaluations at a fixed cadence and no early stop, on
Pendulum-v1, InvertedPendulum-v5 or HalfCheetah-v5 (``--env``).

Per algorithm and seed, one JSON line: the first evaluation >= the threshold, the env steps
from which every later evaluation stays >= it ("holds from", ``sustained_hit`` of
benchmarks/bench_common.py), the final evaluation, wall time per env step (evaluations excluded, and
with them), and for the planners their actions/s: planning alone, from the states of one
evaluation episode, with the final weights (one process, one torch thread).

    python benchmarks/model_based.py --seeds 0 1 --out results.jsonl
    python benchmarks/model_based.py --algos cem_mpc --seeds 0 --steps cem_mpc=1500
    python benchmarks/model_based.py --algos ilqr_mpc --seeds 1 --set algo.horizon=40
    python benchmarks/model_based.py --env inverted_pendulum --seeds 0 1 2 3 4 --out ip.jsonl
    python benchmarks/model_based.py --table a.jsonl b.jsonl --figure curves.png

Budgets and cadences (``ENVS``) are sized for a shared 2-core machine: the planners spend
0.1-0.2 s per planned step (evaluation episodes included), the model-free learners about
0.02 s per env step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # first import: starts the process clock

ROOT = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

# per env: the threshold of "first" and "holds from", and per algorithm its experiment file,
# env-step budget and evaluation cadence
ENVS = {
    "pendulum": dict(threshold=-200.0, algos={
        "cem_mpc": dict(experiment="cem_mpc_pendulum.yaml", steps=1_500, eval_every=500,
                        episodes=3),
        "ilqr_mpc": dict(experiment="ilqr_mpc_pendulum.yaml", steps=1_500, eval_every=500,
                         episodes=3),
        "sac": dict(experiment="sac_pendulum.yaml", steps=8_000, eval_every=1_000, episodes=5),
        "td3": dict(experiment="td3_pendulum.yaml", steps=8_000, eval_every=1_000, episodes=5),
    }),
    # Gymnasium's reward_threshold for InvertedPendulum-v5 is 950 (the maximum is 1,000)
    "inverted_pendulum": dict(threshold=950.0, algos={
        # every 1,000 steps: a balanced evaluation episode is 1,000 planned steps (0.1-0.26 s
        # each with the file's search), so three of them cost more than the training itself
        "cem_mpc": dict(experiment="cem_mpc_inverted_pendulum.yaml", steps=3_000,
                        eval_every=1_000, episodes=3),
        "sac": dict(experiment="sac_inverted_pendulum.yaml", steps=15_000, eval_every=1_000,
                    episodes=5),
    }),
    # no published threshold; 1,000 is where a gait has formed (SAC passes it near 20k steps)
    "halfcheetah": dict(threshold=1_000.0, algos={
        "cem_mpc": dict(experiment="cem_mpc_halfcheetah.yaml", steps=8_000, eval_every=2_000,
                        episodes=1),
        "sac": dict(experiment="sac_halfcheetah.yaml", steps=30_000, eval_every=5_000,
                    episodes=3),
    }),
}


def actions_per_s(modules: dict, exp, spaces, seed: int, steps: int = 50) -> float:
    """Planned actions per second of the final model (greedy policy), on the states the
    policy itself visits in the experiment's env from reset(seed)."""
    import gymnasium as gym
    import numpy as np

    from rlcore.registry import ensure_env_registered

    policy = exp.plugin.make_policy(modules, exp.algo, spaces, explore=False)
    ensure_env_registered(exp.config.env.id)
    env = gym.make(exp.config.env.id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(steps):
        out = policy.act(np.asarray(obs, np.float32)[None], rng)
        obs, _, term, trunc, _ = env.step(out.env_action[0])
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - t)


def run_seed(env: str, algo: str, seed: int, steps: int, overrides=(),
             keep_runs: Path | None = None) -> dict:
    import torch

    spec, threshold = ENVS[env]["algos"][algo], ENVS[env]["threshold"]
    experiment = ROOT / "experiments" / spec["experiment"]
    with tempfile.TemporaryDirectory() as tmp:
        # kept: one run folder per algorithm and seed (its events and config.yaml, which
        # train_experiment writes as `rlcore run` does, for ``rlcore plot``)
        run_dir = (keep_runs / f"{env}_{algo}" / f"seed{seed}" if keep_runs is not None
                   else Path(tmp) / "r")
        summary, run, learn_s = bench_common.train_full_budget(
            experiment, run_dir, seed, steps, spec["eval_every"], spec["episodes"],
            ["learner.torch_threads=1", *overrides])
        torch.set_num_threads(1)
        aps = (actions_per_s(run.eval_modules, run.exp, run.spaces, seed)
               if algo.endswith("_mpc") else None)
    evals = summary["evals"]
    n = summary["env_steps"]
    metrics = {**bench_common.threshold_metrics(evals, threshold), "total_steps": n, "wall_s": learn_s, "eval_s": run.eval_s,
               "train_s_per_env_step": (learn_s - run.eval_s) / n,
               "s_per_env_step_incl_eval": learn_s / n, "planner_actions_per_s": aps}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"bench": f"rlcore_{algo}_{env}", "task": f"model_based_{env}", "lib": "rlcore",
            "algo": algo, "seed": seed, "metrics": metrics,
            "config": {"experiment": f"experiments/{spec['experiment']}", "commit": commit,
                       "eval_every": spec["eval_every"], "eval_episodes": spec["episodes"],
                       "overrides": list(overrides)},
            "details": {"threshold": threshold, "load_avg_end": list(os.getloadavg()),
                        "evals": [[e["env_steps"], round(e["mean"], 1)] for e in evals]}}


def read_lines(paths) -> list[dict]:
    return [json.loads(ln) for path in paths for ln in Path(path).read_text().splitlines()
            if ln.strip()]


def label(line: dict) -> str:
    """The algorithm, with the overrides of a screen."""
    return " ".join([line["algo"], *line["config"].get("overrides", [])])


def table(lines: list[dict]) -> str:
    """A Markdown table, one row per algorithm and seed, then the median holds-from and the
    mean final per algorithm."""
    rows = ["| env | algorithm | seed | first | holds from | final (mean ± std) | evaluations "
            "| s per env step (training) | with evaluations | planner actions/s |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    show = lambda v: "never" if v is None else f"{v:,}"  # noqa: E731
    groups: dict[tuple, list[dict]] = {}
    for ln in sorted(lines, key=lambda x: (x["task"], label(x), x["seed"])):
        env = ln["task"].removeprefix("model_based_")
        groups.setdefault((env, label(ln)), []).append(ln)
        m = ln["metrics"]
        aps = m.get("planner_actions_per_s")
        evals = ", ".join(f"{v:g}" for _, v in ln["details"]["evals"])
        rows.append(f"| {env} | {label(ln)} | "
                    f"{ln['seed']} | {show(m['steps_to_threshold'])} | "
                    f"{show(m['steps_to_sustained_threshold'])} | {m['final_eval_mean']:.1f} ± "
                    f"{m['final_eval_std']:.1f} | {evals} | {m['train_s_per_env_step']:.3f} | "
                    f"{m['s_per_env_step_incl_eval']:.3f} | {'–' if aps is None else f'{aps:.1f}'} |")
    rows.append("")
    for (env, algo), group in groups.items():
        holds = [g["metrics"]["steps_to_sustained_threshold"] for g in group]
        finals = [g["metrics"]["final_eval_mean"] for g in group]
        held = sorted(h for h in holds if h is not None)
        median = (f"median holds-from {statistics.median(held):,.0f} of those that hold"
                  if held else "never holds")
        rows.append(f"- {env} {algo}: {len(group)} seeds, {len(held)} hold, {median}; final "
                    f"mean {statistics.mean(finals):.1f} (min {min(finals):.1f})")
    return "\n".join(rows)


def figure(lines: list[dict], out: str) -> None:
    """One panel per env: every seed's evaluations against env steps (thin) and their mean
    over seeds where all seeds were evaluated (thick), per algorithm; the threshold dashed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    envs = list(dict.fromkeys(ln["task"].removeprefix("model_based_") for ln in lines))
    fig = Figure(figsize=(6.0 * len(envs), 4.2), layout="constrained")
    for ax, env in zip(fig.subplots(1, len(envs), squeeze=False)[0], envs):
        mine = [ln for ln in lines if ln["task"] == f"model_based_{env}"]
        for algo in dict.fromkeys(label(ln) for ln in mine):
            runs = [ln["details"]["evals"] for ln in mine if label(ln) == algo]
            color = None
            for ev in runs:
                (line,) = ax.plot([e[0] for e in ev], [e[1] for e in ev], lw=0.7, alpha=0.45,
                                  color=color)
                color = line.get_color()
            common = sorted(set.intersection(*(set(e[0] for e in ev) for ev in runs)))
            mean = [statistics.mean(dict(ev)[x] for ev in runs) for x in common]
            ax.plot(common, mean, lw=2.2, color=color, marker="o", ms=3,
                    label=f"{algo} (mean of {len(runs)} seed{'s' * (len(runs) > 1)})")
        ax.axhline(mine[0]["details"]["threshold"], color="grey", lw=0.8, ls="--")
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(out, dpi=130)
    print(f"figure: {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=sorted(ENVS), default="pendulum")
    p.add_argument("--algos", nargs="+", help="default: every algorithm of the env")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", nargs="*", default=[], metavar="ALGO=N",
                   help="env-step budget of an algorithm (default: ENVS)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="config overrides applied to every algorithm's file (a screen)")
    p.add_argument("--out")
    p.add_argument("--keep-runs", type=Path, metavar="DIR", help="keep the run folders under "
                   "DIR/ENV_ALGO/seedN (then: rlcore plot DIR/*)")
    p.add_argument("--table", nargs="+", metavar="JSONL", help="print the Markdown table of "
                   "these result files (and draw --figure); nothing is run")
    p.add_argument("--figure", help="with --table: the curves' PNG")
    args = p.parse_args()
    if args.table:
        lines = read_lines(args.table)
        print(table(lines))
        if args.figure:
            figure(lines, args.figure)
        return
    algos = ENVS[args.env]["algos"]
    for name in args.algos or []:
        if name not in algos:
            p.error(f"--algos {name}: {args.env} has {', '.join(algos)}")
    budget = {a: s["steps"] for a, s in algos.items()}
    for item in args.steps:
        name, _, value = item.partition("=")
        if name not in algos or not value.isdigit():
            p.error(f"--steps {item}: expected ALGO=N with ALGO one of {', '.join(algos)}")
        budget[name] = int(value)
    for seed in args.seeds:
        for algo in args.algos or list(algos):
            line = run_seed(args.env, algo, seed, budget[algo], args.overrides, args.keep_runs)
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
