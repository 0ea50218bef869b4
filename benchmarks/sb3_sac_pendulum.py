"""Stable-Baselines3 SAC on Pendulum-v1, the peer of ``benchmarks/sac_pendulum.py``.

RL-Zoo's sac.yml entry for Pendulum sets learning_rate 1e-3 over SB3's SAC defaults (buffer
1e6, learning_starts 100, batch 256, tau 0.005, gamma 0.99, one gradient step per env step,
automatic entropy coefficient with target -|A|, 256x256 ReLU MLPs). Protocol as rlcore's: an
evaluation of 10 deterministic episodes every 1,000 env steps on a separate env, 15k steps; the
line reports the first evaluation >= -200, the step from which every later one stays >= -200,
and the final evaluation (task ``sac_pendulum``).

    $PEERS_DIR/sb3/bin/python benchmarks/sb3_sac_pendulum.py --seed 0 [--out results.jsonl]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_PEERS = os.environ.get("PEERS", os.path.join(os.path.dirname(_ROOT), "shared", "bench", "peers"))
if not os.path.isfile(os.path.join(_PEERS, "_common.py")):
    sys.exit(f"sb3_sac_pendulum.py: no _common.py in PEERS={_PEERS}; set PEERS to the "
             "bench/peers folder")
sys.path.insert(0, _PEERS)

import _common  # noqa: E402  (first import: starts the process clock)

import argparse  # noqa: E402
import json  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-steps", type=int, default=15_000)
    p.add_argument("--eval-every", type=int, default=1_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--threshold", type=float, default=-200.0)
    p.add_argument("--torch-threads", type=int, default=1, help="0 = torch default")
    p.add_argument("--out", help="append the JSON line to this file")
    args = p.parse_args()

    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    import _sb3_common

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    hp = dict(learning_rate=1e-3)
    config = dict(env_id="Pendulum-v1", n_envs=1, **hp, defaults="SB3 SAC",
                  total_steps=args.total_steps, eval_every=args.eval_every,
                  eval_episodes=args.eval_episodes, torch_threads=torch.get_num_threads())
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=args.seed)
    eval_env = make_vec_env("Pendulum-v1", n_envs=1, seed=args.seed + 10_000)
    model = SAC("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **hp)
    out = _sb3_common.run_with_threshold_eval(model, eval_env, args.total_steps, args.eval_every,
                                              args.eval_episodes, args.threshold)
    env.close()
    eval_env.close()
    line = _common.emit("sb3_sac_pendulum", "sac_pendulum", "stable-baselines3", args.seed,
                        out["metrics"], config, out["details"], _sb3_common.sb3_versions())
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
