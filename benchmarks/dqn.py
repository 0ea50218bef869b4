"""Off-policy benchmarks: DQN CartPole time to eval >= 475 (beside SB3 in the same run),
replay memory for 1M Atari transitions, Atari rollout throughput against the raw ALE step rate,
and learner updates/s for the Nature CNN.

    .venv/bin/python benchmarks/dqn.py                       # everything (about 10 min on 2 cores)
    .venv/bin/python benchmarks/dqn.py --only cartpole --seeds 0 1 2 --sb3 /tmp/peers/sb3/bin/python
    .venv/bin/python benchmarks/dqn.py --only memory atari learner

Prints one JSON line per measurement (peers' format, see bench_common.py) and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bench_common  # noqa: F401  (first import: starts the process clock)

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "bench" / "peers"


def emit(task: str, seed, metrics: dict, config: dict, out) -> dict:
    line = {"bench": f"rlcore_{task}", "task": task, "lib": "rlcore", "seed": seed,
            "metrics": metrics, "config": config, "host": bench_common.host_info(),
            "versions": bench_common.lib_versions(), "git": bench_common.git_state()}
    print(json.dumps(line), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
    return line


# ---------------------------------------------------------------- DQN CartPole


def child_cartpole(seed: int) -> None:
    """In a fresh process: train experiments/dqn_cartpole.yaml; seconds from process start."""
    import tempfile

    from rlcore.run.lifecycle import train_experiment

    with tempfile.TemporaryDirectory() as d:
        s, _ = train_experiment(ROOT / "experiments" / "dqn_cartpole.yaml", d,
                                [f"seed={seed}", "learner.torch_threads=1"])
    print(json.dumps({"wall_s": bench_common.elapsed(), "env_steps": s["env_steps"],
                      "eval": s["eval_return_mean"], "reached": s["stop_reason"] == "eval_return"}))


def run_cartpole(args) -> None:
    for seed in args.seeds:
        runs = [("rlcore", [sys.executable, __file__, "--child-cartpole", str(seed)])]
        if args.sb3:
            runs.append(("stable-baselines3", [args.sb3, str(PEERS / "sb3_dqn_cartpole.py"),
                                               "--seed", str(seed), "--total-steps", "100000",
                                               "--torch-threads", str(args.sb3_threads)]))
        for lib, cmd in runs:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                                 cwd=PEERS if lib != "rlcore" else ROOT)
            last = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            if res.returncode or not last:
                print(f"{lib} seed {seed} failed: {res.stderr[-2000:]}", file=sys.stderr)
                continue
            data = json.loads(last[-1])
            if lib == "rlcore":
                emit("dqn_cartpole", seed, data, {"experiment": "experiments/dqn_cartpole.yaml"},
                     args.out)
            else:
                print(json.dumps(data), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(data) + "\n")


# ---------------------------------------------------------------- replay memory


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_memory(args) -> None:
    import numpy as np

    from rlcore.buffers import ReplayBuffer

    big = ReplayBuffer(1_000_000, (4, 84, 84), np.uint8, (), np.int64, 8, frame_stack=4)
    naive = 1_000_000 * 2 * 4 * 84 * 84  # obs and next_obs, 4 frames each
    # fill a smaller one with real frame stacks and measure what the process grew by
    n = args.fill
    before = rss_bytes()
    buf = ReplayBuffer(n, (4, 84, 84), np.uint8, (), np.int64, 8, frame_stack=4)
    rng = np.random.default_rng(0)
    stack = np.repeat(rng.integers(0, 256, (8, 1, 84, 84), dtype=np.uint8), 4, axis=1)
    for t in range(n // 8 + 8):
        nxt = np.concatenate([stack[:, 1:], rng.integers(0, 256, (8, 1, 84, 84), dtype=np.uint8)], 1)
        done = np.zeros(8, bool)
        buf.add(np.arange(8), stack, np.zeros(8, np.int64), np.zeros(8, np.float32), done, done, nxt)
        stack = nxt
    grown = rss_bytes() - before
    metrics = {"capacity_1m_nbytes": big.nbytes(), "capacity_1m_gb": round(big.nbytes() / 1e9, 3),
               "naive_1m_gb": round(naive / 1e9, 1), "filled_transitions": len(buf),
               "filled_rss_growth_bytes": grown,
               "rss_bytes_per_transition": round(grown / len(buf), 1),
               "rss_scaled_to_1m_gb": round(grown / len(buf) * 1e6 / 1e9, 3)}
    emit("replay_memory_atari", None, metrics, {"obs": [4, 84, 84], "streams": 8}, args.out)


# ---------------------------------------------------------------- Atari throughput


class RawLoop:
    """The preprocessed env stepped with uniformly random actions: no policy, no replay."""

    def __init__(self, env_id: str, num_envs: int, kwargs: dict | None = None):
        import numpy as np

        from rlcore.actors.worker import make_vec_env

        self.envs = make_vec_env(env_id, num_envs, kwargs or {})
        self.rng, self.num_envs = np.random.default_rng(0), num_envs
        self.envs.reset(seed=0)
        self.n_act = self.envs.single_action_space.n

    def run(self, seconds: float) -> float:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            self.envs.step(self.rng.integers(0, self.n_act, self.num_envs))
            steps += self.num_envs
        return steps / (time.perf_counter() - t0)

    def close(self) -> None:
        self.envs.close()


class ActorLoop:
    """The transition actor's loop as the replay driver runs it inline: RolloutWorker with the
    epsilon-greedy Nature-CNN DQN policy, fragments turned into transitions and written into
    (frame-deduplicating) replay. ``new_weights``: as a DQN Pong run drives it, the file's
    fragments (4 steps) and a new weights version before each (the file publishes after every
    update); otherwise fragments of 32 steps with the initial weights."""

    def __init__(self, env_id: str, num_envs: int, epsilon: float, inference: str = "numpy",
                 new_weights: bool = False):
        import numpy as np
        import torch

        from rlcore.config import load_experiment
        from rlcore.learner.core import Learner
        from rlcore.run.checks import check_spaces
        from rlcore.actors.pool import rollout_pool
        from rlcore.regimes.transition import make_replay

        exp = load_experiment(ROOT / "experiments" / "dqn_pong.yaml", [
            f"env.id={env_id}", f"env.num_envs={num_envs}", "env.kwargs={}",
            *([] if new_weights else ["rollout.fragment_length=32"]),
            f"algo.eps_start={epsilon}", f"algo.eps_end={epsilon}",
            "algo.buffer_size=200000", f"rollout.inference={inference}"])
        spaces = check_spaces(exp)
        self.pool = rollout_pool(exp, spaces)
        self.buf = make_replay(exp, spaces)
        self.streams = np.arange(num_envs)
        self.weights = (Learner(exp, spaces, torch.device("cpu"), one_step=True)
                        .weights(for_actors=True) if new_weights else None)
        self.version = 0

    def run(self, seconds: float) -> float:
        from rlcore.regimes.transition import fragment_transitions

        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            if self.weights is not None:
                self.version += 1
                self.pool.publish(self.weights, self.version)
            frag = self.pool.stream(lambda slot: {"env_steps": 0, "num_actors": 1})[0]
            for o, a, r, te, tr, no in fragment_transitions(frag):
                self.buf.add(self.streams, o, a, r, te, tr, no)
            steps += frag.num_steps
        return steps / (time.perf_counter() - t0)

    def close(self) -> None:
        self.pool.close()


def run_atari(args) -> None:
    """Rates measured in interleaved rounds (raw, then each actor loop), so that the machine's
    load drifts alike for all; the ratio is the median over rounds of actor / raw native."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    for n in args.atari_envs:
        loops = {"raw_native": RawLoop("rlcore/PongNative-v5", n),
                 "raw_wrapped": RawLoop("rlcore/Pong-v5", n)}
        for eps in args.epsilons:
            for kind in args.inference.split(","):
                tag = "" if kind == "numpy" else f"_{kind}"
                loops[f"rollout{tag}_eps{eps}"] = ActorLoop("rlcore/PongNative-v5", n, eps, kind)
                if args.new_weights:
                    loops[f"rollout{tag}_eps{eps}_new_weights"] = ActorLoop(
                        "rlcore/PongNative-v5", n, eps, kind, new_weights=True)
        rates = {k: [] for k in loops}
        for _ in range(args.rounds):
            for k, loop in loops.items():
                rates[k].append(loop.run(args.seconds))
        for loop in loops.values():
            loop.close()
        metrics = {f"{k}_steps_per_s": round(float(np.median(v))) for k, v in rates.items()}
        for k in rates:
            if k.startswith("rollout"):
                ratio = np.array(rates[k]) / np.array(rates["raw_native"])
                metrics[f"{k}_ratio_to_raw_native"] = round(float(np.median(ratio)), 3)
        metrics["wrapped_over_native"] = round(float(np.median(
            np.array(rates["raw_wrapped"]) / np.array(rates["raw_native"]))), 3)
        emit("atari_rollout_throughput", None, metrics,
             {"num_envs": n, "seconds_per_round": args.seconds, "rounds": args.rounds,
              "torch_threads": 1, "inference": args.inference.split(","),
              "rates": {k: [round(x) for x in v] for k, v in rates.items()}},
             args.out)


# ---------------------------------------------------------------- learner


def run_learner(args) -> None:
    import numpy as np
    import torch

    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.regimes.transition import make_replay
    from rlcore.types import SpaceSpec

    spaces = SpaceSpec((4, 84, 84), "uint8", "discrete", (), 6)
    for algorithm, threads in [(a, t) for a in args.learner_algos for t in args.threads]:
        torch.set_num_threads(threads)
        exp = load_experiment(ROOT / "experiments" / f"{algorithm}_pong.yaml",
                              ["algo.buffer_size=20000", "env.num_envs=1"])
        learner = Learner(exp, spaces, torch.device("cpu"), one_step=True)
        buf = make_replay(exp, spaces)
        rng = np.random.default_rng(0)
        bench_common.fill_random_frames(buf, 2000, rng)
        for _ in range(3):  # warm-up
            learner.update(buf.sample(32), 0.0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            learner.update(buf.sample(32), 0.0)
            n += 1
        ups = n / (time.perf_counter() - t0)
        metrics = {"updates_per_s": round(ups, 2), "ms_per_update": round(1000 / ups, 1),
                   "hours_for_10m_steps_at_replay_ratio_0.25": round(2.5e6 / ups / 3600, 1)}
        emit("nature_cnn_learner", None, metrics, {"algorithm": algorithm, "batch_size": 32,
                                                   "torch_threads": threads}, args.out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=["cartpole", "memory", "atari", "learner"],
                   choices=["cartpole", "memory", "atari", "learner"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sb3", default=None, help="python of the SB3 venv (bench/peers/install.sh)")
    p.add_argument("--sb3-threads", type=int, default=1,
                   help="SB3's torch threads (rlcore's CartPole file uses 1; 0 = torch default)")
    p.add_argument("--fill", type=int, default=100_000, help="transitions filled for the RSS check")
    p.add_argument("--atari-envs", type=int, nargs="+", default=[8])
    p.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 0.1, 0.01])
    p.add_argument("--learner-algos", nargs="+", default=["dqn", "c51", "qrdqn"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3, help="Atari: interleaved measurement rounds")
    p.add_argument("--inference", default="numpy",
                   help="Atari: rollout.inference kinds of the actor loops, comma-separated "
                        "(numpy, torch)")
    p.add_argument("--new-weights", action="store_true",
                   help="Atari: also each actor loop as a DQN Pong run drives it, the file's "
                        "4-step fragments with new weights before each")
    p.add_argument("--out", default=None, help="append the JSON lines to this file")
    p.add_argument("--child-cartpole", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_cartpole is not None:
        child_cartpole(args.child_cartpole)
        return 0
    runners = {"cartpole": run_cartpole, "memory": run_memory, "atari": run_atari,
               "learner": run_learner}
    for name in args.only:
        runners[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
