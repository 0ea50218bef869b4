"""Where a run's CPU goes with a local Ray and without: CPU seconds per process of one run.

    python benchmarks/ray_cpu.py [--experiment experiments/ppo_cartpole.yaml] [--steps 30000]
                                 [--modes ray ray_wait inline] [--out results.jsonl]

Each mode runs ``rlcore run`` on the experiment to ``--steps`` env steps (no early stop, no
evaluations but one at the end) as a child in a session of its own, and samples every 0.2 s
the CPU seconds of every process in that session (Ray's daemons and actors included), so
processes that end before the run does are counted too (all but their last 0.2 s). Modes:
``ray`` (the file's local Ray, stepping inline while Ray starts), ``ray_wait``
(``rollout.inline_start=false``), ``inline`` (``rollout.num_actors=0``). Prints, per mode, the
run's own loop time (its "done: ... in X s" line), the wall time of the child and the CPU
seconds by process: on a 2-core machine every CPU second outside the driver is taken from the
learner or the env steps. Linux /proc only.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc
from cpu_monitor import own_pids, proc_table

MODES = {"ray": [], "ray_wait": ["rollout.inline_start=false"], "inline": ["rollout.num_actors=0"]}


def label(pid: int, name: str) -> str:
    """A process's role: Ray's title (``ray::WorkerHost``, ``raylet``, ``gcs_server``), the
    script a Python daemon runs (``ray/dashboard/agent.py``), else its name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return name
    if not argv:
        return name
    if argv[0].startswith("ray::") or "/" not in argv[0]:
        return argv[0].split()[0]
    for a in argv[1:]:
        if a.endswith(".py"):
            return "/".join(Path(a).parts[-3:]) if "ray" in a else Path(a).name
        if a == "-m":
            break
    if "rlcore" in " ".join(argv[:3]):
        return "rlcore driver"
    return Path(argv[0]).name


def run_mode(args, mode: str) -> dict:
    sets = [f"stop.num_env_steps={args.steps}", "stop.eval_return=null",
            "eval.every_env_steps=0", "eval.episodes=1", *MODES[mode]]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rlcore.cli", "run", str(args.experiment), "--run-dir",
               f"{tmp}/run"] + [a for kv in sets for a in ("--set", kv)]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        seen: dict[int, tuple[str, float]] = {}
        sessions = {proc.pid}
        while proc.poll() is None:
            table = proc_table()
            own = own_pids(table, {proc.pid}, sessions)
            sessions |= {table[pid].sid for pid in own}  # Ray's daemons may start their own
            for pid in own:  # a process's role is read once, when it is first seen
                role = seen[pid][0] if pid in seen else label(pid, table[pid].name)
                seen[pid] = (role, table[pid].cpu_s)
            time.sleep(0.2)
        wall = time.monotonic() - t0
        out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"ray_cpu.py: {mode} failed (exit {proc.returncode}):\n{out[-2000:]}")
    loop = re.search(r"done: [\d,]+ env steps in ([\d.]+) s", out)
    handover = re.search(r"take over from the inline workers at ([\d,]+) env steps", out)
    by_role = collections.Counter()
    for role, cpu in seen.values():
        by_role[role] += cpu
    return {"mode": mode, "loop_s": float(loop.group(1)) if loop else None,
            "child_wall_s": round(wall, 2),
            "handover_env_steps": int(handover.group(1).replace(",", "")) if handover else None,
            "cpu_s_total": round(sum(by_role.values()), 2),
            "cpu_s_outside_driver": round(sum(v for k, v in by_role.items()
                                              if k != "rlcore driver"), 2),
            "cpu_s_by_process": {k: round(v, 2) for k, v in by_role.most_common()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", type=Path, default=bc.ROOT / "experiments" / "ppo_cartpole.yaml")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    for mode in args.modes:
        r = run_mode(args, mode)
        bc.emit(bc.make_line(f"rlcore_ray_cpu_{mode}", None,
                             {k: v for k, v in r.items() if k != "mode"},
                             {"experiment": str(args.experiment), "steps": args.steps},
                             {"load_avg": bc.load_avg()}), args.out)
        print(f"\n{mode}: loop {r['loop_s']} s, child wall {r['child_wall_s']} s, handover at "
              f"{r['handover_env_steps']} env steps; CPU {r['cpu_s_total']} s, "
              f"{r['cpu_s_outside_driver']} s outside the driver", flush=True)
        for role, cpu in r["cpu_s_by_process"].items():
            if cpu >= 0.05:
                print(f"  {cpu:7.2f} s  {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
