"""rlcore PPO-CartPole benchmark: time to eval mean >= 475 (Ray and inline), and rollout throughput.

Prints JSON lines in the peers' format (see bench_common.py), then tables. Every line records
the CPU other processes used meanwhile (``details.cpu_during``, cpu_monitor.py): on 2 cores a
concurrent job distorts timings far more than the differences measured here.

1. Time to 475, one line per seed and mode. Mode ``ray`` (bench ``rlcore_ppo_cartpole``) trains
   experiments/ppo_cartpole.yaml as written: local Ray, 8 envs split over 2 rollout actors,
   RL-Zoo PPO hyperparameters; its slots step inline while Ray and the actors start, then the
   actors take over (``rollout.inline_start``, on by default). Mode ``ray_wait``
   (``rlcore_ppo_cartpole_ray_wait``) sets ``rollout.inline_start=false``: the run waits for Ray
   and the actors, as it did before that setting existed. Mode ``inline``
   (``rlcore_ppo_cartpole_inline``) adds ``rollout.num_actors=0``: the same 8 envs stepped in
   the driver, no Ray. Each run is a child process of its own, so that wall seconds from process
   start count interpreter start-up, imports, Ray and actor start-up, as the peers' scripts do.
   Protocol: the experiment's (10 deterministic episodes every 5000 env steps); the clock is
   read when the first evaluation with mean >= 475 has finished. Metric names follow
   sb3_ppo_cartpole.py; setup_s is the time to a constructed Run (Ray and actors started),
   learn_s is Run.run() without its evaluations; the run stops at stop.eval_return (500) unless --no-early-stop
   (the whole budget, as SB3 runs; only then is steps_to_sustained_threshold given). rlcore
   only: before_trainer_s (interpreter, imports, config), trainer_init_s, first_fragment_s
   (from process start), sample_s and update_s (the loop's own per-iteration timings).

2. Rollout throughput (rollout_throughput.py): raw vector env and inline RolloutWorker at every
   ``--envs`` count, then the experiment's Ray pool.

Usage:
    python benchmarks/cartpole.py                     # seed 0 in both modes, then throughput
    python benchmarks/cartpole.py --seeds 0 1 2 --out results.jsonl
    bash benchmarks/run_vs_sb3.sh results.jsonl       # beside SB3, with the CPU monitor
"""

from __future__ import annotations

import bench_common as bc  # first: sets Ray's environment before anything imports it

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rollout_throughput
import torch
from cpu_monitor import OtherCpu, session_pids

from rlcore.config import load_experiment
from rlcore.run.logging import RunLogger
from rlcore.run.lifecycle import Run

PPO_BENCH = {"ray": "rlcore_ppo_cartpole", "ray_wait": "rlcore_ppo_cartpole_ray_wait",
             "inline": "rlcore_ppo_cartpole_inline"}

# ---------------------------------------------------------------------------- PPO (child)


class TimingLogger(RunLogger):
    """Sums the loop's own per-iteration timings and notes when the first fragment arrived."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sample_s = self.update_s = 0.0
        self.iterations = 0
        self.first_fragment_s = None

    def scalars(self, prefix, values, step):
        if prefix in ("rollout", "actors") and self.first_fragment_s is None:
            self.first_fragment_s = bc.elapsed()
        elif prefix == "time":
            self.sample_s += values["sample_s"]
            self.update_s += values["update_s"]
            self.iterations += 1
        super().scalars(prefix, values, step)




def train(exp, run_dir: Path) -> dict:
    """One training run; every evaluation is noted with the wall time from process start."""
    r: dict = {"evals": [], "before_trainer_s": bc.elapsed()}  # interpreter, imports, config
    logger = None
    try:
        t = time.perf_counter()
        trainer = Run(exp, run_dir)  # builds the pool: starts Ray and the actors
        r["trainer_init_s"] = time.perf_counter() - t
        logger = TimingLogger(run_dir, 0, exp.config.logging.progress_every_s, stream=sys.stderr)

        def on_eval(rec: dict) -> None:
            wall = bc.elapsed()
            r["evals"].append({"steps": rec["env_steps"], "wall_s": wall, "mean": rec["mean"],
                               "wall_excl_eval_s": wall - trainer.eval_s,
                               "trainer_wall_s": rec["wall_s"], "std": rec["std"]})

        r["setup_s"] = bc.elapsed()
        t = time.perf_counter()
        r["summary"] = trainer.run(logger, on_eval=on_eval)
        r["run_s"], r["eval_s"] = time.perf_counter() - t, trainer.eval_s
    finally:
        if logger is not None:
            logger.close()
        bc.shutdown_ray()
    r["logger"], r["torch_threads"] = logger, torch.get_num_threads()
    return r


def ppo_metrics(r: dict, threshold: float) -> dict:
    evals, log, steps = r["evals"], r["logger"], int(r["summary"]["env_steps"])
    hit = next((e for e in evals if e["mean"] >= threshold), None)
    full_budget = r["summary"]["stop_reason"] == "num_env_steps"
    sustained = bc.sustained_hit(evals, threshold) if full_budget else None
    loop_s = log.sample_s + log.update_s
    return {
        "steps_to_threshold": hit and hit["steps"],
        "wall_to_threshold_s": hit and hit["wall_s"],
        "wall_to_threshold_excl_eval_s": hit and hit["wall_excl_eval_s"],
        "steps_to_sustained_threshold": sustained and sustained["steps"],  # whole budget only
        "final_eval_mean": evals[-1]["mean"], "final_eval_std": evals[-1]["std"],
        "best_eval_mean": max(e["mean"] for e in evals), "total_steps": steps,
        "train_steps_per_s": steps / (r["run_s"] - r["eval_s"]),
        "steps_per_s_incl_eval": steps / r["run_s"],
        "learn_s": r["run_s"], "eval_s": r["eval_s"], "setup_s": r["setup_s"],
        # rlcore only: where the time goes.
        "before_trainer_s": r["before_trainer_s"], "trainer_init_s": r["trainer_init_s"],
        "first_fragment_s": log.first_fragment_s, "sample_s": log.sample_s,
        "update_s": log.update_s, "loop_steps_per_s": steps / loop_s if loop_s > 0 else None,
        "trainer_wall_to_threshold_s": hit and hit["trainer_wall_s"],
    }


def child_ppo(args) -> int:
    """One run of the experiment; prints its JSON line (the parent adds CPU data and writes)."""
    overrides = [f"seed={args.seed}", *args.set]
    exp = load_experiment(args.experiment, overrides)
    cfg = exp.config
    run_dir = Path(tempfile.mkdtemp(prefix=f"rlcore_bench_{args.child_ppo}_s{args.seed}_"))
    try:
        r = train(exp, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    config = {"mode": args.child_ppo, "experiment": str(args.experiment), "overrides": overrides,
              "num_actors": cfg.rollout.num_actors, "num_envs": cfg.env.num_envs,
              "batch_size": cfg.batch_size, "total_steps": cfg.stop.num_env_steps,
              "learner_torch_threads": r["torch_threads"], "device": r["summary"]["device"]}
    details = {"threshold": args.threshold, "stop_reason": r["summary"]["stop_reason"],
               "updates": r["summary"]["updates"], "iterations": r["logger"].iterations,
               "evals": [[e["steps"], round(e["wall_s"], 2), round(e["mean"], 1)]
                         for e in r["evals"]],
               "evals_format": "[steps, wall_s_from_process_start, eval_mean]",
               "load_avg_end": bc.load_avg(),
               # mode ray: the env steps the inline workers delivered before the actors took
               # over, and when (seconds from the run's start); null: they never did
               "inline_start": r["summary"].get("inline_start")}
    bc.emit(bc.make_line(PPO_BENCH[args.child_ppo], args.seed, ppo_metrics(r, args.threshold),
                         config, details), None)
    return 0


# ---------------------------------------------------------------------------- PPO (parent)


def mode_overrides(exp, mode: str) -> list[str]:
    """``inline``: the experiment's envs stepped in the driver, no Ray (env.num_envs is the
    total, so the batch is the same)."""
    return {"ray": [], "ray_wait": ["rollout.inline_start=false"],
            "inline": ["rollout.num_actors=0"]}[mode]


def reap_session(sid: int) -> list[int]:
    """Kill, by PID, whatever is left of the session a child was started in (Ray daemons)."""
    for _ in range(10):
        pids = session_pids(sid)
        if not pids:
            return []
        time.sleep(0.5)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(3)
        pids = session_pids(sid)
        if not pids:
            break
    return pids


def communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str | None]:
    """The child's stdout, and an error unless it exited with 0 in time."""
    try:
        stdout, _ = proc.communicate(timeout=timeout)
        return stdout, None if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.terminate()  # the rest of its session is ended in reap_session
        try:
            stdout, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        return stdout, f"timeout after {timeout:g}s"


def run_ppo(args, seed: int, mode: str, sets: list[str]) -> dict:
    """One child process; its line, with the CPU other processes used meanwhile."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-ppo", mode, "--seed", str(seed),
           "--experiment", str(args.experiment), "--threshold", str(args.threshold)]
    for item in [*args.set, *sets] + ["stop.eval_return=null"] * args.no_early_stop:
        cmd += ["--set", item]
    print(f"== ppo {mode} seed {seed}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    load_before = bc.load_avg()
    meter = OtherCpu({os.getpid()}).start(every=0.5)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=str(bc.ROOT))
    meter.sessions.add(proc.pid)  # its Ray daemons stay in its session when orphaned
    stdout, error = communicate(proc, args.timeout)
    cpu = meter.result()
    leftover = reap_session(proc.pid)
    if leftover:
        print(f"   leftover processes of {mode} seed {seed}: {leftover}", file=sys.stderr)
    lines = [ln for ln in stdout.splitlines() if ln.startswith('{"bench"')]
    if error or not lines:
        return {"bench": PPO_BENCH[mode], "task": bc.TASK, "lib": bc.LIB, "seed": seed,
                "error": error or "no result line",
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    line = json.loads(lines[-1])
    line["details"].update(load_avg_before=load_before, cpu_during=cpu)
    return line


PPO_COLUMNS = {"wall_to_475_s": "wall_to_threshold_s", "steps": "steps_to_threshold",
               "excl_eval_s": "wall_to_threshold_excl_eval_s",
               "before_trainer_s": "before_trainer_s", "trainer_init_s": "trainer_init_s",
               "first_frag_s": "first_fragment_s", "loop_sps": "loop_steps_per_s"}


def print_ppo_table(lines: list[dict]) -> None:
    print("\nPPO CartPole-v1 (experiments/ppo_cartpole.yaml), first eval mean >= 475; "
          "seconds from process start")
    print(f"{'mode':>6} {'seed':>6} " + " ".join(f"{h:>13}" for h in PPO_COLUMNS)
          + f" {'other_cores':>11}")
    for mode, bench in PPO_BENCH.items():
        runs = [ln for ln in lines if ln["bench"] == bench]
        for ln in runs:
            if "error" in ln:
                print(f"{mode:>6} {ln['seed']:>6}  FAILED: {ln['error']}")
                continue
            print(f"{mode:>6} {ln['seed']:>6} "
                  + " ".join(f"{bc.fmt(ln['metrics'][k]):>13}" for k in PPO_COLUMNS.values())
                  + f" {bc.fmt(ln['details']['cpu_during']['other_processes_cores']):>11}")
        cols = [[ln["metrics"][k] for ln in runs if "error" not in ln
                 and ln["metrics"][k] is not None] for k in PPO_COLUMNS.values()]
        if cols[0]:
            print(f"{mode:>6} {'median':>6} "
                  + " ".join(f"{bc.fmt(statistics.median(c)):>13}" for c in cols)
                  + f"  ({len(cols[0])}/{len(runs)} reached 475)")


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="PPO seeds (one child each)")
    p.add_argument("--modes", nargs="+", choices=list(PPO_BENCH), default=list(PPO_BENCH),
                   help="ray: the experiment as written; ray_wait: with rollout.inline_start=false; "
                        "inline: its envs in the driver, no Ray")
    p.add_argument("--envs", type=int, nargs="+", default=[4, 8, 16],
                   help="envs per worker for the raw and inline throughput")
    p.add_argument("--out", help="append the JSON lines to this file (run_all.sh: --out \"$1\")")
    p.add_argument("--experiment", type=Path, default=bc.ROOT / "experiments" / "ppo_cartpole.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="experiment override for every run (e.g. learner.torch_threads=1)")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--no-early-stop", action="store_true",
                   help="train the whole stop.num_env_steps budget (as SB3 does)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per PPO child")
    p.add_argument("--throughput-seconds", type=float, default=5.0)
    p.add_argument("--skip-ppo", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--child-ppo", choices=list(PPO_BENCH), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.experiment = args.experiment.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_ppo:
        return child_ppo(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    exp = load_experiment(args.experiment, [f"seed={args.seeds[0]}", *args.set])
    ppo: list[dict] = []
    for seed in [] if args.skip_ppo else args.seeds:
        for mode in args.modes:  # interleaved, so that a slow spell hits both modes alike
            ppo.append(run_ppo(args, seed, mode, mode_overrides(exp, mode)))
            bc.emit(ppo[-1], args.out)
    rollout = []
    if not args.skip_throughput:
        print("== rollout throughput", file=sys.stderr, flush=True)
        for line in rollout_throughput.throughput_lines(exp, args.envs, args.throughput_seconds):
            bc.emit(line, args.out)
            rollout.append(line)
    if ppo:
        print_ppo_table(ppo)
    if rollout:
        rollout_throughput.print_table(rollout)
    return 1 if any("error" in ln for ln in ppo) else 0


if __name__ == "__main__":
    sys.exit(main())
