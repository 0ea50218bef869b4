"""Sustained and final performance: an experiment file trained to its full env-step budget
(``stop.eval_return`` off) over seeds, beside SB3's DQN in the same run where a peer exists.

Per run one JSON line (peers' format, see bench_common.py) with
  steps_to_sustained_threshold  the env step of the evaluation from which every later one
                                (the final included) stays >= the threshold ("holds from")
  final_eval_mean / _std        the deterministic evaluation at the full budget
  wall_s                        process start to the end of the run (imports, evaluations in)
  steps_to_threshold            the first evaluation >= the threshold (first touch, extra)
and the curve (``details.evals``: [env steps, eval mean]); rlcore runs also carry learner
diagnostics every 1,000 env steps (``details.learner``: [env steps, mean Q(s, a) of the
sampled batch, loss, gradient norm, learning rate]). Then a summary table.

    python benchmarks/sustained.py experiments/dqn_cartpole.yaml --seeds 0 1 2 3 4 \
        --sb3 /tmp/peers/sb3/bin/python --out results.jsonl
    python benchmarks/sustained.py experiments/c51_cartpole.yaml --seeds 0 1 --set learner.lr=1e-3
    python benchmarks/sustained.py --table results.jsonl         # the table of saved lines

Each run is a child process of its own (wall seconds count interpreter start-up and imports,
as the peers' scripts do); runs go one after another, never in parallel.
"""

from __future__ import annotations

import bench_common as bc  # first: starts the process clock

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The benchmarks folder holds mujoco.py, which would shadow the mujoco package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != bc.ROOT / "benchmarks"]

PEERS = bc.ROOT.parent / "shared" / "bench" / "peers"
# SB3 peers by env id and algorithm (RL-Zoo settings; see the peer scripts)
SB3_PEERS = {("CartPole-v1", "dqn"): "sb3_dqn_cartpole.py"}


# ---------------------------------------------------------------------------- child


def child(args) -> int:
    """One rlcore run to the full budget; prints its JSON line."""
    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import Run
    from rlcore.run.logging import RunLogger

    class DiagLogger(RunLogger):
        """Keeps the learner's scalars (logged every 1,000 env steps) for the JSON line."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.learner: list = []

        def scalars(self, prefix, values, step):
            if prefix == "learner" and values:
                self.learner.append([step, values.get("q_mean"), values.get("loss"),
                                     values.get("grad_norm"), values.get("lr")])
            super().scalars(prefix, values, step)

    overrides = [f"seed={args.seed}", "stop.eval_return=null", "logging.progress_every_s=0",
                 "checkpoint.every_env_steps=0", *args.set]
    exp = load_experiment(args.experiment, overrides)
    evals: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(exp, Path(tmp) / "r")
        logger = DiagLogger(Path(tmp) / "r", 0, 0)
        t = time.perf_counter()
        try:
            summary = run.run(logger, on_eval=lambda rec: evals.append(
                {"steps": rec["env_steps"], "mean": rec["mean"], "std": rec["std"],
                 "wall_s": bc.elapsed()}))
        finally:
            logger.close()
            bc.shutdown_ray()
        run_s = time.perf_counter() - t
    first = next((e for e in evals if e["mean"] >= args.threshold), None)
    hold = bc.sustained_hit(evals, args.threshold)
    cfg = exp.config
    metrics = {"steps_to_sustained_threshold": hold and hold["steps"],
               "final_eval_mean": evals[-1]["mean"], "final_eval_std": evals[-1]["std"],
               "wall_s": bc.elapsed(), "steps_to_threshold": first and first["steps"],
               "wall_to_threshold_s": first and first["wall_s"],
               "total_steps": summary["env_steps"], "updates": summary.get("updates"),
               "train_steps_per_s": summary["env_steps"] / max(run_s - run.eval_s, 1e-9),
               "eval_s": run.eval_s}
    config = {"experiment": str(Path(args.experiment).resolve().relative_to(bc.ROOT)),
              "overrides": overrides, "algorithm": cfg.algorithm, "env_id": cfg.env.id,
              "total_steps": cfg.stop.num_env_steps, "eval_every": cfg.eval.every_env_steps,
              "eval_episodes": cfg.eval.episodes}
    details = {"threshold": args.threshold, "stop_reason": summary["stop_reason"],
               "evals": [[e["steps"], round(e["mean"], 1)] for e in evals],
               "learner": logger.learner,
               "learner_format": "[env_steps, q_mean, loss, grad_norm, lr]", "load_avg_end": bc.load_avg()}
    line = bc.make_line(f"rlcore_{cfg.algorithm}_sustained", args.seed, metrics, config, details)
    line["task"] = f"{cfg.algorithm}_{cfg.env.id}"
    bc.emit(line, None)
    return 0


# ---------------------------------------------------------------------------- parent


def run_child(cmd: list[str], cwd: Path, timeout: float) -> tuple[dict | None, str | None]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout:g}s"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        return None, f"exit {res.returncode}: {res.stderr[-1500:]}"
    return json.loads(lines[-1]), None


def sb3_line(args, seed: int, script: str, total: int) -> dict:
    cmd = [args.sb3, str(PEERS / script), "--seed", str(seed), "--total-steps", str(total),
           "--torch-threads", "1", "--threshold", str(args.threshold)]
    t = time.time()
    line, error = run_child(cmd, PEERS, args.timeout)
    if error:
        return {"bench": f"sb3_{script}", "lib": "stable-baselines3", "seed": seed, "error": error}
    m = line["metrics"]
    m["wall_s"] = round(time.time() - t, 2)  # process start to end, as the parent saw it
    line.setdefault("details", {})["load_avg_end"] = bc.load_avg()
    return line


def rlcore_line(args, seed: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--seed", str(seed),
           "--threshold", str(args.threshold), str(args.experiment)]
    for item in args.set:
        cmd += ["--set", item]
    line, error = run_child(cmd, bc.ROOT, args.timeout)
    if error:
        return {"bench": "rlcore_sustained", "lib": "rlcore", "seed": seed, "error": error,
                "config": {"experiment": str(args.experiment), "overrides": args.set}}
    return line


def label(line: dict) -> str:
    if line.get("lib") != "rlcore":
        return f"{line.get('lib')} {line.get('task', '')}".strip()
    cfg = line.get("config", {})
    sets = [o for o in cfg.get("overrides", []) if not o.startswith(
        ("seed=", "stop.eval_return=", "logging.", "checkpoint."))]
    return " ".join([Path(cfg.get("experiment", "?")).name, *sets])


def print_table(lines: list[dict], threshold: float) -> None:
    groups: dict[str, list[dict]] = {}
    for ln in lines:
        groups.setdefault(label(ln), []).append(ln)
    print(f"\nheld >= {threshold:g} from (env steps; '-' = not held at the end), final "
          "deterministic evaluation at the full budget, wall seconds from process start")
    head = f"{'run':<48} {'seed':>4} {'holds from':>10} {'final':>13} {'wall_s':>7} {'first':>7}"
    print(head)
    for name, runs in groups.items():
        for ln in sorted(runs, key=lambda x: x["seed"]):
            if "error" in ln:
                print(f"{name[:48]:<48} {ln['seed']:>4}  FAILED: {ln['error'][:80]}")
                continue
            m = ln["metrics"]
            final = f"{m['final_eval_mean']:.1f} ± {m['final_eval_std']:.1f}"
            print(f"{name[:48]:<48} {ln['seed']:>4} {bc.fmt(m['steps_to_sustained_threshold']):>10}"
                  f" {final:>13} {bc.fmt(m.get('wall_s'), 0):>7} {bc.fmt(m['steps_to_threshold']):>7}")
        ok = [ln for ln in runs if "error" not in ln]
        if ok:
            held = [ln["metrics"]["steps_to_sustained_threshold"] for ln in ok]
            finals = [ln["metrics"]["final_eval_mean"] for ln in ok]
            walls = [ln["metrics"].get("wall_s") or 0 for ln in ok]
            worst = max(held) if all(h is not None for h in held) else None
            print(f"{'':<48} {'all':>4} {'max ' + bc.fmt(worst):>10} "
                  f"{'min ' + format(min(finals), '.1f'):>13} "
                  f"{'med ' + format(statistics.median(walls), '.0f'):>7}  "
                  f"({sum(h is not None for h in held)}/{len(ok)} held, "
                  f"mean final {statistics.mean(finals):.1f})")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="experiment override for every run (repeatable)")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--sb3", default=None, help="python of the SB3 venv: run its peer beside")
    p.add_argument("--out", help="append the JSON lines to this file")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    p.add_argument("--table", nargs="+", help="print the table of these JSON-line files")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    if args.table:
        lines = [json.loads(t) for f in args.table for t in Path(f).read_text().splitlines()
                 if t.startswith("{")]
        print_table(lines, args.threshold)
        return 0
    if args.experiment is None:
        raise SystemExit("an experiment file is needed (or --table FILE)")
    from rlcore.config import load_experiment

    cfg = load_experiment(args.experiment, [f"seed={args.seeds[0]}", *args.set]).config
    peer = SB3_PEERS.get((cfg.env.id, cfg.algorithm)) if args.sb3 else None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for seed in args.seeds:
        lines.append(rlcore_line(args, seed))
        bc.emit(lines[-1], args.out)
        if peer:
            lines.append(sb3_line(args, seed, peer, cfg.stop.num_env_steps))
            bc.emit(lines[-1], args.out)
    print_table(lines, args.threshold)
    return 1 if any("error" in ln for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
