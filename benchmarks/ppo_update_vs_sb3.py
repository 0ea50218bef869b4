"""PPO's update against Stable-Baselines3's, on the same data and the same initial weights.

Stable-Baselines3 (run in its own venv: ``--sb3 PYTHON``) collects one rollout of PPO on
CartPole-v1 with the RL-Zoo settings (8 envs x 32 steps, 20 epochs of 256, gamma 0.98, lambda 0.8;
lr 1e-3 and clip 0.2 held constant, so that no schedule differs) and runs its ``train()``. This
script then gives rlcore the same things: SB3's initial weights, its rollout, and its GAE inputs,
and prints the largest differences

- of the advantages: rlcore's ``ops.advantages.gae`` on SB3's rewards, values and episode ends
  against SB3's ``compute_returns_and_advantage``;
- of every weight after rlcore's ``Learner`` ran the update (``num_epochs`` passes of one
  256-sample minibatch), with the advantages standardized as SB3 does per minibatch (torch's
  unbiased std; rlcore's ``prepare_batch`` uses numpy's population std, a factor sqrt(255/256)),
  at two value-loss weights: ``algo.vf_coef`` 1.0 (rlcore's value loss is 0.5 (V - R)^2, as
  CleanRL's; SB3's is (V - R)^2, so SB3's 0.5 is rlcore's 1.0) and the same number, 0.5.

With equal weighting the update agrees to float32 rounding; at the same number the value net
still agrees (Adam's step does not depend on the loss's scale) but the policy net does not: the
gradient-norm clip (0.5) is shared by both nets, so a smaller value gradient clips the policy's
less and it moves further.

    python benchmarks/ppo_update_vs_sb3.py --sb3 /tmp/peers/sb3/bin/python --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SB3_TO_RLCORE = {"pi.0": "mlp_extractor.policy_net.0", "pi.2": "mlp_extractor.policy_net.2",
                 "pi.4": "action_net", "v.0": "mlp_extractor.value_net.0",
                 "v.2": "mlp_extractor.value_net.2", "v.4": "value_net"}


def sb3_side(seed: int, out: str) -> None:
    """Runs in SB3's venv: one rollout and one train(); saves weights before and after, and the
    rollout buffer (GAE already computed)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2, seed=seed,
                device="cpu")
    dump: dict = {}

    def weights():
        return {k: v.detach().clone().numpy() for k, v in model.policy.state_dict().items()}

    class AtRolloutEnd(BaseCallback):  # after compute_returns_and_advantage, before train()
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            b = self.model.rollout_buffer
            for k in ("observations", "actions", "log_probs", "values", "advantages", "returns",
                      "rewards", "episode_starts"):
                dump[k] = getattr(b, k).copy()
            dump["last_values"] = self.locals["values"].detach().numpy().reshape(-1).copy()
            dump["dones"] = np.asarray(self.locals["dones"], np.float32).copy()
            dump["before"] = weights()

    model.learn(total_timesteps=256, callback=AtRolloutEnd())
    dump["after"] = weights()
    np.save(out, dump, allow_pickle=True)


def compare(d: dict, vf_coef: float) -> dict:
    """rlcore's GAE and update on SB3's data; the largest absolute differences."""
    import torch

    from rlcore.config import load_experiment
    from rlcore.learner.batches import Batch
    from rlcore.learner.core import Learner
    from rlcore.ops.advantages import gae
    from rlcore.run.checks import check_spaces

    torch.set_num_threads(1)
    exp = load_experiment(ROOT / "experiments/ppo_cartpole.yaml", [
        "rollout.num_actors=0", "learner.lr=1e-3", "learner.lr_schedule=constant",
        "algo.clip_coef=0.2", "algo.clip_schedule=constant", "algo.ent_coef=0.0",
        "learner.num_epochs=20", "learner.minibatch_size=256", "learner.max_grad_norm=0.5",
        f"algo.vf_coef={vf_coef}"])
    T, N = d["rewards"].shape
    ended = np.zeros((T, N))  # SB3 marks an episode's end by the next row's episode start
    ended[:-1], ended[-1] = d["episode_starts"][1:], d["dones"]
    nxt = np.zeros((T, N))
    nxt[:-1], nxt[-1] = d["values"][1:], d["last_values"]
    adv = gae(d["rewards"], d["values"], nxt, ended, ended, 0.98, 0.8)

    learner = Learner(exp, check_spaces(exp), torch.device("cpu"))
    net = learner.modules["ac"]
    net.load_state_dict({f"{ours}.{w}": torch.tensor(d["before"][f"{theirs}.{w}"])
                         for ours, theirs in SB3_TO_RLCORE.items() for w in ("weight", "bias")})
    a = d["advantages"].reshape(-1)
    a = (a - a.mean()) / (a.std(ddof=1) + 1e-8)
    batch = Batch(obs=torch.tensor(d["observations"].reshape(T * N, -1)),
                  action=torch.tensor(d["actions"].reshape(-1).astype(np.int64)),
                  log_prob=torch.tensor(d["log_probs"].reshape(-1), dtype=torch.float32),
                  value=torch.tensor(d["values"].reshape(-1), dtype=torch.float32),
                  advantage=torch.tensor(a, dtype=torch.float32),
                  returns=torch.tensor(d["returns"].reshape(-1), dtype=torch.float32))
    learner.state["progress"] = 0.0
    learner.groups.set_lr(0.0)
    learner.lcfg.gns_every = 10**9  # no noise-scale split (it sums to the same gradient anyway)
    learner._sgd(batch)  # what update() runs on a trajectory batch, after prepare_batch
    ours = net.state_dict()
    diff = {"policy": 0.0, "value": 0.0}
    moved = {"policy": 0.0, "value": 0.0}
    for mine, theirs in SB3_TO_RLCORE.items():
        part = "policy" if mine.startswith("pi") else "value"
        for w in ("weight", "bias"):
            after, before = d["after"][f"{theirs}.{w}"], d["before"][f"{theirs}.{w}"]
            diff[part] = max(diff[part], float(np.abs(ours[f"{mine}.{w}"].numpy() - after).max()))
            moved[part] = max(moved[part], float(np.abs(after - before).max()))
    return {"episodes_ended": int(ended.sum()),
            "gae_max_abs_diff": float(np.abs(adv - d["advantages"]).max()),
            "policy_max_abs_diff": diff["policy"], "value_max_abs_diff": diff["value"],
            "policy_max_sb3_step": moved["policy"], "value_max_sb3_step": moved["value"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sb3", help="python of the SB3 venv")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", help="append JSON lines here")
    p.add_argument("--sb3-side", nargs=2, metavar=("SEED", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sb3_side:
        sb3_side(int(args.sb3_side[0]), args.sb3_side[1])
        return
    if not args.sb3:
        p.error("--sb3 PYTHON (the Stable-Baselines3 venv's python) is required")
    print(f"{'seed':>4} {'vf_coef':>7} {'ended':>5} {'GAE diff':>9} {'policy diff':>11} "
          f"{'(SB3 step)':>10} {'value diff':>10} {'(SB3 step)':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            path = f"{tmp}/sb3_{seed}.npy"
            subprocess.run([args.sb3, __file__, "--sb3-side", str(seed), path], check=True)
            d = np.load(path, allow_pickle=True).item()
            for vf in (1.0, 0.5):
                r = compare(d, vf)
                print(f"{seed:>4} {vf:>7} {r['episodes_ended']:>5} {r['gae_max_abs_diff']:>9.1e} "
                      f"{r['policy_max_abs_diff']:>11.1e} {r['policy_max_sb3_step']:>10.1e} "
                      f"{r['value_max_abs_diff']:>10.1e} {r['value_max_sb3_step']:>10.1e}")
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps({"bench": "ppo_update_vs_sb3", "seed": seed,
                                            "vf_coef": vf, **r}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
