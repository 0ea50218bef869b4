"""Same seed, same numbers: short fixed-seed runs of four experiments, printed as one JSON
line (evaluation returns, update count, env steps and a checksum of the final weights).

The refactor that gave every data regime one shape was checked with this script: run at the
commit before it and after it, the outputs were compared (``tests/test_equivalence.py`` holds
the numbers recorded before and checks them).

    python benchmarks/equivalence.py            # all four cases
    python benchmarks/equivalence.py ppo_cartpole_inline
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# name -> (experiment file, overrides); short budgets, inline rollouts, one torch thread
CASES = {
    "ppo_cartpole_inline": ("experiments/ppo_cartpole.yaml", [
        "rollout.num_actors=0", "env.num_envs=8", "stop.num_env_steps=2048",
        "stop.eval_return=null", "eval.every_env_steps=1024", "eval.episodes=3",
        "checkpoint.every_env_steps=0", "learner.torch_threads=1",
        # the file's value weight and lr when the numbers were recorded
        "algo.vf_coef=0.5", "learner.lr=1e-3"]),
    "dqn_cartpole": ("experiments/dqn_cartpole.yaml", [
        "stop.num_env_steps=2000", "stop.eval_return=null", "eval.every_env_steps=1000",
        "eval.episodes=3", "checkpoint.every_env_steps=0", "algo.learning_starts=500",
        # the file's settings when the numbers were recorded (it has since changed its lr,
        # target update, double Q, advantage learning, value range, prioritized replay and
        # evaluation network): the recorded numbers must not follow later edits
        "learner.lr=2.3e-3", "learner.lr_schedule=constant", "algo.double_q=false",
        "algo.target_update_period=64", "algo.tau=1.0", "algo.munchausen_alpha=0",
        "algo.value_range=null", "algo.prioritized=false", "algo.eval_network=online"]),
    "trpo_pendulum": ("experiments/trpo_pendulum.yaml", [
        "stop.num_env_steps=4096", "stop.eval_return=null", "eval.every_env_steps=2048",
        "eval.episodes=2", "learner.torch_threads=1"]),
    "alphazero_tictactoe": (None, []),
}

# the tic-tac-toe experiment of tests/test_alphazero.py's trainer test, copied on purpose: the
# recorded numbers must not follow later edits of the test
ALPHAZERO = {
    "algorithm": "alphazero", "seed": 0, "env": {"id": "rlcore/TicTacToe-v0"},
    "rollout": {"num_actors": 0},
    "algo": {"channels": 8, "blocks": 1, "value_hidden": 8, "num_simulations": 8,
             "parallel_games": 4, "games_per_round": 4, "updates_per_round": 2,
             "batch_size": 16, "min_positions": 16, "eval_simulations": 8,
             "eval_opponents": ["random"]},
    "stop": {"num_env_steps": 60}, "eval": {"episodes": 2},
    "logging": {"progress_every_s": 0},
}


def weights_checksum(weights: dict) -> str:
    """sha256 over every published array, modules and parameters in sorted order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        for key in sorted(weights[name]):
            h.update(f"{name}.{key}".encode())
            h.update(np.ascontiguousarray(weights[name][key]).tobytes())
    return h.hexdigest()[:16]


def run_case(name: str) -> dict:
    import yaml

    from rlcore.run.lifecycle import train_experiment

    path, overrides = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            path = Path(tmp) / "az.yaml"
            path.write_text(yaml.safe_dump(ALPHAZERO))
        else:
            path = ROOT / path
        summary, trainer = train_experiment(path, Path(tmp) / "run", overrides)
        return {"evals": [[e["env_steps"], round(e["mean"], 6)] for e in summary["evals"]],
                "env_steps": summary["env_steps"], "updates": summary["updates"],
                "weights": weights_checksum(trainer.learner.weights())}


def main(names: list[str]) -> None:
    out = {name: run_case(name) for name in (names or CASES)}
    print(json.dumps(out))  # one line, after the runs' own event lines


if __name__ == "__main__":
    main(sys.argv[1:])
