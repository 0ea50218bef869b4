"""A rollout actor's start-up time and memory, with the plugin's torch modules
(``rollout.inference: torch``) and with its numpy policy (``numpy``, no torch in the actor).

Each repeat is a fresh Python process doing what a Ray rollout actor does: unpickle the keyword
arguments its slot sends (built here by ``rollout_worker_spec``, as the driver builds them),
build the worker (``WorkerHost(..., in_ray=True)``), load the learner's first weights and
collect one fragment. Reported per case and path (medians over the repeats):

- ``start_s``: from the process's start (interpreter start-up included, read from /proc) to
  the first fragment in hand; ``build_s``: to the worker built (imports, modules, envs);
  ``cpu_s``: the CPU time the process used until then (less sensitive to a loaded machine);
- ``rss_mib``: resident memory after the first fragment; ``torch``: whether torch was loaded.

Ray's own cost of starting a worker process is the same for both paths and is not included
(benchmarks/ray_startup.py measures it). The paths alternate within each repeat, so a change of
load on the machine touches both.

    python benchmarks/actor_startup.py --repeats 5 [--cases ppo_cartpole dqn_cartpole ppo_pong]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as bc  # noqa: E402

# (experiment file, the actors it is split over: the benchmark times actor 0's share)
CASES = {
    "ppo_cartpole": ("experiments/ppo_cartpole.yaml", 2),
    "dqn_cartpole": ("experiments/dqn_cartpole.yaml", 1),
    "ppo_pong": ("experiments/ppo_pong.yaml", 2),
}
PATHS = ("torch", "numpy")


def child(path: str) -> dict:
    """One actor's start-up, in this fresh process (``--child``)."""
    with open(path, "rb") as f:
        factory, kwargs, weights, request = pickle.load(f)
    from rlcore.actors.pool import WorkerHost

    host = WorkerHost(factory, kwargs, in_ray=True)
    build_s = bc.elapsed()
    host.worker.set_weights(weights, 0)
    frag = host.worker.work(request)
    start_s = bc.elapsed()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    status = Path("/proc/self/status").read_text()
    rss_kib = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS")))
    return {"start_s": start_s, "build_s": build_s, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mib": rss_kib / 1024,
            "steps": int(frag.num_steps), "torch": "torch" in sys.modules}


def prepare(case: str, inference: str, folder: Path) -> Path:
    """The pickled (factory, kwargs, weights, request) an actor of ``case`` receives."""
    import torch

    from rlcore.actors.worker import rollout_worker_spec
    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.run.checks import check_spaces

    file, actors = CASES[case]
    exp = load_experiment(bc.ROOT / file, [f"rollout.num_actors={actors}",
                                           f"rollout.inference={inference}"])
    spaces = check_spaces(exp)
    spec = rollout_worker_spec(exp, spaces)
    weights = Learner(exp, spaces, torch.device("cpu")).weights(for_actors=True)
    request = {"env_steps": 0, "num_actors": actors}
    out = folder / f"{case}-{inference}.pkl"
    out.write_bytes(pickle.dumps((spec.factory, spec.kwargs(0, 0, True), weights, request)))
    return out


def run_child(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True,
                          text=True, timeout=600, cwd=bc.ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"the actor process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", help="append the JSON lines to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)), flush=True)
        return
    host, git = bc.host_info(), bc.git_state()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"commit: {git['commit']}{' (library sources modified)' if git['library_sources_modified'] else ''}"
          f"; cpu: {host['cpu_model']} x {host['cpus']}; load average at start: {bc.load_avg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            try:
                inputs = {p: prepare(case, p, Path(tmp)) for p in PATHS}
            except Exception as exc:  # noqa: BLE001 - e.g. Atari not installed: say so, go on
                print(f"{case}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                continue
            runs: dict[str, list[dict]] = {p: [] for p in PATHS}
            for _ in range(args.repeats):
                for p in PATHS:
                    runs[p].append(run_child(inputs[p]))
            summary = {p: {k: statistics.median(r[k] for r in runs[p])
                           for k in ("start_s", "build_s", "cpu_s", "rss_mib")} for p in PATHS}
            for p in PATHS:
                s = summary[p]
                print(f"{case:13s} {p:5s}  start {s['start_s']:.2f} s (worker built at "
                      f"{s['build_s']:.2f} s; CPU {s['cpu_s']:.2f} s)  RSS {s['rss_mib']:.0f} MiB  "
                      f"torch loaded: "
                      f"{runs[p][0]['torch']}  ({runs[p][0]['steps']} env steps; medians of "
                      f"{args.repeats})")
            t, n = summary["torch"], summary["numpy"]
            print(f"{case:13s} numpy/torch: start x{n['start_s'] / t['start_s']:.2f}, "
                  f"RSS x{n['rss_mib'] / t['rss_mib']:.2f}")
            line = bc.make_line("actor_startup", None, {p: summary[p] for p in PATHS},
                                {"case": case, "repeats": args.repeats},
                                {p: runs[p] for p in PATHS})
            line["task"] = case
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")
    print(f"load average at end: {bc.load_avg()}; finished {time.strftime('%Y-%m-%d %H:%M:%S')}")


if __name__ == "__main__":
    main()
