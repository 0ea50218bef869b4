"""Stable-Baselines3 SAC, the peer of ``benchmarks/sac.py``, with RL-Zoo's settings per task.

SB3's SAC defaults: buffer 1e6, learning_starts 100, batch 256, lr 3e-4, tau 0.005, gamma 0.99,
one gradient step per env step, automatic entropy coefficient with target -|A|, 256x256 ReLU
MLPs. RL-Zoo's sac.yml changes, per task:
  sac_pendulum     Pendulum-v1: learning_rate 1e-3
  sac_halfcheetah  HalfCheetah-v5 (RL-Zoo's HalfCheetah entry): learning_starts 10000
Protocol as rlcore's: evaluations of 10 deterministic episodes on a separate env (every 1k steps
on Pendulum, every 20k on HalfCheetah), the same budget, and a line with the first evaluation
>= the threshold, the step from which every later one stays >= it, and the final evaluation.

    $PEERS_DIR/sb3/bin/python benchmarks/sb3_sac.py --task sac_pendulum --seed 0 [--out f.jsonl]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_PEERS = os.environ.get("PEERS", os.path.join(os.path.dirname(_ROOT), "shared", "bench", "peers"))
if not os.path.isfile(os.path.join(_PEERS, "_common.py")):
    sys.exit(f"sb3_sac.py: no _common.py in PEERS={_PEERS}; set PEERS to the bench/peers folder")
sys.path.insert(0, _PEERS)

import _common  # noqa: E402  (first import: starts the process clock)

import argparse  # noqa: E402
import json  # noqa: E402

TASKS = {
    "sac_pendulum": dict(env_id="Pendulum-v1", hp=dict(learning_rate=1e-3), steps=15_000,
                         eval_every=1_000, threshold=-200.0),
    "sac_halfcheetah": dict(env_id="HalfCheetah-v5", hp=dict(learning_starts=10_000),
                            steps=300_000, eval_every=20_000, threshold=5000.0),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="sac_pendulum")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-steps", type=int, help="env-step budget (default: the task's)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--threshold", type=float, help="return threshold (default: the task's)")
    p.add_argument("--torch-threads", type=int, default=1, help="0 = torch default")
    p.add_argument("--out", help="append the JSON line to this file")
    args = p.parse_args()
    spec = TASKS[args.task]
    total = args.total_steps or spec["steps"]
    threshold = spec["threshold"] if args.threshold is None else args.threshold

    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    import _sb3_common

    # Print each evaluation as it happens, so a long run's curve survives an interruption.
    evaluate = _sb3_common.ThresholdEval.evaluate

    def evaluate_and_print(self):
        rec = evaluate(self)
        print(f"[{rec['wall_s']:8.1f}s] steps {rec['steps']:>9,}  eval {rec['mean']:.1f} "
              f"± {rec['std']:.1f}", file=sys.stderr, flush=True)
        return rec

    _sb3_common.ThresholdEval.evaluate = evaluate_and_print
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    config = dict(env_id=spec["env_id"], n_envs=1, **spec["hp"], defaults="SB3 SAC",
                  total_steps=total, eval_every=spec["eval_every"],
                  eval_episodes=args.eval_episodes, torch_threads=torch.get_num_threads())
    env = make_vec_env(spec["env_id"], n_envs=1, seed=args.seed)
    eval_env = make_vec_env(spec["env_id"], n_envs=1, seed=args.seed + 10_000)
    model = SAC("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **spec["hp"])
    out = _sb3_common.run_with_threshold_eval(model, eval_env, total, spec["eval_every"],
                                              args.eval_episodes, threshold)
    env.close()
    eval_env.close()
    line = _common.emit(f"sb3_{args.task}", args.task, "stable-baselines3", args.seed,
                        out["metrics"], config, out["details"], _sb3_common.sb3_versions())
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
