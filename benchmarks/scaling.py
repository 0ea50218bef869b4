"""Rollout scaling on a simulated multi-node cluster, and recovery after an actor is killed.

A cluster of ``--nodes`` Ray nodes on this machine (rlcore.testing.cluster: separate raylets on
127.0.0.1, one CPU each, token auth) is joined with ``ray.address`` as a real cluster would be.
For 1, 2, 3 rollout actors (SPREAD: one per node) the RayPool samples fragments with fixed
weights, interleaving the counts ``--repeats`` times; the printed ratio is the median
throughput / (actors x one actor's median throughput), 1.0 = linear.
Then, with all actors running, one actor is SIGKILLed and the round that meets the dead actor
is timed: recovery = that round's time minus a normal round's (the replacement's start-up, its
env creation and its fragment). On a machine with fewer cores than actors the ratio measures
the machine, not rlcore: read it beside ``cores`` in the output.

    .venv/bin/python benchmarks/scaling.py [--seconds 10] [--repeats 3] [--nodes 3]

``--netns`` runs the same on real network addresses instead (rlcore.testing.netns, root and
iproute2): a head with no CPUs and ``--nodes`` rollout nodes with one CPU each, each in its own
network namespace, and this script as the driver in a namespace of its own; actors are killed
with ``ray.kill`` there (their PIDs are in their node's PID namespace). ``--env-step-s S`` puts
a sleep of S seconds in every env step (SlowCartPole): a simulator whose step takes that long
whatever the cores, so the count of actors, not of cores, bounds the throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rate(pool, weights, seconds: float) -> tuple[float, list[float]]:
    pool.sample(weights, 0)  # warm-up: actors built, envs made, weights delivered
    steps, rounds = 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        t = time.perf_counter()
        steps += sum(f.num_steps for f in pool.sample(None, 0))
        rounds.append(time.perf_counter() - t)
    return steps / (time.perf_counter() - t0), rounds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default=str(ROOT / "experiments" / "ppo_cartpole.yaml"))
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per actor count")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--fragment-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="measurements per actor count")
    p.add_argument("--kills", type=int, default=3, help="actor kills to time")
    p.add_argument("--netns", action="store_true", help="nodes on their own network addresses")
    p.add_argument("--env-step-s", type=float, default=0.0, help="a sleep in every env step")
    p.add_argument("--address", help=argparse.SUPPRESS)  # the driver's side of --netns
    args = p.parse_args()

    if args.address:
        measure(args, args.address, kill=lambda ray, actor: ray.kill(actor, no_restart=True))
    elif args.netns:
        on_namespace_cluster(args)
    else:
        from rlcore.testing.cluster import simulated_cluster

        with simulated_cluster(num_nodes=args.nodes, cpus_per_node=1) as cluster:
            measure(args, cluster.address, kill=lambda ray, actor: os.kill(
                ray.get(actor.pid.remote()), signal.SIGKILL))


def on_namespace_cluster(args) -> None:
    """This script again, as the driver of a namespace cluster; its JSON lines printed."""
    import sys

    from rlcore.testing import netns

    why = netns.unavailable()
    if why:
        raise SystemExit(f"no network-namespace cluster here: {why}")
    specs = [{"num_cpus": 0}] + [{"num_cpus": 1}] * args.nodes
    with netns.namespace_cluster(specs) as cluster:
        argv = [sys.executable, str(Path(__file__).resolve()), "--address", cluster.address]
        for key in ("experiment", "nodes", "seconds", "num_envs", "fragment_length", "repeats",
                    "kills", "env_step_s"):
            argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        code, out = cluster.run_driver(argv, timeout=3600, cwd=str(ROOT))
    lines = [line for line in out.splitlines() if line.startswith("{")]
    for line in lines:
        print(line[:-1] + ', "cluster": "netns"}', flush=True)
    if code != 0:
        raise SystemExit(f"the driver failed ({code}):\n{out[-3000:]}")


def measure(args, address: str, kill) -> None:
    import ray
    import torch

    from rlcore.actors.pool import rollout_pool
    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.run.checks import check_spaces

    torch.set_num_threads(1)

    slow = ([] if not args.env_step_s else [
        "env.id=rlcore.testing.fake_env:rlcore-test/SlowCartPole-v1",
        f"env.kwargs={{step_s: {args.env_step_s}}}"])

    def experiment(n):
        return load_experiment(args.experiment, [
            f"ray.address={address}", f"rollout.num_actors={n}",
            f"env.num_envs={args.num_envs * n}",  # num_envs per actor, as before
            f"rollout.fragment_length={args.fragment_length}",
            "learner.minibatch_size=0", *slow])

    exp1 = experiment(1)
    spaces = check_spaces(exp1)
    weights = Learner(exp1, spaces, torch.device("cpu")).weights()
    samples: dict[int, list] = {n: [] for n in range(1, args.nodes + 1)}
    for rep in range(args.repeats):  # interleaved, so load from other jobs hits every count
        for n in samples:
            pool = rollout_pool(experiment(n), spaces)
            try:
                sps, rounds = rate(pool, weights, args.seconds)
                nodes = len(set(pool.nodes))
            finally:
                pool.close()
            samples[n].append((sps, statistics.median(rounds), nodes))
            print(json.dumps({"bench": "scaling_sample", "repeat": rep, "actors": n,
                              "nodes_used": nodes, "env_steps_per_s": round(sps)}), flush=True)
    base = statistics.median(s for s, _, _ in samples[1])
    for n, runs in samples.items():
        sps = statistics.median(s for s, _, _ in runs)
        print(json.dumps({"bench": "scaling", "actors": n,
                          "nodes_used": min(nodes for _, _, nodes in runs),
                          "env_steps_per_s_median": round(sps),
                          "env_steps_per_s_all": [round(s) for s, _, _ in runs],
                          "ratio_to_linear": round(sps / (n * base), 3),
                          "round_s_median": round(statistics.median(r for _, r, _ in runs), 4)}),
              flush=True)

    pool = rollout_pool(experiment(args.nodes), spaces)
    recoveries = []
    try:
        _, rounds = rate(pool, weights, min(args.seconds, 5.0))
        normal = statistics.median(rounds)
        for k in range(args.kills):
            victim = k % args.nodes
            kill(ray, pool.actors[victim])
            t = time.perf_counter()
            frags = pool.sample(None, 0)
            took = time.perf_counter() - t
            assert len(frags) == args.nodes
            recoveries.append(took - normal)
            pool.sample(None, 0)  # back to normal before the next kill
    finally:
        pool.close()
    print(json.dumps({"bench": "recovery", "actors": args.nodes, "kills": args.kills,
                      "restarts": pool.health()["restarts"],
                      "normal_round_s": round(normal, 3),
                      "recovery_s": [round(r, 2) for r in recoveries],
                      "recovery_s_median": round(statistics.median(recoveries), 2)}))
    print(json.dumps({"bench": "machine", "cores": os.cpu_count(),
                      "load_avg_1m": os.getloadavg()[0], "nodes": args.nodes,
                      "num_envs": args.num_envs, "fragment_length": args.fragment_length,
                      "env_step_s": args.env_step_s}))


if __name__ == "__main__":
    main()
