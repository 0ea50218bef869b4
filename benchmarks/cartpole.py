"""rlcore PPO-CartPole benchmark: time to eval mean >= 475, and rollout throughput.

Two measurements, both printed as JSON lines in the format of the peer baselines
(bench/peers/_common.py: ``{"bench", "task", "lib", "seed", "metrics", ...}``) so that
bench/peers/summarize.py puts rlcore beside Stable-Baselines3, then as a table:

1. ``rlcore_ppo_cartpole`` (one line per seed): experiments/ppo_cartpole.yaml (local Ray,
   2 rollout actors x 4 envs, RL-Zoo PPO hyperparameters) trained through the public API
   (load_experiment + Trainer + RunLogger into a temporary run dir).  Every seed runs in a
   child process of its own (``--child-ppo``) so that "wall seconds from process start"
   counts interpreter start-up, imports, Ray start-up and actor creation, as the peers'
   scripts do.  The evaluation protocol is the experiment file's (10 deterministic episodes
   every 5000 env steps); the threshold is reached at the first evaluation whose mean is
   >= 475, and the clock is read when that evaluation has finished.  Metric names follow
   sb3_ppo_cartpole.py (wall_to_threshold_s, steps_to_threshold, ...), with these
   differences: setup_s is the time to a constructed Trainer, which (in current rlcore)
   has started Ray and the actors; learn_s is Trainer.run(); the run stops at the
   experiment's stop.eval_return (500), so steps_to_sustained_threshold is only given
   with --no-early-stop (whole 100k budget, as SB3 runs).  rlcore-only metrics say where
   the time goes: before_trainer_s (interpreter, imports, config), trainer_init_s,
   first_fragment_s (process start to the first fragment), sample_s and update_s (sums
   of the loop's own per-iteration timings).  Each line also records how much CPU other
   processes used during the run (details.cpu_during_run): on 2 cores a concurrent job
   distorts timings far more than the differences measured here.

2. ``rlcore_cartpole_rollout`` (one line): env steps per second, policy inference included,
   of a RolloutWorker sampling fragments in this process ("inline"), of a RayPool of 2
   actors (``pool.sample()`` repeatedly), and of the raw Gymnasium vector env that
   rlcore.rollout.make_vec_env builds (sync, SAME_STEP autoreset) stepped with
   pre-drawn random actions, at the same number of sub-environments; ratios to raw.

Usage:
    python benchmarks/cartpole.py                        # seed 0, then throughput
    python benchmarks/cartpole.py --seeds 0 1 2 --out results.jsonl
    # beside the peers (run_all.sh runs EXTRA_BENCH as: bash -c "$EXTRA_BENCH" _ RESULTS):
    EXTRA_BENCH='python /path/to/benchmarks/cartpole.py --seeds 0 1 2 --out "$1"' \\
        bash run_all.sh results.jsonl
"""

from __future__ import annotations

import os
import time

_IMPORT_WALL = time.time()


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
    """Seconds of wall-clock time since this process started."""
    return time.time() - PROCESS_START_WALL


# Ray reads these when it is imported; keep it on loopback and silent (rlcore.actors.init_ray
# sets them too, but only when it runs, which may be after something imported ray).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = ROOT / "experiments" / "ppo_cartpole.yaml"
TASK = "ppo_cartpole"
LIB = "rlcore"
PPO_BENCH = "rlcore_ppo_cartpole"
ROLLOUT_BENCH = "rlcore_cartpole_rollout"


# ---------------------------------------------------------------------------- output


def host_info() -> dict:
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    return {"cpus": len(os.sched_getaffinity(0)), "cpu_model": cpu_model, "mem_gib": mem_gib,
            "python": platform.python_version(), "platform": platform.platform()}


def load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _proc_table() -> dict[int, tuple[int, int, float]]:
    """pid -> (ppid, session id, CPU seconds used so far) for every process we can read."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(entry)] = (int(fields[1]), int(fields[3]),
                               (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            pass
    return out


def _cpu_total_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v) - v[3] - (v[4] if len(v) > 4 else 0)  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


class ForeignCpu:
    """How busy the machine was during a measurement, and how much of that was *other* work:
    CPU used by processes that are neither this process, its descendants, nor in a session we
    started (a child's Ray daemons and workers stay in its session). A thread samples the
    process table every ``every`` seconds, so that processes which end before the
    measurement does are counted too (all but their last ``every`` seconds). On 2 cores,
    other_processes_cores = 1.0 means one core was taken away."""

    def __init__(self, own_sessions: set[int] | None = None, every: float = 0.5):
        import threading

        self.own_sessions = set(own_sessions or ())
        self.every = every
        self.t0, self.busy0 = time.monotonic(), _cpu_total_s()
        self.base: dict[int, float] = {}  # foreign pid -> CPU when first seen (0 if new)
        self.last: dict[int, float] = {}  # foreign pid -> CPU when last seen
        self._first = True
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def add_session(self, sid: int) -> None:
        self.own_sessions.add(sid)

    def _own(self, table: dict) -> set[int]:
        me, own = os.getpid(), set()
        for pid in table:
            p, seen = pid, 0
            while p and seen < 64:
                if p == me or table.get(p, (0, -1, 0))[1] in self.own_sessions:
                    own.add(pid)
                    break
                p, seen = table.get(p, (0, 0, 0))[0], seen + 1
        return own

    def _sample(self) -> None:
        table = _proc_table()
        own = self._own(table)
        for pid, (_, _, cpu) in table.items():
            if pid in own:
                continue
            if pid not in self.base:
                self.base[pid] = cpu if self._first else 0.0
            self.last[pid] = cpu
        self._first = False

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def result(self, extra_sessions: set[int] = frozenset()) -> dict:
        self.own_sessions |= set(extra_sessions)
        self._stop.set()
        self._thread.join()
        self._sample()
        dt = time.monotonic() - self.t0
        busy = _cpu_total_s() - self.busy0
        foreign = sum(max(self.last[p] - self.base[p], 0.0) for p in self.last)
        return {"seconds": round(dt, 2), "machine_busy_cores": round(busy / dt, 2),
                "other_processes_cores": round(foreign / dt, 2)}


def wait_idle(max_s: float, below: float = 0.25, window: float = 3.0) -> dict | None:
    """Wait (up to ``max_s``) for a ``window`` during which the whole machine used fewer than
    ``below`` cores, so that a measurement does not start beside someone else's job."""
    if max_s <= 0:
        return None
    t0 = time.monotonic()
    while True:
        b0, w0 = _cpu_total_s(), time.monotonic()
        time.sleep(window)
        busy = (_cpu_total_s() - b0) / (time.monotonic() - w0)
        waited = time.monotonic() - t0
        if busy < below or waited >= max_s:
            if busy >= below:
                print(f"   machine still busy ({busy:.2f} cores) after {waited:.0f} s; "
                      "measuring anyway", file=sys.stderr, flush=True)
            return {"waited_s": round(waited, 1), "idle": busy < below,
                    "busy_cores_last_window": round(busy, 2)}


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
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "library_sources_modified": bool(dirty)}


def round_floats(obj, ndigits: int = 4):
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, dict):
        return {k: round_floats(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, ndigits) for v in obj]
    return obj


def make_line(bench: str, seed, metrics: dict, config: dict, details: dict) -> dict:
    return {
        "bench": bench, "task": TASK, "lib": LIB, "seed": seed,
        "metrics": round_floats(metrics), "config": config, "details": round_floats(details),
        "versions": lib_versions(), "git": git_state(), "host": host_info(),
        "process_wall_s": round(elapsed(), 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def emit(line: dict, out: str | None) -> None:
    sys.stdout.flush()
    text = json.dumps(line)
    print(text, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(text + "\n")


# ---------------------------------------------------------------------------- PPO (child)


def sustained_hit(evals: list[dict], threshold: float) -> dict | None:
    """First evaluation from which every later one is >= threshold (as the SB3 script)."""
    hit = None
    for e in evals:
        if e["mean"] >= threshold:
            hit = hit or e
        else:
            hit = None
    return hit


def child_ppo(args) -> int:
    """One training run of the experiment; prints its JSON line (no --out: the parent writes)."""
    from rlcore.config import load_experiment
    from rlcore.logging import RunLogger
    from rlcore.loops import Trainer

    class TimingLogger(RunLogger):
        """Sums the loop's own per-iteration timings and notes when the first fragment arrived."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.sample_s = self.update_s = 0.0
            self.iterations = 0
            self.first_fragment_s = None

        def scalars(self, prefix, values, step):
            if prefix == "rollout" or prefix == "actors":
                if self.first_fragment_s is None:
                    self.first_fragment_s = elapsed()
            elif prefix == "time":
                self.sample_s += values["sample_s"]
                self.update_s += values["update_s"]
                self.iterations += 1
            super().scalars(prefix, values, step)

    class TimedTrainer(Trainer):
        """Trainer whose evaluations are timed (to report the time without them)."""

        eval_seconds = 0.0

        def evaluate(self, logger, on_eval=None):
            t = time.perf_counter()

            def hook(rec):
                self.eval_seconds += time.perf_counter() - t
                if on_eval is not None:
                    on_eval(rec)

            return super().evaluate(logger, hook)

    overrides = [f"seed={args.seed}", *args.set]
    if args.no_early_stop:
        overrides.append("stop.eval_return=null")
    exp = load_experiment(args.experiment, overrides)
    cfg = exp.config
    threshold = args.threshold
    run_dir = Path(tempfile.mkdtemp(prefix=f"rlcore_bench_ppo_s{args.seed}_"))
    evals: list[dict] = []
    first_hit: dict | None = None


    def on_eval(rec: dict) -> None:
        nonlocal first_hit
        wall = elapsed()
        e = {"steps": rec["env_steps"], "wall_s": wall,
             "wall_excl_eval_s": wall - trainer.eval_seconds, "trainer_wall_s": rec["wall_s"],
             "mean": rec["mean"], "std": rec["std"]}
        evals.append(e)
        if first_hit is None and rec["mean"] >= threshold:
            first_hit = e

    logger = None
    before_trainer_s = elapsed()  # interpreter, imports, config
    try:
        t = time.perf_counter()
        trainer = TimedTrainer(exp, run_dir)  # recent rlcore builds the pool (starts Ray) here
        trainer_init_s = time.perf_counter() - t
        logger = TimingLogger(run_dir, 0, cfg.logging.progress_every_s, stream=sys.stderr)
        setup_s = elapsed()
        t0 = time.perf_counter()
        summary = trainer.run(logger, on_eval=on_eval)
    finally:
        if logger is not None:
            logger.close()
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()
    run_s = time.perf_counter() - t0
    steps = int(summary["env_steps"])
    train_s = run_s - trainer.eval_seconds
    loop_s = logger.sample_s + logger.update_s
    final = evals[-1]
    sustained = sustained_hit(evals, threshold) if summary["stop_reason"] == "num_env_steps" else None
    metrics = {
        "steps_to_threshold": first_hit["steps"] if first_hit else None,
        "wall_to_threshold_s": first_hit["wall_s"] if first_hit else None,
        "wall_to_threshold_excl_eval_s": first_hit["wall_excl_eval_s"] if first_hit else None,
        # Only meaningful for a run over the whole budget, as SB3's (see --no-early-stop).
        "steps_to_sustained_threshold": sustained["steps"] if sustained else None,
        "final_eval_mean": final["mean"],
        "final_eval_std": final["std"],
        "best_eval_mean": max(e["mean"] for e in evals),
        "total_steps": steps,
        "train_steps_per_s": steps / train_s,
        "steps_per_s_incl_eval": steps / run_s,
        "learn_s": run_s,
        "eval_s": trainer.eval_seconds,
        "setup_s": setup_s,
        # rlcore only: where the time goes.
        "before_trainer_s": before_trainer_s,
        "trainer_init_s": trainer_init_s,
        "first_fragment_s": logger.first_fragment_s,
        "sample_s": logger.sample_s,
        "update_s": logger.update_s,
        "loop_steps_per_s": steps / loop_s if loop_s > 0 else None,
        "trainer_wall_to_threshold_s": first_hit["trainer_wall_s"] if first_hit else None,
    }
    config = {
        "experiment": str(args.experiment), "overrides": overrides, "env_id": cfg.env.id,
        "num_actors": cfg.rollout.num_actors, "envs_per_actor": cfg.env.num_envs,
        "fragment_length": cfg.rollout.fragment_length, "batch_size": cfg.batch_size,
        "num_epochs": cfg.learner.num_epochs, "minibatch_size": cfg.learner.minibatch_size,
        "lr": cfg.learner.lr, "lr_schedule": cfg.learner.lr_schedule,
        "total_steps": cfg.stop.num_env_steps, "stop_eval_return": cfg.stop.eval_return,
        "eval_every": cfg.eval.every_env_steps, "eval_episodes": cfg.eval.episodes,
        "learner_torch_threads": _torch_threads(), "device": summary["device"],
    }
    details = {
        "threshold": threshold, "reached": first_hit is not None,
        "stop_reason": summary["stop_reason"], "updates": summary["updates"],
        "iterations": logger.iterations, "run_dir": str(run_dir),
        "evals": [[e["steps"], round(e["wall_s"], 2), round(e["mean"], 1)] for e in evals],
        "evals_format": "[steps, wall_s_from_process_start, eval_mean]",
        "load_avg_end": load_avg(),
    }
    emit(make_line(PPO_BENCH, args.seed, metrics, config, details), None)
    if not args.keep_run_dir:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------------------- PPO (parent)


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid:  # field 6: session id
                pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def _reap_session(sid: int) -> list[int]:
    """Kill, by PID, whatever is left of the session a child was started in (Ray daemons)."""
    for _ in range(10):
        pids = _session_pids(sid)
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
        pids = _session_pids(sid)
        if not pids:
            break
    return pids


def run_ppo_seed(args, seed: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-ppo", "--seed", str(seed),
           "--experiment", str(args.experiment), "--threshold", str(args.threshold)]
    for item in args.set:
        cmd += ["--set", item]
    if args.no_early_stop:
        cmd.append("--no-early-stop")
    if args.keep_run_dir:
        cmd.append("--keep-run-dir")
    print(f"== ppo seed {seed}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    waited = wait_idle(args.wait_idle)
    load_before = load_avg()
    meter = ForeignCpu()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                            start_new_session=True, cwd=str(ROOT))
    meter.add_session(proc.pid)
    try:
        stdout, _ = proc.communicate(timeout=args.timeout)
        error = None if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.terminate()  # the rest of its session is ended, by PID, in _reap_session
        try:
            stdout, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        error = f"timeout after {args.timeout:g}s"
    cpu = meter.result({proc.pid})
    leftover = _reap_session(proc.pid)
    if leftover:
        print(f"   leftover processes of seed {seed}: {leftover}", file=sys.stderr)
    lines = [ln for ln in stdout.splitlines() if ln.startswith('{"bench"')]
    if error is None and lines:
        line = json.loads(lines[-1])
        line["details"]["load_avg_before"] = load_before
        line["details"]["cpu_during_run"] = cpu
        line["details"]["wait_idle"] = waited
        return line
    return {"bench": PPO_BENCH, "task": TASK, "lib": LIB, "seed": seed,
            "error": error or "no result line", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# ---------------------------------------------------------------------------- throughput


def _timed(step, seconds: float, warmup: int) -> tuple[int, float, int]:
    """Call ``step()`` (returns env steps done) ``warmup`` times, then for ``seconds``."""
    for _ in range(warmup):
        step()
    steps = calls = 0
    t0 = time.perf_counter()
    while True:
        steps += step()
        calls += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return steps, dt, calls


def raw_env_rate(env_id: str, num_envs: int, kwargs: dict, seconds: float, seed: int) -> float:
    import numpy as np

    from rlcore.rollout import make_vec_env

    envs = make_vec_env(env_id, num_envs, kwargs)
    envs.reset(seed=seed)
    n_act = envs.single_action_space.n
    actions = np.random.default_rng(seed).integers(0, n_act, size=(4096, num_envs))
    i = 0

    def step() -> int:
        nonlocal i
        envs.step(actions[i & 4095])
        i += 1
        return num_envs

    try:
        steps, dt, _ = _timed(step, seconds, warmup=200)
    finally:
        envs.close()
    return steps / dt


def inline_rate(exp, spaces, seconds: float, threads: int | None) -> tuple[float, dict]:
    """A RolloutWorker in this process, as the inline pool builds it, sampling fragments."""
    import torch

    from rlcore.rollout import RolloutWorker

    cfg = exp.config
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        worker = RolloutWorker(exp.plugin, algo_cfg=exp.algo, spaces=spaces, env_id=cfg.env.id,
                               num_envs=cfg.env.num_envs, env_kwargs=cfg.env.kwargs,
                               fragment_length=cfg.rollout.fragment_length, seed=cfg.seed,
                               actor_id=0, clip_rewards=cfg.env.clip_rewards)
        try:
            steps, dt, calls = _timed(lambda: worker.sample().num_steps, seconds, warmup=5)
        finally:
            worker.close()
        return steps / dt, {"fragments": calls, "seconds": dt,
                            "torch_threads": torch.get_num_threads()}
    finally:
        torch.set_num_threads(saved)


def ray_rates(exp, spaces, seconds: float) -> dict:
    """RayPool (the experiment's actors): sample() with fixed weights, and with new weights
    every call (as the training loop does after every update)."""
    from rlcore.actors import RayPool
    from rlcore.learner import to_numpy_weights

    t = time.perf_counter()
    pool = RayPool(exp, spaces)
    pool_s = time.perf_counter() - t
    import ray

    out = {"pool_create_s": pool_s}
    try:
        out["node_addresses"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        weights = to_numpy_weights(exp.plugin.make_modules(exp.algo, spaces))
        t = time.perf_counter()
        pool.sample(weights, 0)
        out["first_sample_s"] = time.perf_counter() - t
        steps, dt, calls = _timed(lambda: sum(f.num_steps for f in pool.sample(None, 0)),
                                  seconds, warmup=5)
        out["fixed_weights"] = {"steps_per_s": steps / dt, "calls": calls, "seconds": dt}
        version = 0

        def with_weights() -> int:
            nonlocal version
            version += 1
            return sum(f.num_steps for f in pool.sample(weights, version))

        steps, dt, calls = _timed(with_weights, seconds, warmup=2)
        out["new_weights"] = {"steps_per_s": steps / dt, "calls": calls, "seconds": dt}
    finally:
        pool.close()
    return out


def inline_trainer_threads(exp) -> int | None:
    """The torch thread count a Trainer sets when rollouts run inline (None: torch default)."""
    try:
        from rlcore.loops import learner_threads
    except ImportError:  # older rlcore: the torch default
        return None
    cfg = exp.config.model_copy(deep=True)
    cfg.rollout.num_actors = 0
    return learner_threads(cfg)


def run_throughput(args) -> dict:
    import torch

    from rlcore.config import load_experiment
    from rlcore.loops import check_spaces

    exp = load_experiment(args.experiment, [f"seed={args.seeds[0]}", *args.set])
    cfg = exp.config
    spaces = check_spaces(exp)
    n, actors = cfg.env.num_envs, cfg.rollout.num_actors
    secs = args.throughput_seconds
    waited = wait_idle(args.wait_idle)
    load_before = load_avg()
    print(f"== rollout throughput: {secs:g} s per measurement, {n} envs per worker, "
          f"{actors} Ray actors", file=sys.stderr, flush=True)
    cpu: dict[str, dict] = {}

    def measured(name, fn, *a):
        meter = ForeignCpu(every=1.0)
        try:
            return fn(*a)
        finally:
            cpu[name] = meter.result()

    raw_n = measured("raw", raw_env_rate, cfg.env.id, n, cfg.env.kwargs, secs, cfg.seed)
    raw_total = (measured("raw_total_envs", raw_env_rate, cfg.env.id, n * actors, cfg.env.kwargs,
                          secs, cfg.seed) if actors > 1 else raw_n)
    inline_threads = inline_trainer_threads(exp) or torch.get_num_threads()
    inline, inline_d = measured("inline", inline_rate, exp, spaces, secs, inline_threads)
    inline_1, inline_1d = (measured("inline_1thread", inline_rate, exp, spaces, secs, 1)
                           if inline_threads != 1 else (inline, inline_d))
    ray_d = None
    if actors > 0:
        import ray

        try:
            ray_d = measured("ray", ray_rates, exp, spaces, secs)
        finally:
            ray.shutdown()
    metrics = {
        "raw_env_steps_per_s": raw_n,
        "raw_env_total_envs_steps_per_s": raw_total,
        "rollout_inline_steps_per_s": inline,
        "rollout_inline_1thread_steps_per_s": inline_1,
        "rollout_ray_steps_per_s": ray_d["fixed_weights"]["steps_per_s"] if ray_d else None,
        "rollout_ray_new_weights_steps_per_s": ray_d["new_weights"]["steps_per_s"] if ray_d else None,
        "inline_to_raw": inline / raw_n,
        "inline_1thread_to_raw": inline_1 / raw_n,
        "ray_to_raw": ray_d["fixed_weights"]["steps_per_s"] / raw_n if ray_d else None,
        "ray_to_raw_total_envs": ray_d["fixed_weights"]["steps_per_s"] / raw_total if ray_d else None,
        "ray_pool_create_s": ray_d["pool_create_s"] if ray_d else None,
        "ray_first_sample_s": ray_d["first_sample_s"] if ray_d else None,
    }
    config = {
        "experiment": str(args.experiment), "env_id": cfg.env.id, "envs_per_worker": n,
        "num_actors": actors, "fragment_length": cfg.rollout.fragment_length,
        "seconds_per_measurement": secs, "inline_torch_threads": inline_threads,
        "torch_default_threads": torch.get_num_threads(),
        "vec_env": "gymnasium sync, autoreset SAME_STEP (rlcore.rollout.make_vec_env)",
        "raw_actions": "pre-drawn uniform random",
    }
    details = {
        "raw": f"{n} envs; raw_env_total_envs: {n * max(1, actors)} envs in one process",
        "inline": inline_d, "inline_1thread": inline_1d, "ray": ray_d,
        "ratios": "inline and ray over raw at the per-worker env count; ray also over raw with "
                  "all actors' envs in one process",
        "load_avg_before": load_before, "load_avg_end": load_avg(),
        "cpu_during": cpu, "wait_idle": waited,
    }
    return make_line(ROLLOUT_BENCH, None, metrics, config, details)


# ---------------------------------------------------------------------------- table


def _f(x, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}{unit}"
    if abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:.2f}{unit}"


def print_table(ppo_lines: list[dict], rollout: dict | None) -> None:
    print()
    ok = [ln for ln in ppo_lines if "error" not in ln]
    if ppo_lines:
        print("PPO CartPole-v1 (experiments/ppo_cartpole.yaml), threshold: first eval mean >= 475")
        print(f"{'seed':>6} {'wall_to_475_s':>14} {'steps_to_475':>13} {'excl_eval_s':>12} "
              f"{'first_frag_s':>13} {'train_sps':>10} {'stop':>14} {'other_cores':>12}")
        for ln in ppo_lines:
            if "error" in ln:
                print(f"{ln['seed']:>6}  FAILED: {ln['error']}")
                continue
            m = ln["metrics"]
            print(f"{ln['seed']:>6} {_f(m['wall_to_threshold_s']):>14} "
                  f"{_f(m['steps_to_threshold']):>13} {_f(m['wall_to_threshold_excl_eval_s']):>12} "
                  f"{_f(m['first_fragment_s']):>13} {_f(m['train_steps_per_s']):>10} "
                  f"{ln['details']['stop_reason']:>14} "
                  f"{_f(ln['details'].get('cpu_during_run', {}).get('other_processes_cores')):>12}")
        walls = [ln["metrics"]["wall_to_threshold_s"] for ln in ok
                 if ln["metrics"]["wall_to_threshold_s"] is not None]
        steps = [ln["metrics"]["steps_to_threshold"] for ln in ok
                 if ln["metrics"]["steps_to_threshold"] is not None]
        if walls:
            print(f"{'median':>6} {_f(statistics.median(walls)):>14} "
                  f"{_f(statistics.median(steps)):>13}   "
                  f"({len(walls)}/{len(ppo_lines)} seeds reached 475)")
        else:
            print(f"  no seed reached 475 ({len(ok)}/{len(ppo_lines)} runs finished)")
    if rollout is not None:
        m, c = rollout["metrics"], rollout["config"]
        n, a = c["envs_per_worker"], c["num_actors"]
        print()
        print(f"Rollout throughput, CartPole-v1, env steps/s (policy inference included), "
              f"{c['seconds_per_measurement']:g} s each")
        rows = [
            (f"raw gymnasium vector env, {n} envs, random actions", m["raw_env_steps_per_s"], 1.0),
            (f"raw gymnasium vector env, {n * max(1, a)} envs", m["raw_env_total_envs_steps_per_s"],
             m["raw_env_total_envs_steps_per_s"] / m["raw_env_steps_per_s"]),
            (f"inline RolloutWorker, {n} envs, torch threads {c['inline_torch_threads']} (as Trainer)",
             m["rollout_inline_steps_per_s"], m["inline_to_raw"]),
            (f"inline RolloutWorker, {n} envs, torch threads 1", m["rollout_inline_1thread_steps_per_s"],
             m["inline_1thread_to_raw"]),
            (f"Ray pool, {a} actors x {n} envs, fixed weights", m["rollout_ray_steps_per_s"],
             m["ray_to_raw"]),
            (f"Ray pool, {a} actors x {n} envs, new weights every call",
             m["rollout_ray_new_weights_steps_per_s"],
             (m["rollout_ray_new_weights_steps_per_s"] / m["raw_env_steps_per_s"]
              if m["rollout_ray_new_weights_steps_per_s"] else None)),
        ]
        print(f"{'':<62} {'steps/s':>10} {'vs raw ' + str(n) + ' envs':>14}")
        for name, v, r in rows:
            print(f"{name:<62} {_f(v):>10} {(_f(r * 100) + ' %') if r is not None else '-':>14}")
        verdict = "meets" if m["inline_to_raw"] >= 0.5 else "misses"
        print(f"target inline >= 50 % of raw: {verdict} ({m['inline_to_raw'] * 100:.1f} %)")
        others = {k: v["other_processes_cores"] for k, v in rollout["details"]["cpu_during"].items()}
        print(f"other processes' CPU (cores) during each: {others}")
        if m["ray_pool_create_s"] is not None:
            print(f"Ray pool: created in {m['ray_pool_create_s']:.2f} s, first sample after "
                  f"{m['ray_first_sample_s']:.2f} s more")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="PPO seeds (one child each)")
    p.add_argument("--out", help="append the JSON lines to this file (run_all.sh: --out \"$1\")")
    p.add_argument("--experiment", type=Path, default=DEFAULT_EXPERIMENT)
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="experiment override for every run (e.g. learner.torch_threads=1)")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--no-early-stop", action="store_true",
                   help="train the whole stop.num_env_steps budget (as SB3 does) instead of "
                        "stopping at the experiment's stop.eval_return")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per PPO child")
    p.add_argument("--throughput-seconds", type=float, default=5.0)
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for the machine to be "
                        "idle (other jobs distort timings on 2 cores); 0 = do not wait")
    p.add_argument("--skip-ppo", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the temporary run dirs")
    p.add_argument("--child-ppo", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.experiment = args.experiment.resolve()

    if args.child_ppo:
        return child_ppo(args)

    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ppo_lines: list[dict] = []
    if not args.skip_ppo:
        for seed in args.seeds:
            line = run_ppo_seed(args, seed)
            emit(line, args.out)
            ppo_lines.append(line)
    rollout = None
    if not args.skip_throughput:
        rollout = run_throughput(args)
        emit(rollout, args.out)
    print_table(ppo_lines, rollout)
    return 1 if any("error" in ln for ln in ppo_lines) else 0


if __name__ == "__main__":
    sys.exit(main())
