"""Rollout throughput on the experiment's env: env steps/s, one JSON line per measurement.

For every envs-per-worker count: the raw Gymnasium vector env that rlcore.rollout.make_vec_env
builds (sync, SAME_STEP autoreset), stepped with pre-drawn random actions, and a RolloutWorker
sampling fragments in this process as the inline pool does (policy inference included), as a
ratio to raw at the same count. Then the experiment's RayPool as configured, with fixed
weights and with new weights every call (as the training loop after every update), and how
long it takes to start. Run through benchmarks/cartpole.py (``--skip-ppo`` for this alone).
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
import torch
from bench_common import fmt, load_avg, make_line, shutdown_ray
from cpu_monitor import OtherCpu

from rlcore.actors.worker import RolloutWorker, make_vec_env, rollout_worker_spec
from rlcore.run.checks import check_spaces, learner_threads


def timed(step, seconds: float, warmup: int) -> dict:
    """Call ``step()`` (returns env steps done) ``warmup`` times, then for ``seconds``."""
    for _ in range(warmup):
        step()
    steps = calls = 0
    t0 = time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds:
        steps += step()
        calls += 1
    return {"steps_per_s": steps / dt, "calls": calls, "seconds": dt}


def raw_rate(cfg, num_envs: int, seconds: float) -> dict:
    envs = make_vec_env(cfg.env.id, num_envs, cfg.env.kwargs)
    envs.reset(seed=cfg.seed)
    space, rng = envs.single_action_space, np.random.default_rng(cfg.seed)
    if hasattr(space, "n"):
        actions = rng.integers(0, space.n, size=(4096, num_envs))
    else:  # Box: uniform in the bounds
        actions = rng.uniform(space.low, space.high, (4096, num_envs, *space.shape)).astype(space.dtype)
    calls = itertools.count()

    def step() -> int:
        envs.step(actions[next(calls) & 4095])
        return num_envs

    try:
        return timed(step, seconds, warmup=200)
    finally:
        envs.close()


def inline_rate(exp, spaces, num_envs: int, seconds: float) -> dict:
    # as the inline pool builds its worker
    kwargs = {**rollout_worker_spec(exp, spaces).kwargs(0, 0, False), "num_envs": num_envs}
    worker = RolloutWorker(**kwargs)
    try:
        return timed(lambda: worker.sample().num_steps, seconds, warmup=5)
    finally:
        worker.close()


def ray_rates(exp, spaces, seconds: float) -> dict:
    import ray

    from rlcore.actors.pool import rollout_pool
    from rlcore.learner.core import to_numpy_weights

    t = time.perf_counter()
    pool = rollout_pool(exp, spaces)
    out = {"pool_create_s": time.perf_counter() - t}
    try:
        out["node_addresses"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        weights = to_numpy_weights(exp.plugin.make_modules(exp.algo, spaces))
        t = time.perf_counter()
        pool.sample(weights, 0)
        out["first_sample_s"] = time.perf_counter() - t
        out["fixed_weights"] = timed(lambda: sum(f.num_steps for f in pool.sample(None, 0)),
                                     seconds, warmup=5)
        versions = itertools.count(1)
        out["new_weights"] = timed(
            lambda: sum(f.num_steps for f in pool.sample(weights, next(versions))),
            seconds, warmup=2)
    finally:
        pool.close()
        shutdown_ray()
    return out


def measured(fn, *args) -> dict:
    """``fn(*args)``, with the CPU other processes used meanwhile."""
    meter = OtherCpu({os.getpid()}).start(every=1.0)
    return {**fn(*args), "cpu_during": meter.result(), "load_avg_end": load_avg()}


def env_slug(env_id: str) -> str:
    """``CartPole-v1`` -> ``cartpole``, ``rlcore/HalfCheetah-v5`` -> ``halfcheetah``."""
    return env_id.split("/")[-1].rsplit("-v", 1)[0].lower()


def line(kind: str, n: int, actors: int, metrics: dict, raw: dict, secs: float, details: dict,
         slug: str = "cartpole"):
    """Rates (``*steps_per_s``) get a ratio (``*to_raw``) to raw with ``n`` envs."""
    for k in [k for k in metrics if k.endswith("steps_per_s")]:
        metrics[k.replace("steps_per_s", "to_raw")] = metrics[k] / raw[n] if n in raw else None
    config = {"kind": kind, "envs_per_worker": n, "num_actors": actors,
              "seconds_per_measurement": secs, "torch_threads": torch.get_num_threads(),
              "vec_env": "gymnasium sync, autoreset SAME_STEP (rlcore.rollout.make_vec_env)"}
    bench = f"rlcore_{slug}_rollout_{kind}_{f'{actors}x' if actors else ''}{n}envs"
    return make_line(bench, None, metrics, config, details)


def throughput_lines(exp, env_counts: list[int], secs: float):
    """Yields one line per measurement: raw and inline at every count, then the Ray pool."""
    cfg = exp.config
    spaces = check_spaces(exp)
    inline_cfg = cfg.model_copy(deep=True)
    inline_cfg.rollout.num_actors = 0
    torch.set_num_threads(learner_threads(inline_cfg))  # as a Trainer running inline sets it
    raw: dict[int, float] = {}
    slug = env_slug(cfg.env.id)
    for n in env_counts:
        d = measured(raw_rate, cfg, n, secs)
        raw[n] = d["steps_per_s"]
        yield line("raw", n, 0, {"steps_per_s": raw[n]}, raw, secs, d, slug)
        d = measured(inline_rate, exp, spaces, n, secs)
        yield line("inline", n, 0, {"steps_per_s": d["steps_per_s"]}, raw, secs, d, slug)
    actors = cfg.rollout.num_actors
    n = cfg.env.num_envs // max(1, actors)  # env.num_envs is the total, split over the actors
    if actors > 0:
        d = measured(ray_rates, exp, spaces, secs)
        rate = d["fixed_weights"]["steps_per_s"]
        yield line("ray", n, actors, {
            "steps_per_s": rate, "new_weights_steps_per_s": d["new_weights"]["steps_per_s"],
            "to_raw_total_envs": rate / raw[n * actors] if n * actors in raw else None,
            "pool_create_s": d["pool_create_s"], "first_sample_s": d["first_sample_s"]},
            raw, secs, d, slug)


def print_table(lines: list[dict], target: float = 0.5) -> None:
    c0 = lines[0]["config"]
    print(f"\nRollout throughput, env steps/s (policy inference included), "
          f"{c0['seconds_per_measurement']:g} s each, torch threads {c0['torch_threads']}")
    print(f"{'measurement':<44} {'steps/s':>10} {'vs raw':>8} {'other_cores':>12}")
    for ln in lines:
        c, m = ln["config"], ln["metrics"]
        other = ln["details"]["cpu_during"]["other_processes_cores"]
        name = {"raw": "raw vector env", "inline": "inline RolloutWorker",
                "ray": f"Ray pool, {c['num_actors']} actors x"}[c["kind"]]
        for prefix, note in [("", "")] + [("new_weights_", ", new weights")] * (c["kind"] == "ray"):
            ratio = m[prefix + "to_raw"]
            pct = f"{ratio * 100:.1f} %" if ratio is not None else "-"
            print(f"{name + ' ' + str(c['envs_per_worker']) + ' envs' + note:<44} "
                  f"{fmt(m[prefix + 'steps_per_s']):>10} {pct:>8} {fmt(other):>12}")
        if c["kind"] == "ray":
            print(f"Ray pool created in {m['pool_create_s']:.2f} s, first sample "
                  f"{m['first_sample_s']:.2f} s later")
    verdicts = [f"{ln['config']['envs_per_worker']} envs "
                f"{'meets' if ln['metrics']['to_raw'] >= target else 'misses'}"
                for ln in lines if ln["config"]["kind"] == "inline"]
    if verdicts:
        print(f"target inline >= {target:.0%} of raw: " + ", ".join(verdicts))
