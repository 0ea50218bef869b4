"""Atari Pong collection with Nature-CNN inference: rlcore's PPO rollout worker, with and
without ``rollout.overlap``, against Stable-Baselines3's PPO ``collect_rollouts`` in the same
run, measured in interleaved rounds so that the machine's load drifts alike for all.

    .venv/bin/python benchmarks/atari_collect.py --sb3 $PEERS_DIR/sb3/bin/python --rounds 3 \\
        --out benchmarks/results/atari_collect.jsonl

What each side does per agent step (8 envs, 128 steps per env per rollout, the RL-Zoo's PPO
Atari setting; sticky actions 0.25 on both):
- rlcore: ``RolloutWorker.work()`` on ``rlcore/PongNative-v5`` (ale-py's C++ vector env with the
  DeepMind preprocessing, stepping in its own threads), the numpy Nature-CNN categorical policy
  (one BLAS thread), fragments of 128 steps: what an actor does, and the inline loop.
- SB3 (``../shared/bench/peers/sb3_atari_collect.py``): ``PPO.collect_rollouts`` on
  ``make_atari_env`` + ``VecFrameStack(4)``, a torch CnnPolicy with one thread; its
  ``DummyVecEnv`` (steps the envs one by one in Python) and, with ``--sb3-vec dummy,subproc``,
  ``SubprocVecEnv`` (a process per env). The peer also computes values for its buffer; rlcore's
  learner computes them on the batch (that cost is in its update, not here).
- raw: the native env alone with random actions (the ceiling of the rlcore loop).
The ratio is the median over rounds of rlcore's rate over SB3's best vec env in that round.
"""

from __future__ import annotations

import bench_common  # noqa: F401  (first import: starts the process clock)

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dqn import RawLoop  # the native env alone with random actions

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "bench" / "peers"
ENV = "rlcore/PongNative-v5"
bench_common.TASK = "atari_pong_collect"


class Worker:
    """The PPO Pong file's rollout worker on the native env, as an actor or the inline loop
    runs it; weights as the learner publishes them (numpy)."""

    def __init__(self, num_envs: int, sticky: float, overlap: bool, fragment_length: int,
                 inference: str = "numpy"):
        from rlcore.actors.worker import RolloutWorker, rollout_worker_spec
        from rlcore.config import load_experiment
        from rlcore.run.checks import check_spaces

        exp = load_experiment(ROOT / "experiments" / "ppo_pong.yaml", [
            f"env.id={ENV}", f"env.num_envs={num_envs}", "rollout.num_actors=0",
            f"rollout.fragment_length={fragment_length}",
            f"env.kwargs={{repeat_action_probability: {sticky}}}",
            f"rollout.overlap={str(overlap).lower()}", f"rollout.inference={inference}"])
        spaces = check_spaces(exp)
        self.worker = RolloutWorker(**rollout_worker_spec(exp, spaces).kwargs(0, 0, False))
        self.worker.work()  # first fragment: the initial weights, the envs warm

    def run(self, seconds: float) -> float:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            steps += self.worker.work().num_steps
        return steps / (time.perf_counter() - t0)

    def close(self) -> None:
        self.worker.close()


def sb3_round(python: str, vec: str, steps: int, num_envs: int, sticky: float) -> float:
    """One SB3 process: its own warm-up rollout, then ``steps`` timed agent steps."""
    proc = subprocess.run(
        [python, str(PEERS / "sb3_atari_collect.py"), "--vec-envs", vec, "--torch-threads", "1",
         "--steps", str(steps), "--env-only-steps", "0", "--n-envs", str(num_envs),
         "--sticky", str(sticky)], capture_output=True, text=True, cwd=PEERS, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"bench":')]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"SB3 peer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])["metrics"][f"{vec}_collect_steps_per_s"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sb3", help="python of the SB3 venv (../shared/bench/peers/install.sh)")
    p.add_argument("--sb3-vec", default="dummy", help="SB3 vec envs, comma-separated")
    p.add_argument("--sb3-steps", type=int, default=10_240, help="SB3 timed steps per round")
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--fragment-length", type=int, default=128)
    p.add_argument("--sticky", type=float, default=0.25)
    p.add_argument("--seconds", type=float, default=8.0, help="rlcore: seconds per loop per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--inference", default="numpy",
                   help="rollout.inference kinds for rlcore's loops, comma-separated (numpy, "
                        "torch: the Nature CNN in torch on one thread, as an actor holding "
                        "torch runs it)")
    p.add_argument("--out", help="append the JSON line to this file")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    kinds = args.inference.split(",")
    if "torch" in kinds:
        import torch

        torch.set_num_threads(1)  # as an actor sets it (rlcore.actors.host)
    loops = {"raw_native": RawLoop(ENV, args.envs, {"repeat_action_probability": args.sticky})}
    for kind in kinds:
        tag = "" if kind == "numpy" else f"_{kind}"
        loops[f"rlcore{tag}"] = Worker(args.envs, args.sticky, False, args.fragment_length, kind)
        loops[f"rlcore_overlap{tag}"] = Worker(args.envs, args.sticky, True,
                                               args.fragment_length, kind)
    rates: dict[str, list[float]] = {k: [] for k in loops}
    vecs = args.sb3_vec.split(",") if args.sb3 else []
    rates.update({f"sb3_{v}": [] for v in vecs})
    loads = []
    for r in range(args.rounds):
        loads.append(bench_common.load_avg())
        for name, loop in loops.items():
            rates[name].append(loop.run(args.seconds))
        for v in vecs:
            rates[f"sb3_{v}"].append(sb3_round(args.sb3, v, args.sb3_steps, args.envs, args.sticky))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()),
              file=sys.stderr, flush=True)
    for loop in loops.values():
        loop.close()

    metrics = {f"{k}_steps_per_s": float(np.median(v)) for k, v in rates.items()}
    for k in [k for k in loops if k.startswith("rlcore")]:
        metrics[f"{k}_share_of_raw"] = float(np.median(
            np.array(rates[k]) / np.array(rates["raw_native"])))
        if vecs:
            best_sb3 = np.max([rates[f"sb3_{v}"] for v in vecs], axis=0)
            metrics[f"{k}_over_sb3"] = float(np.median(np.array(rates[k]) / best_sb3))
    config = {"env": ENV, "num_envs": args.envs, "fragment_length": args.fragment_length,
              "sticky": args.sticky, "seconds_per_loop": args.seconds, "rounds": args.rounds,
              "sb3_vec": vecs, "sb3_steps": args.sb3_steps, "blas_threads": 1,
              "sb3_torch_threads": 1, "inference": kinds}
    details = {"rates": {k: [round(x) for x in v] for k, v in rates.items()}, "load_avg": loads}
    bench_common.emit(bench_common.make_line("atari_collect", None, metrics, config, details),
                      args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
