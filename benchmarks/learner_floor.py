"""Where PPO's time goes on HalfCheetah-v5 with RL-Zoo's settings, and how fast any torch
learner could be: one minibatch update (64 samples, two 256x256 ReLU MLPs, 17 -> 6 and 1)
measured four ways, interleaved in rounds so that load changes hit all of them alike:

  rlcore      the learner's own update (``Learner._sgd`` on a real 512-step rollout: 20 epochs
              of 8 minibatches), per minibatch
  rlcore_fused  the same learner built with ``learner.fused_adam: true``, on the same rollout
  sb3         Stable-Baselines3's ``PPO.train()`` on a real 512-step rollout with the same
              settings, per minibatch (in the SB3 venv, ``--sb3 PYTHON``; its own process)
  fwd+bwd     the floor: forward and backward of the two MLPs on 64 samples and a scalar loss,
              nothing else (no distribution, no clipping, no optimizer)
  +adam       the floor plus an Adam step (foreach kernels) on their parameters
  +fused_adam the floor plus torch's fused Adam step (one kernel; rounds differently)

and the env side of a training step: rlcore's inline rollout (MuJoCo step, numpy policy,
normalization) per env step. From these, the best env steps/s that a learner at the floor
could reach, ``512 / (512 * env_s + 160 * (fwd+bwd+adam))``, against what SB3's update implies:
the ceiling of the ratio to SB3 with these settings on this CPU.

    python benchmarks/learner_floor.py --sb3 $PEERS_DIR/sb3/bin/python --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc  # first: the process clock, Ray kept on loopback

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/mujoco.py would shadow the mujoco package Gymnasium imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
UPDATES = 160  # 20 epochs x 512 / 64

SB3_CODE = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
hp = dict(n_steps=512, batch_size=64, gamma=0.98, learning_rate=2.0633e-05,
          ent_coef=0.000401762, clip_range=0.1, n_epochs=20, gae_lambda=0.92,
          max_grad_norm=0.8, vf_coef=0.58096)
kw = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
          net_arch=dict(pi=[256, 256], vf=[256, 256]))
env = VecNormalize(make_vec_env("HalfCheetah-v5", n_envs=1, seed=0), gamma=0.98)
model = PPO("MlpPolicy", env, policy_kwargs=kw, seed=0, device="cpu", verbose=0, **hp)
model.learn(total_timesteps=512)  # one rollout in the buffer, one train() done
times = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    model.train()
    times.append((time.perf_counter() - t) / 160)
t = time.perf_counter()
model.learn(total_timesteps=2048, reset_num_timesteps=False)
print(json.dumps({"update_s": min(times), "learn_2048_s": time.perf_counter() - t}))
"""


def floor_step(seed: int = 0):
    """The bare update of the two MLPs: (fwd+bwd callable, fwd+bwd+adam callable)."""
    import torch

    torch.manual_seed(seed)

    def mlp(out):
        return torch.nn.Sequential(torch.nn.Linear(17, 256), torch.nn.ReLU(),
                                   torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                   torch.nn.Linear(256, out))

    pi, vf = mlp(6), mlp(1)
    params = list(pi.parameters()) + list(vf.parameters())
    obs, target = torch.randn(512, 17), torch.randn(512, 7)
    perm = torch.randperm(512)

    def fwd_bwd(i):
        idx = perm[(i % 8) * 64:(i % 8 + 1) * 64]
        o = obs[idx]
        loss = ((pi(o) - target[idx, :6]).square().mean()
                + (vf(o) - target[idx, 6:]).square().mean())
        for p in params:
            p.grad = None
        loss.backward()

    return bc.with_optimizers(fwd_bwd, params, 2e-5)


def per_update(fn, n: int = UPDATES) -> float:
    return bc.per_update(fn, n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sb3", help="python of the SB3 venv (shared/bench/peers/install.sh sb3)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args()
    import torch

    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import make_run

    torch.set_num_threads(1)
    exp = load_experiment(ROOT / "experiments/ppo_halfcheetah.yaml", [
        "learner.torch_threads=1", "eval.every_env_steps=0", "checkpoint.every_env_steps=0"])
    run = make_run(exp, Path(tempfile.mkdtemp()) / "r")
    run.publish()
    learner = run.learner
    from rlcore.learner.core import Learner

    fused_exp = load_experiment(ROOT / "experiments/ppo_halfcheetah.yaml", [
        "learner.torch_threads=1", "learner.fused_adam=true"])
    fused_learner = Learner(fused_exp, run.spaces, learner.device)
    rows = {"rlcore": [], "rlcore_fused": [], "sb3": [], "fwd+bwd": [], "+adam": [],
            "+fused_adam": [], "env": [], "sb3_train_sps": []}
    fwd_bwd, with_adam, with_fused_adam = floor_step()
    per_update(with_adam, 32)  # warm-up
    for rnd in range(args.rounds):
        t = time.perf_counter()
        fragments = run.pool.round([None])  # 512 env steps inline: MuJoCo, numpy policy, norm
        rows["env"].append((time.perf_counter() - t) / 512)
        batch = learner.plugin.prepare_batch(learner.modules, fragments, learner.cfg,
                                             learner.state, learner.rng)
        t = time.perf_counter()
        learner._sgd(batch)
        rows["rlcore"].append((time.perf_counter() - t) / UPDATES)
        t = time.perf_counter()
        fused_learner._sgd(batch)
        rows["rlcore_fused"].append((time.perf_counter() - t) / UPDATES)
        rows["fwd+bwd"].append(per_update(fwd_bwd))
        rows["+adam"].append(per_update(with_adam))
        rows["+fused_adam"].append(per_update(with_fused_adam))
        if args.sb3:
            sb3 = bc.sb3_timing(args.sb3, SB3_CODE, "2")
            rows["sb3"].append(sb3["update_s"])
            rows["sb3_train_sps"].append(2048 / sb3["learn_2048_s"])
    best = bc.best_of_rounds(rows)
    sb3_train_sps = best.pop("sb3_train_sps", None)

    def sps(update_s: float) -> float:
        """Training env steps/s with rlcore's env side and this time per minibatch update."""
        return 512 / (512 * best["env"] + UPDATES * update_s)

    floor_sps, fused_floor_sps = sps(best["+adam"]), sps(best["+fused_adam"])
    line = {"bench": "learner_floor_ppo_halfcheetah",
            "metrics": {f"{k}_ms": round(v * 1e3, 3) for k, v in best.items()},
            "derived": {"rlcore_sps_at_this_update": round(sps(best["rlcore"])),
                        "floor_sps": round(floor_sps),
                        "fused_floor_sps": round(fused_floor_sps)},
            "rounds": {k: [round(x, 1) if k == "sb3_train_sps" else round(x * 1e3, 3)
                           for x in v] for k, v in rows.items()},
            "load_avg": list(os.getloadavg()), "torch": torch.__version__,
            "cpu": bc.host_info()["cpu_model"]}
    if "sb3" in best:
        line["derived"].update({
            "sb3_train_sps": round(sb3_train_sps),  # its own learn(): collection + updates
            "ceiling_ratio_to_sb3": round(floor_sps / sb3_train_sps, 2),
            "fused_ceiling_ratio_to_sb3": round(fused_floor_sps / sb3_train_sps, 2),
            "rlcore_ratio_to_sb3_at_this_update": round(sps(best["rlcore"]) / sb3_train_sps, 2),
            "rlcore_update_ratio_to_sb3": round(best["sb3"] / best["rlcore"], 2),
            "rlcore_fused_ratio_to_sb3_at_this_update": round(
                sps(best["rlcore_fused"]) / sb3_train_sps, 2)})
    bc.emit(line, args.out)
    print(f"\nper minibatch update (best of {args.rounds} rounds, ms): " + ", ".join(
        f"{k} {v * 1e3:.3f}" for k, v in best.items() if k != "env")
          + f"; env side {best['env'] * 1e6:.0f} us per env step")
    for k, v in line["derived"].items():
        print(f"  {k}: {v}")
    run.pool.close()


if __name__ == "__main__":
    main()
