"""Where DQN's time goes on CartPole-v1 with SB3's RL-Zoo settings, and how fast any torch
learner could be: one update (batch 64, a 4 -> 256 -> 256 -> 2 ReLU MLP and its target copy)
measured several ways, interleaved in rounds so that load changes hit all of them alike:

  rlcore        the replay regime's own training step (``Transition.train_step``: replay
                sample, ``Learner.update`` with its loss, gradient clipping, Adam, target
                bookkeeping and metrics), on a replay filled by the run itself
  rlcore_fused  the same with ``learner.fused_adam: true``
  sb3           Stable-Baselines3's ``DQN.train(gradient_steps=128, batch_size=64)`` on its own
                filled replay, per update (in the SB3 venv, ``--sb3 PYTHON``; its own process)
  fwd+bwd       the floor: Q(s, a) of the online net, max_a Q of the target net (no grad), a
                Huber loss, backward, on preallocated tensors; nothing else
  +adam         the floor plus an Adam step (foreach kernels, rlcore's default)
  +fused_adam   the floor plus torch's fused Adam step

and the env side of a training step: rlcore's inline rollout of 256 env steps (CartPole,
numpy epsilon-greedy policy, transitions into replay), per env step. From these, the best env
steps/s a learner at the floor could reach with these settings (128 updates after every 256 env
steps), ``256 / (256 * env_s + 128 * update_s)``, against SB3's own training rate (its
``learn()``: collection and updates): the ceiling of the ratio to SB3 on this CPU.

    python benchmarks/dqn_learner_floor.py --sb3 $PEERS_DIR/sb3/bin/python --rounds 3
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
UPDATES = 128  # gradient_steps per train_freq = 256 env steps
ENV_STEPS = 256

# The RL-Zoo's DQN CartPole settings, as benchmarks/RESULTS.md "DQN at SB3's settings" ran them
SB3_SETTINGS = ["algo.n_step=1", "algo.double_q=false", "algo.munchausen_alpha=0",
                "algo.prioritized=false", "algo.value_range=null", "algo.tau=1.0",
                "algo.target_update_period=128", "learner.lr=2.3e-3",
                "learner.lr_schedule=constant", "rollout.fragment_length=256",
                "algo.exploration_steps=16000", "algo.eval_network=online",
                "learner.torch_threads=1", "eval.every_env_steps=0",
                "checkpoint.every_env_steps=0", "logging.progress_every_s=0"]

SB3_CODE = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
hp = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
          gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
          exploration_fraction=0.16, exploration_final_eps=0.04)
env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[256, 256]), seed=0, device="cpu",
            verbose=0, **hp)
model.learn(total_timesteps=2048)  # replay filled, updates already made
times = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    model.train(gradient_steps=128, batch_size=64)
    times.append((time.perf_counter() - t) / 128)
t = time.perf_counter()
model.learn(total_timesteps=2048, reset_num_timesteps=False)
print(json.dumps({"update_s": min(times), "learn_2048_s": time.perf_counter() - t}))
"""


def floor_step(seed: int = 0):
    """The bare DQN update: (fwd+bwd, fwd+bwd+adam, fwd+bwd+fused adam) callables."""
    import copy

    import torch

    torch.manual_seed(seed)
    online = torch.nn.Sequential(torch.nn.Linear(4, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 2))
    target = copy.deepcopy(online).requires_grad_(False)
    params = list(online.parameters())
    n = 4096
    obs, next_obs = torch.randn(n, 4), torch.randn(n, 4)
    action, reward = torch.randint(0, 2, (n, 1)), torch.randn(n)
    done = (torch.rand(n) < 0.02).float()
    idx = torch.randint(0, n, (64 * UPDATES * 8,))

    def fwd_bwd(i):
        b = idx[(i % (UPDATES * 8)) * 64:(i % (UPDATES * 8) + 1) * 64]
        with torch.no_grad():
            y = reward[b] + 0.99 * (1.0 - done[b]) * target(next_obs[b]).max(1).values
        q = online(obs[b]).gather(1, action[b]).squeeze(1)
        loss = torch.nn.functional.smooth_l1_loss(q, y)
        for p in params:
            p.grad = None
        loss.backward()

    return bc.with_optimizers(fwd_bwd, params, 2.3e-3)


def per_update(fn, n: int = UPDATES) -> float:
    return bc.per_update(fn, n)


class RlcoreSide:
    """A DQN CartPole run at SB3's settings, its replay filled by its own inline rollouts."""

    def __init__(self, extra: list[str]):
        from rlcore.config import load_experiment
        from rlcore.run.lifecycle import make_run

        exp = load_experiment(ROOT / "experiments/dqn_cartpole.yaml", SB3_SETTINGS + extra)
        self.run = make_run(exp, Path(tempfile.mkdtemp()) / "r")
        self.regime = self.run.regime
        self.run.publish()
        while self.run.env_steps < 2048:
            self.env_round()

    def env_round(self) -> float:
        """One fragment of 256 env steps into replay; seconds per env step."""
        t = time.perf_counter()
        for frag in self.run.pool.round([None]):
            self.regime.add_fragment(frag)
        return (time.perf_counter() - t) / ENV_STEPS

    def update(self) -> float:
        t = time.perf_counter()
        for _ in range(UPDATES):
            self.regime.train_step(0.5)
        self.run.publish()
        return (time.perf_counter() - t) / UPDATES

    def close(self) -> None:
        self.run.pool.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sb3", help="python of the SB3 venv (shared/bench/peers/install.sh sb3)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    rlcore, fused = RlcoreSide([]), RlcoreSide(["learner.fused_adam=true"])
    rows = {k: [] for k in ("rlcore", "rlcore_fused", "sb3", "fwd+bwd", "+adam", "+fused_adam",
                            "env", "sb3_train_sps")}
    fwd_bwd, with_adam, with_fused_adam = floor_step()
    per_update(with_adam, 32)  # warm-up
    for _ in range(args.rounds):
        rows["env"].append(rlcore.env_round())
        rows["rlcore"].append(rlcore.update())
        fused.env_round()
        rows["rlcore_fused"].append(fused.update())
        rows["fwd+bwd"].append(per_update(fwd_bwd))
        rows["+adam"].append(per_update(with_adam))
        rows["+fused_adam"].append(per_update(with_fused_adam))
        if args.sb3:
            sb3 = bc.sb3_timing(args.sb3, SB3_CODE, "3")
            rows["sb3"].append(sb3["update_s"])
            rows["sb3_train_sps"].append(2048 / sb3["learn_2048_s"])
    best = bc.best_of_rounds(rows)
    sb3_train_sps = best.pop("sb3_train_sps", None)

    def sps(update_s: float) -> float:
        """Training env steps/s with rlcore's env side and this time per update."""
        return ENV_STEPS / (ENV_STEPS * best["env"] + UPDATES * update_s)

    derived = {"rlcore_sps_at_this_update": round(sps(best["rlcore"])),
               "floor_sps": round(sps(best["+adam"])),
               "fused_floor_sps": round(sps(best["+fused_adam"])),
               "bare_fwd_bwd_sps": round(sps(best["fwd+bwd"]))}
    if sb3_train_sps is not None:
        derived.update({
            "sb3_train_sps": round(sb3_train_sps),
            "rlcore_ratio_to_sb3_at_this_update": round(sps(best["rlcore"]) / sb3_train_sps, 2),
            "rlcore_update_ratio_to_sb3": round(best["sb3"] / best["rlcore"], 2),
            "ceiling_ratio_to_sb3": round(sps(best["+adam"]) / sb3_train_sps, 2),
            "fused_ceiling_ratio_to_sb3": round(sps(best["+fused_adam"]) / sb3_train_sps, 2),
            "bare_fwd_bwd_ratio_to_sb3": round(sps(best["fwd+bwd"]) / sb3_train_sps, 2)})
    line = {"bench": "learner_floor_dqn_cartpole",
            "metrics": {f"{k}_ms": round(v * 1e3, 4) for k, v in best.items()},
            "derived": derived,
            "rounds": {k: [round(x, 1) if k == "sb3_train_sps" else round(x * 1e3, 4)
                           for x in v] for k, v in rows.items()},
            "load_avg": list(os.getloadavg()), "torch": torch.__version__,
            "cpu": bc.host_info()["cpu_model"], "git": bc.git_state()}
    bc.emit(line, args.out)
    print(f"\nper update (best of {args.rounds} rounds, ms): " + ", ".join(
        f"{k} {v * 1e3:.3f}" for k, v in best.items() if k != "env")
          + f"; env side {best['env'] * 1e6:.0f} us per env step", file=sys.stderr)
    for k, v in derived.items():
        print(f"  {k}: {v}", file=sys.stderr)
    rlcore.close()
    fused.close()


if __name__ == "__main__":
    main()
