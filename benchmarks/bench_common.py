"""What every benchmark line carries: the process clock, host, versions, commit; JSON output.

Lines follow the peers' format (bench/peers/_common.py: ``{"bench", "task", "lib", "seed",
"metrics", "config", "details", ...}``), so that bench/peers/summarize.py tabulates rlcore
beside the other libraries.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

_IMPORT_WALL = time.time()
ROOT = Path(__file__).resolve().parent.parent
TASK, LIB = "ppo_cartpole", "rlcore"

# Ray reads these when it is imported: keep it on loopback and silent.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _process_start_wall() -> float:
    """Wall-clock time at which this process started (from /proc), else import time."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        # Field 22 (starttime, clock ticks after boot); the command name may hold spaces.
        fields = stat[stat.rindex(")") + 2:].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
        start = time.time() - age
        if 0.0 <= _IMPORT_WALL - start < 60.0:
            return start
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return _IMPORT_WALL


PROCESS_START_WALL = _process_start_wall()


def elapsed() -> float:
    """Seconds of wall-clock time since this process started (interpreter start-up included)."""
    return time.time() - PROCESS_START_WALL


def host_info() -> dict:
    def first(path: str, key: str) -> str | None:
        try:
            with open(path) as f:
                return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith(key)), None)
        except OSError:
            return None

    mem = first("/proc/meminfo", "MemTotal")
    return {"cpus": len(os.sched_getaffinity(0)), "cpu_model": first("/proc/cpuinfo", "model name"),
            "mem_gib": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
            "python": platform.python_version(), "platform": platform.platform()}


def lib_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("rlcore", "torch", "gymnasium", "ray", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_state() -> dict:
    """The commit measured, and whether the library's sources differed from it."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "rlcore", "plugins", "envs", "experiments")
    # a copy of the tree on another machine names its commit in BENCH_COMMIT (its .git, if it
    # has one, may not be the tree's)
    return {"commit": os.environ.get("BENCH_COMMIT") or git("rev-parse", "--short", "HEAD") or None,
            "library_sources_modified": bool(dirty)}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def round_floats(obj, ndigits: int = 4):
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, dict):
        return {k: round_floats(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, ndigits) for v in obj]
    return obj


def make_line(bench: str, seed, metrics: dict, config: dict, details: dict) -> dict:
    return {"bench": bench, "task": TASK, "lib": LIB, "seed": seed,
            "metrics": round_floats(metrics), "config": config, "details": round_floats(details),
            "versions": lib_versions(), "git": git_state(), "host": host_info(),
            "process_wall_s": round(elapsed(), 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def emit(line: dict, out: str | None) -> None:
    """Print the line on stdout (where run_all.sh and the parent look for it), and append it
    to ``out`` if given."""
    text = json.dumps(line)
    print(text, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(text + "\n")


def shutdown_ray() -> None:
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def sustained_hit(evals: list[dict], threshold: float) -> dict | None:
    """The first evaluation from which every later one (the final included) has a mean >=
    threshold, or None when the last one is below it (as the SB3 peers' helper)."""
    hit = None
    for e in evals:
        hit = (hit or e) if e["mean"] >= threshold else None
    return hit


def train_full_budget(experiment, run_dir, seed: int, steps: int, eval_every: int,
                      episodes: int, extra=()) -> tuple[dict, object, float]:
    """Train an experiment file to ``steps`` env steps with early stopping off, evaluating
    every ``eval_every`` steps over ``episodes`` episodes, no checkpoints:
    (summary, the run, wall seconds including evaluations)."""
    from rlcore.run.lifecycle import train_experiment

    t = time.perf_counter()
    summary, run = train_experiment(experiment, run_dir, [
        f"seed={seed}", f"stop.num_env_steps={steps}", "stop.eval_return=null",
        f"eval.every_env_steps={eval_every}", f"eval.episodes={episodes}",
        "checkpoint.every_env_steps=0", *extra])
    return summary, run, time.perf_counter() - t


def threshold_metrics(evals: list[dict], threshold: float) -> dict:
    """First touch, holds-from (``sustained_hit``) and the final evaluation of a run."""
    first = next((e for e in evals if e["mean"] >= threshold), None)
    hold = sustained_hit(evals, threshold)
    return {"steps_to_threshold": first and first["env_steps"],
            "steps_to_sustained_threshold": hold and hold["env_steps"],
            "final_eval_mean": evals[-1]["mean"], "final_eval_std": evals[-1]["std"]}


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def fill_random_frames(buf, steps: int, rng) -> None:
    """``steps`` transitions of one stream of random 84x84 frames in 4-frame stacks (the first
    stack padded with its first frame, as the Atari env pads), random actions of 6 and rewards:
    replay to sample learner updates from without an env (the Nature-CNN learner benchmarks)."""
    import numpy as np

    stack = np.repeat(rng.integers(0, 256, (1, 1, 84, 84), dtype=np.uint8), 4, axis=1)
    done = np.zeros(1, bool)
    for _ in range(steps):
        frame = rng.integers(0, 256, (1, 1, 84, 84), dtype=np.uint8)
        nxt = np.concatenate([stack[:, 1:], frame], 1)
        action, reward = rng.integers(0, 6, 1), rng.random(1).astype(np.float32)
        buf.add([0], stack, action, reward, done, done, nxt)
        stack = nxt


def with_optimizers(fwd_bwd, params, lr: float):
    """The floors of ``learner_floor.py`` and ``dqn_learner_floor.py``: ``fwd_bwd(i)`` alone,
    then followed by a foreach Adam step, then by a fused Adam step (one kernel; rounds
    differently) on ``params``."""
    import torch

    opt = torch.optim.Adam(params, lr=lr, foreach=True)
    fused = torch.optim.Adam(params, lr=lr, fused=True)

    def with_adam(i):
        fwd_bwd(i)
        opt.step()

    def with_fused_adam(i):
        fwd_bwd(i)
        fused.step()

    return fwd_bwd, with_adam, with_fused_adam


def per_update(fn, n: int) -> float:
    """Seconds per call of ``fn(i)`` over ``n`` calls."""
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n


def sb3_timing(python: str, code: str, arg: str) -> dict:
    """Run an SB3 timing snippet (``code``, one argument) in the SB3 venv's ``python`` and return
    the JSON object on its last stdout line. The working directory is the temp folder: MuJoCo
    writes its warnings to MUJOCO_LOG.TXT wherever it runs."""
    import tempfile

    out = subprocess.run([python, "-c", code, arg], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of_rounds(rows: dict) -> dict:
    """Each row's best round: the largest rate (keys ending ``_sps``), else the smallest time."""
    return {k: (max(v) if k.endswith("_sps") else min(v)) for k, v in rows.items() if v}
