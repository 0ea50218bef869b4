"""SB3-contrib TRPO on Hopper-v5 with RL-Zoo's tuned Hopper hyperparameters: final evaluation.

The peer for ``python benchmarks/mujoco.py train experiments/trpo_hopper.yaml``: same budget
(1M env steps), same protocol (no evaluation on the way; at the end 10 episodes with the mean
action and the run's observation statistics frozen, raw rewards), same JSON line (task
``trpo_hopper``, ``eval_return_mean``), so ``summarize.py`` puts both side by side.

RL-Zoo hyperparams/trpo.yml, Hopper-v4 (= the mujoco defaults, tuned): normalize true
(VecNormalize obs + reward), n_envs 2, n_steps 1024, batch_size 128, gamma 0.99,
gae_lambda 0.95, sub_sampling_factor 1, cg_max_steps 25, cg_damping 0.1, n_critic_updates 20,
learning_rate 1e-3; everything else SB3's default (target_kl 0.01, line search x0.8 up to 10
times, MlpPolicy 64x64 tanh, orthogonal init, log-std 0). The zoo's published Hopper-v3 result
with these settings, 3618, is one run (its benchmark.md says so).

Needs the peers' SB3 venv ($PEERS_DIR/sb3, which bench/peers/run_all.sh or install.sh makes)
and their ``_common`` module:

    $PEERS_DIR/sb3/bin/python benchmarks/sb3_trpo_hopper.py --seed 0 [--out results.jsonl]

PEERS (default ../shared/bench/peers next to the repo) says where ``_common.py`` lives.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
# benchmarks/mujoco.py would shadow the MuJoCo package: take this folder off the path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_PEERS = os.environ.get("PEERS", os.path.join(os.path.dirname(_ROOT), "shared", "bench", "peers"))
if not os.path.isfile(os.path.join(_PEERS, "_common.py")):
    sys.exit(f"sb3_trpo_hopper.py: no _common.py in PEERS={_PEERS}; set PEERS to the "
             "bench/peers folder")
sys.path.insert(0, _PEERS)

import _common  # noqa: E402  (first import: starts the process clock)

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

HP = dict(n_steps=1024, batch_size=128, gamma=0.99, gae_lambda=0.95, sub_sampling_factor=1,
          cg_max_steps=25, cg_damping=0.1, n_critic_updates=20, learning_rate=1e-3)
N_ENVS = 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-id", default="Hopper-v5")
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--episodes", type=int, default=10, help="final evaluation episodes")
    p.add_argument("--torch-threads", type=int, default=1, help="0 = torch default")
    p.add_argument("--out", help="append the JSON line to this file")
    args = p.parse_args()

    import numpy as np
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    import _sb3_common

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    env = VecNormalize(make_vec_env(args.env_id, n_envs=N_ENVS, seed=args.seed),
                       norm_obs=True, norm_reward=True, gamma=HP["gamma"])
    model = TRPO("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **HP)
    setup_s = _common.elapsed()
    t = time.perf_counter()
    model.learn(total_timesteps=args.total_steps)
    learn_s = time.perf_counter() - t

    # The evaluation env uses the training run's observation statistics, frozen; raw rewards
    # (Monitor sits under VecNormalize, so evaluate_policy reports unnormalized returns).
    eval_env = VecNormalize(make_vec_env(args.env_id, n_envs=1, seed=10_000 + args.seed),
                            norm_obs=True, norm_reward=False, training=False)
    eval_env.obs_rms = env.obs_rms
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.episodes,
                                 deterministic=True, return_episode_rewards=True)
    env.close()
    eval_env.close()

    steps = int(model.num_timesteps)
    metrics = {"eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
               "env_steps": steps, "wall_s": learn_s, "train_steps_per_s": steps / learn_s}
    config = dict(env_id=args.env_id, n_envs=N_ENVS, normalize="obs+reward", **HP,
                  policy="MlpPolicy defaults (64x64 tanh, ortho init, log_std 0)",
                  total_steps=args.total_steps, eval_episodes=args.episodes,
                  deterministic_eval=True, torch_threads=torch.get_num_threads())
    details = {"setup_s": setup_s, "eval_returns": [float(r) for r in returns],
               "load_avg_end": list(os.getloadavg())}
    line = _common.emit("sb3_trpo_hopper", "trpo_hopper", "stable-baselines3", args.seed,
                        metrics, config, details, _sb3_common.sb3_versions())
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
