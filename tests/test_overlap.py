"""``rollout.overlap``: each worker's sub-envs in two halves of a native vector env, one half
stepping while the policy acts for the other. The data must be the data of the unsplit loop
wherever the policy does not sample: same seeds per sub-env, same greedy actions, same final
observations of truncated episodes."""

from __future__ import annotations

import numpy as np
import pytest

from rlcore.cli import main

pytest.importorskip("ale_py")

FIELDS = ("obs", "action", "reward", "terminated", "truncated", "bootstrap_obs", "final_obs",
          "final_idx", "episode_returns", "episode_lengths")


def worker(overlap: bool, epsilon: float, num_envs: int = 4, seed: int = 3,
           inference: str = "numpy"):
    from rlcore.actors.worker import RolloutWorker, rollout_worker_spec
    from rlcore.config import load_experiment
    from rlcore.run.checks import check_spaces

    exp = load_experiment("experiments/dqn_pong.yaml", [
        "env.id=rlcore/PongNative-v5", f"env.num_envs={num_envs}", "rollout.num_actors=0",
        "rollout.fragment_length=16", f"algo.eps_start={epsilon}", f"algo.eps_end={epsilon}",
        "env.kwargs={max_episode_steps: 24}", f"rollout.overlap={str(overlap).lower()}",
        f"seed={seed}", f"rollout.inference={inference}"])
    spaces = check_spaces(exp)
    return RolloutWorker(**rollout_worker_spec(exp, spaces).kwargs(0, 0, False))


def fragments(w, n=4):
    try:
        return [w.work({"env_steps": 0, "num_actors": 1}) for _ in range(n)]
    finally:
        w.close()


def same(a, b) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y), name


@pytest.mark.parametrize("inference", ["numpy", "torch"])
def test_a_greedy_policy_gives_the_unsplit_loops_data(inference):
    """Four fragments of 16 steps over 4 sub-envs whose episodes are cut at 24 steps: every
    field of every fragment equals the unsplit worker's (truncations and their final
    observations included), with the numpy network and with torch's (the Atari files')."""
    plain = fragments(worker(False, 0.0, inference=inference))
    split = fragments(worker(True, 0.0, inference=inference))
    assert sum(len(f.final_idx) for f in plain) == 8  # every sub-env truncated twice
    for a, b in zip(plain, split):
        same(a, b)


def test_sampled_actions_repeat_for_a_seed_and_the_halves_take_their_own_seeds():
    """With epsilon 0.5 the actions are drawn half by half: two split workers with one seed give
    the same fragments; the first observations (the resets) equal the unsplit worker's."""
    a, b = fragments(worker(True, 0.5), 3), fragments(worker(True, 0.5), 3)
    for x, y in zip(a, b):
        same(x, y)
    plain = fragments(worker(False, 0.5), 1)[0]
    assert np.array_equal(plain.obs[0], a[0].obs[0])
    assert not np.array_equal(plain.action, a[0].action)


def test_an_odd_count_splits_into_unequal_halves():
    plain, split = fragments(worker(False, 0.0, num_envs=3), 2), fragments(worker(True, 0.0, 3), 2)
    for a, b in zip(plain, split):
        same(a, b)


@pytest.mark.parametrize("sets, message", [
    (["env.id=CartPole-v1"],
     "rollout.overlap needs an env that steps in its own threads"),
    (["env.num_envs=1"], "a worker has 1 (env.num_envs 1 over 1 worker(s)); raise env.num_envs "
                         "to at least 2"),
    (["file=ppo", "env.normalize_obs=true"], "does not go with env.normalize_obs/normalize_reward"),
])
def test_overlap_where_nothing_would_overlap_is_refused(capsys, sets, message):
    name = sets[0][5:] if sets[0].startswith("file=") else "dqn"
    argv = ["validate", f"experiments/{name}_pong.yaml", "--set", "env.id=rlcore/PongNative-v5",
            "--set", "rollout.overlap=true", "--set", "env.kwargs={}"]
    for s in sets[name != "dqn":]:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "rollout.overlap: false" in err


def test_ppo_and_dqn_runs_with_overlapping_halves(tmp_path):
    """Both regimes' inline runs on the native Pong env with the overlap: log-probs from both
    halves reach PPO's update, transitions reach DQN's replay."""
    import json

    base = ["--set", "env.id=rlcore/PongNative-v5", "--set", "rollout.overlap=true",
            "--set", "env.kwargs={}", "--set", "stop.num_env_steps=256",
            "--set", "eval.every_env_steps=0", "--set", "logging.progress_every_s=0",
            "--set", "checkpoint.every_env_steps=0", "--set", "learner.torch_threads=1",
            "--set", "rollout.num_actors=0", "--set", "env.num_envs=4",
            "--set", "rollout.fragment_length=32"]
    extra = {"ppo": ["learner.minibatch_size=32", "learner.num_epochs=1"],
             "dqn": ["algo.learning_starts=64", "algo.buffer_size=1000", "algo.batch_size=8"]}
    for algo, sets in extra.items():
        run_dir = tmp_path / algo
        argv = ["run", f"experiments/{algo}_pong.yaml", "--run-dir", str(run_dir), *base]
        for s in sets:
            argv += ["--set", s]
        assert main(argv) == 0, algo
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["env_steps"] >= 256 and summary["updates"] > 0, algo
