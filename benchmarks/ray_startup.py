"""What a local Ray costs before the first rollout: ``ray.init`` (wall time, and CPU time of
every process it starts), and the time until two actors answer, bare or importing torch.

Each repeat runs in a fresh child process, so the import of ray is counted as a user pays it.
Ray is started the way ``rlcore run`` starts it (``rlcore.actors.ray_setup.init_ray``: loopback only,
private HOME, no dashboard UI). Actors are timed in three kinds, one after the other in the same
Ray, two actors each, from ``.remote()`` until both have answered a call:

- ``prestarted``: no imports; they take the worker processes Ray starts at ``ray.init``;
- ``new_bare``: no imports, two more: new worker processes;
- ``new_torch``: two more new workers whose constructor imports torch (what a rollout actor
  holding a torch policy pays).

    python benchmarks/ray_startup.py --repeats 5 --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as bc  # noqa: E402  (sets Ray's loopback variables before ray is imported)
from cpu_monitor import own_pids, proc_table  # noqa: E402

KINDS = ("prestarted", "new_bare", "new_torch")


def _name(pid: int, comm: str) -> str:
    """The process name, or for a Python daemon its script (monitor.py, dashboard.py, ...)."""
    if not comm.startswith("python"):
        return comm
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return comm
    script = next((a for a in args[1:] if a.endswith(".py")), None)
    return Path(script).name if script else comm


def tree_cpu() -> tuple[float, dict[str, float]]:
    """CPU seconds used so far by this process and everything it started (Ray's daemons and
    workers), in total and by process name."""
    table = proc_table()
    me = os.getpid()
    by_name: dict[str, float] = {}
    for pid in own_pids(table, {me}, set()):
        name = "driver" if pid == me else _name(pid, table[pid].name)
        by_name[name] = by_name.get(name, 0.0) + table[pid].cpu_s
    return sum(by_name.values()), by_name


def child() -> dict:
    t0 = time.perf_counter()
    import ray

    from rlcore.actors.ray_setup import init_ray
    from rlcore.config import RayConfig

    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    init_ray(RayConfig(), num_cpus_needed=2)
    t_init = time.perf_counter() - t1
    ready = bc.elapsed()
    cpu_init, by_name = tree_cpu()

    @ray.remote(num_cpus=0)
    class Probe:
        def __init__(self, import_torch: bool):
            if import_torch:
                import torch  # noqa: F401

        def ping(self) -> int:
            return os.getpid()

    actors = {}
    for kind in KINDS:
        t = time.perf_counter()
        handles = [Probe.remote(kind == "new_torch") for _ in range(2)]
        ray.get([h.ping.remote() for h in handles], timeout=120)
        actors[kind] = time.perf_counter() - t
    bc.shutdown_ray()
    return {"import_ray_s": t_import, "ray_init_s": t_init, "ray_init_cpu_s": cpu_init,
            "ray_init_cpu_by_process": dict(sorted(by_name.items(), key=lambda kv: -kv[1])),
            **{f"actors_{k}_s": v for k, v in actors.items()},
            "process_start_to_ray_ready_s": ready}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="append the JSON lines to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child()), flush=True)
        return
    rows = []
    for i in range(args.repeats):
        proc = subprocess.run([sys.executable, __file__, "--child"], capture_output=True,
                              text=True, timeout=300, cwd=bc.ROOT)
        if proc.returncode != 0:
            sys.exit(f"repeat {i} failed:\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        bc.emit(bc.make_line("rlcore_ray_startup", i, {k: v for k, v in row.items()
                                                       if isinstance(v, float)},
                             {"repeats": args.repeats},
                             {"ray_init_cpu_by_process": row["ray_init_cpu_by_process"],
                              "load_avg_end": bc.load_avg()}), args.out)
    print(f"\nlocal Ray start-up, {args.repeats} fresh processes (median, min-max):")
    for key in ("import_ray_s", "ray_init_s", "ray_init_cpu_s", "process_start_to_ray_ready_s",
                *(f"actors_{k}_s" for k in KINDS)):
        vals = [r[key] for r in rows]
        print(f"  {key:30s} {statistics.median(vals):6.2f}  ({min(vals):.2f}-{max(vals):.2f})")
    names = sorted({n for r in rows for n in r["ray_init_cpu_by_process"]})
    print("  CPU s during ray.init by process (median):")
    for n in sorted(names, key=lambda n: -statistics.median(
            [r["ray_init_cpu_by_process"].get(n, 0.0) for r in rows])):
        print(f"    {n:22s} {statistics.median([r['ray_init_cpu_by_process'].get(n, 0.0) for r in rows]):.2f}")


if __name__ == "__main__":
    main()
