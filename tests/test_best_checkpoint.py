"""The best checkpoint (``checkpoints/best``, the weights of the highest evaluation so far,
kept apart from the rolling ``checkpoint.keep``) and ``rlcore eval --checkpoint
latest|best|STEP``."""

import json

import pytest
import torch

from rlcore.cli import main
from rlcore.errors import CheckpointError
from rlcore.run import checkpoint, chosen

pytestmark = pytest.mark.timeout(300)

EVERY = 512


def run(tmp_path, capsys, steps: int = 3072, *extra) -> tuple:
    """PPO CartPole inline, an evaluation every 512 steps, one rolling checkpoint kept."""
    run_dir = tmp_path / "run"
    rc = main(["run", "experiments/ppo_cartpole.yaml", "--run-dir", str(run_dir),
               "--set", "rollout.num_actors=0", "--set", f"stop.num_env_steps={steps}",
               "--set", "stop.eval_return=null", "--set", f"eval.every_env_steps={EVERY}",
               "--set", "eval.episodes=3", "--set", "checkpoint.every_env_steps=1024",
               "--set", "checkpoint.keep=1", "--set", "logging.progress_every_s=0", *extra])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def eval_json(capsys, *argv) -> tuple[int, dict | str]:
    code = main(["eval", *map(str, argv)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out.strip().splitlines()[-1]) if code == 0
                  else captured.err)


def test_the_best_evaluation_is_kept_apart_from_the_rolling_checkpoints(tmp_path, capsys):
    run_dir, summary = run(tmp_path, capsys)
    means = [e["mean"] for e in summary["evals"]]
    assert [e["env_steps"] for e in summary["evals"]] == list(range(EVERY, 3072 + 1, EVERY))
    # keep: 1 leaves only the final step checkpoint; best is not counted among them
    assert [p.name for p in checkpoint.complete_checkpoints(run_dir)] == ["step_000000003072"]
    best = run_dir / "checkpoints" / "best"
    meta = json.loads((best / "meta.json").read_text())
    first_best = means.index(max(means))  # replaced only by a strictly higher evaluation
    assert meta["best_eval_return"] == max(means)
    assert meta["env_steps"] == summary["evals"][first_best]["env_steps"]
    assert not (best / "replay.npz").exists()
    assert chosen.best_eval_return(run_dir) == max(means)

    # The best weights give that evaluation again: the same episodes (the run evaluates its
    # i-th evaluation with seed + i) and greedy actions.
    code, out = eval_json(capsys, run_dir, "--checkpoint", "best", "--episodes", 3,
                          "--seed", summary["seed"] + first_best)
    assert code == 0, out
    assert out["checkpoint"] == str(best) and out["env_steps"] == meta["env_steps"]
    assert out["eval_return_mean"] == pytest.approx(max(means))
    assert out["best_eval_return"] == max(means)

    code, out = eval_json(capsys, run_dir, "--checkpoint", 3072, "--episodes", 2)
    assert code == 0 and out["env_steps"] == 3072
    code, out = eval_json(capsys, run_dir, "--episodes", 2)  # latest, as before
    assert code == 0 and out["checkpoint"].endswith("step_000000003072")


def test_a_resumed_run_replaces_the_best_only_when_beaten(tmp_path, capsys):
    run_dir, _ = run(tmp_path, capsys, 1024)
    best = run_dir / "checkpoints" / "best"
    meta = json.loads((best / "meta.json").read_text())
    meta["best_eval_return"] = 10_000.0  # no CartPole evaluation reaches this
    (best / "meta.json").write_text(json.dumps(meta))
    weights = (best / "weights.pt").read_bytes()
    assert main(["resume", str(run_dir), "--set", "stop.num_env_steps=2048"]) == 0
    assert (best / "weights.pt").read_bytes() == weights
    assert chosen.best_eval_return(run_dir) == 10_000.0
    meta["best_eval_return"] = -1.0  # every evaluation beats this one
    (best / "meta.json").write_text(json.dumps(meta))
    assert main(["resume", str(run_dir), "--set", "stop.num_env_steps=2560"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    new = [e["mean"] for e in summary["evals"] if e["env_steps"] > 2048]
    assert chosen.best_eval_return(run_dir) == max(new)


def test_keep_best_false_writes_none_and_eval_says_so(tmp_path, capsys):
    run_dir, _ = run(tmp_path, capsys, 1024, "--set", "checkpoint.keep_best=false")
    assert not (run_dir / "checkpoints" / "best").exists()
    code, err = eval_json(capsys, run_dir, "--checkpoint", "best")
    assert code == 2
    assert err == (f"error: no best checkpoint in {run_dir / 'checkpoints'}: it is written at "
                   "each evaluation that beats the earlier ones (checkpoint.keep_best, "
                   "eval.every_env_steps and the final evaluation); it has 1024. Use "
                   "--checkpoint latest or a step\n")
    code, err = eval_json(capsys, run_dir, "--checkpoint", 512)
    assert code == 2 and err == (f"error: no checkpoint of step 512 in "
                                 f"{run_dir / 'checkpoints'}; it has 1024\n")
    code, err = eval_json(capsys, run_dir, "--checkpoint", "newest")
    assert code == 2 and "--checkpoint 'newest' is not latest, best or an env step" in err


def test_a_chosen_checkpoint_that_does_not_fit_is_an_error_not_replaced(tmp_path):
    tensors = {"modules": {"net": {"w": torch.zeros(2)}}}
    meta = {"algorithm": "ppo", "spaces": {"obs_shape": [4]}, "env_steps": 8, "wall_s": 1.0,
            "learner": {"version": 1, "updates": 1}, "evals": []}
    checkpoint.save(tmp_path, 8, tensors, meta, keep=1)
    checkpoint.save(tmp_path, 16, tensors, dict(meta, env_steps=16), keep=1)
    chosen.save_best(tmp_path, 3.5, tensors, meta)
    # pruning leaves best alone, and best is not a step checkpoint
    assert [p.name for p in checkpoint.complete_checkpoints(tmp_path)] == ["step_000000000016"]
    assert chosen.best_path(tmp_path) == tmp_path / "checkpoints" / "best"
    chosen.save_best(tmp_path, 4.5, tensors, meta)  # replaced in place, no leftovers
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best", "step_000000000016"]
    assert chosen.best_eval_return(tmp_path) == 4.5
    with pytest.raises(CheckpointError, match=r"^checkpoint .*/checkpoints/best was written by "
                                              r"algorithm 'ppo', not 'dqn'"):
        chosen.load_chosen(tmp_path, "best", "dqn", {"obs_shape": [4]}, "cpu")
    path, loaded, _ = chosen.load_chosen(tmp_path, "best", "ppo", {"obs_shape": [4]}, "cpu")
    assert path.name == "best" and loaded["best_eval_return"] == 4.5 and loaded["skipped"] == []
