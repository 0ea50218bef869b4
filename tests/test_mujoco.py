"""MuJoCo: the env plugin, the experiment files, and CI-sized learning with normalization."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlcore.config import load_experiment
from rlcore.run.checks import check_spaces
from rlcore.run.lifecycle import train_experiment
from rlcore.registry import ensure_env_registered

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
FILES = ["ppo_halfcheetah", "ppo_hopper", "trpo_halfcheetah", "trpo_hopper", "ppo_inverted_pendulum"]


def test_rlcore_ids_are_gymnasiums_tasks_with_float32_observations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Gymnasium's own id lets MuJoCo write MUJOCO_LOG.TXT here
    ensure_env_registered("rlcore/HalfCheetah-v5")
    ours, theirs = gym.make("rlcore/HalfCheetah-v5"), gym.make("HalfCheetah-v5")
    try:
        assert ours.observation_space.dtype == np.float32 and ours.observation_space.shape == (17,)
        assert ours.action_space == theirs.action_space
        a, _ = ours.reset(seed=3)
        b, _ = theirs.reset(seed=3)
        np.testing.assert_allclose(a, b.astype(np.float32))
        action = np.full(6, 0.3, np.float32)
        for _ in range(999):  # same dynamics and reward, and Gymnasium's 1000-step limit
            a, ra, ta, tra, _ = ours.step(action)
            b, rb, tb, trb, _ = theirs.step(action)
            assert a.dtype == np.float32 and ra == rb and (ta, tra) == (tb, trb) == (False, False)
        assert ours.step(action)[3] and theirs.step(action)[3]
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("name", FILES)
def test_experiment_files_validate_with_their_env(name):
    exp = load_experiment(EXPERIMENTS / f"{name}.yaml")
    spaces = check_spaces(exp)
    assert spaces.action_kind == "box"
    assert exp.config.env.normalize_obs


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("algorithm,overrides", [("ppo", []), ("trpo", ["learner.num_epochs=5"])])
def test_inverted_pendulum_reaches_1000_within_60k_steps(tmp_path, algorithm, overrides):
    summary, trainer = train_experiment(EXPERIMENTS / "ppo_inverted_pendulum.yaml", tmp_path,
                                        [f"algorithm={algorithm}", *overrides])
    assert summary["stop_reason"] == "eval_return", summary["evals"]
    assert summary["eval_return_mean"] >= 1000 and summary["env_steps"] <= 60_000
    # the run's normalization statistics counted every step once and went into the checkpoint
    assert trainer.learner.normalizer.obs.count == summary["env_steps"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sac_inverted_pendulum_reaches_1000(tmp_path):
    summary, _ = train_experiment(EXPERIMENTS / "sac_inverted_pendulum.yaml", tmp_path)
    assert summary["stop_reason"] == "eval_return", summary["evals"]
    assert summary["eval_return_mean"] >= 1000 and summary["env_steps"] <= 20_000


def test_float64_observations_are_cast_to_float32_for_training(tmp_path, monkeypatch, capsys):
    """Gymnasium's own MuJoCo ids declare float64 observations; they used to reach the float32
    networks as float64 and stop the run after every worker restart ("mat1 and mat2 must have
    the same dtype"). The env's observations are cast once, in the env."""
    from rlcore.actors.worker import make_vec_env, probe_spaces
    from rlcore.cli import main

    monkeypatch.chdir(tmp_path)
    assert gym.make("InvertedPendulum-v5").observation_space.dtype == np.float64
    spec = probe_spaces("InvertedPendulum-v5")
    assert spec.obs_dtype == "float32" and spec.obs_shape == (4,)
    envs = make_vec_env("InvertedPendulum-v5", 2)
    obs, _ = envs.reset(seed=0)
    assert obs.dtype == np.float32 and envs.single_observation_space.dtype == np.float32
    assert envs.step(np.zeros((2, 1), np.float32))[0].dtype == np.float32
    envs.close()
    code = main(["run", str(EXPERIMENTS / "ppo_cartpole.yaml"), "--run-dir", str(tmp_path / "r"),
                 "--set", "env.id=InvertedPendulum-v5", "--set", "env.num_envs=2",
                 "--set", "rollout.num_actors=0", "--set", "stop.num_env_steps=256",
                 "--set", "learner.minibatch_size=0", "--set", "eval.episodes=1",
                 "--set", "logging.progress_every_s=0"])
    assert code == 0, capsys.readouterr().err
