"""The replay driver end to end (short runs): summary, checkpoints with replay, resume,
Ctrl-C, and wrong action spaces caught at validation with a fitting suggestion."""

import json

import numpy as np

import pytest

from rlcore.run import checkpoint
from rlcore.cli import main
from rlcore.config import load_experiment
from rlcore.run.logging import RunLogger
from rlcore.run.lifecycle import make_run
from rlcore.regimes.transition import Transition
from rlcore.run.lifecycle import Run

SHORT = ["stop.num_env_steps=1600", "stop.eval_return=null", "eval.every_env_steps=0",
         "eval.episodes=2", "algo.learning_starts=500", "logging.progress_every_s=0",
         "learner.torch_threads=1", "algo.hidden_sizes=[32]"]


def sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.mark.parametrize("algorithm,env_id,suggestion", [
    ("dqn", "Pendulum-v1", "dqn needs a discrete action space; 'Pendulum-v1' has Box(-2.0, 2.0, "
                           "(1,)); try another algorithm: cem_mpc or ddpg or ilqr_mpc or sac or "
                           "td3"),
    ("td3", "CartPole-v1", "td3 needs a box action space; 'CartPole-v1' has Discrete(2); try "
                           "another algorithm: c51 or dqn or lqr or qrdqn"),
    # lqr knows CartPole's model only: not suggested for another discrete env
    ("td3", "Acrobot-v1", "td3 needs a box action space; 'Acrobot-v1' has Discrete(3); try "
                          "another algorithm: c51 or dqn or qrdqn"),
])
def test_validate_rejects_the_wrong_action_space_and_suggests_a_fitting_algorithm(
        tmp_path, capsys, algorithm, env_id, suggestion):
    path = tmp_path / "exp.yaml"
    path.write_text(f"algorithm: {algorithm}\nenv:\n  id: {env_id}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:3: {suggestion}"), err


def test_make_trainer_dispatches_the_transition_regime(tmp_path):
    exp = load_experiment("experiments/dqn_cartpole.yaml", SHORT)
    trainer = make_run(exp, tmp_path)
    trainer.pool.close()
    assert isinstance(trainer.regime, Transition)


def test_short_run_checkpoints_replay_and_resume_continues(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "experiments/dqn_cartpole.yaml", "--run-dir", str(run_dir),
                 *sets(SHORT + ["algo.checkpoint_replay=true"])]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algorithm"] == "dqn" and summary["env_steps"] == 1600
    # replay ratio 0.5 after 500 learning-start steps: int(0.5 * 1101) updates
    assert summary["updates"] == 550 and summary["replay_size"] == 1600
    assert summary["batch_size"] == 64 and summary["eval_episodes"] == 2
    assert summary["policy_lag_mean"] == 0.0  # inline: the actor always has the newest weights
    last = checkpoint.complete_checkpoints(run_dir)[-1]
    assert (last / "replay.npz").is_file()

    assert main(["resume", str(run_dir), "--set", "stop.num_env_steps=2000"]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["env_steps"] == 2000 and resumed["updates"] == int(0.5 * 1501)
    assert resumed["replay_size"] == 2000  # the saved replay came back, then 400 more steps


def test_resume_without_saved_replay_warns_and_does_not_burst_catch_up_updates(tmp_path,
                                                                                capsys):
    """Without algo.checkpoint_replay the replay restarts empty: a loud warning, updates pause
    until learning_starts new transitions are in, and the missed ones are not caught up (a
    burst of them on a nearly empty replay once set a Pendulum run back from -152 to -346)."""
    run_dir = tmp_path / "run"
    assert main(["run", "experiments/dqn_cartpole.yaml", "--run-dir", str(run_dir),
                 *sets(SHORT)]) == 0
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["updates"] == 550
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--set", "stop.num_env_steps=2400"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: " in err and "holds no replay (algo.checkpoint_replay was off)" in err
    assert "the updates missed meanwhile are not caught up" in err
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["env_steps"] == 2400 and resumed["replay_restarted_empty_at"] == 1600
    # 0.5 per env step from 1600 + 500 on: int(0.5 * 301) more updates, not a catch-up of 400
    assert resumed["updates"] == 550 + 150 and resumed["replay_size"] == 800


def test_ctrl_c_writes_a_checkpoint_and_the_summary(tmp_path, monkeypatch):
    exp = load_experiment("experiments/dqn_cartpole.yaml", SHORT)
    trainer = Run(exp, tmp_path)
    calls = {"n": 0}
    real = trainer.regime.train_step

    def interrupted(progress):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(progress)

    monkeypatch.setattr(trainer.regime, "train_step", interrupted)
    logger = RunLogger(tmp_path, 0, 0)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(logger)
    logger.close()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["updates"] == 19
    assert checkpoint.complete_checkpoints(tmp_path)[-1].name == f"step_{summary['env_steps']:012d}"


@pytest.mark.parametrize("algorithm", ["dqn", "c51", "qrdqn"])
def test_prioritized_n_step_dueling_run_updates_priorities(tmp_path, algorithm):
    exp = load_experiment(f"experiments/{algorithm}_cartpole.yaml", SHORT + [
        "algo.prioritized=true", "algo.n_step=3", "algo.dueling=true", "stop.num_env_steps=800"])
    trainer = Run(exp, tmp_path)
    logger = RunLogger(tmp_path, 0, 0)
    summary = trainer.run(logger)
    logger.close()
    buf = trainer.regime.buffer
    assert summary["updates"] == 150
    leaves = buf.tree.get(np.arange(buf.capacity))
    # sampled transitions got |TD|-based priorities; the rest still hold the running maximum
    assert len(np.unique(leaves[leaves > 0])) > 100
    assert leaves[~buf.complete.reshape(-1)].sum() == 0


def test_learner_keys_that_replay_does_not_use_are_reported(tmp_path):
    from rlcore.errors import ConfigError

    path = tmp_path / "exp.yaml"
    path.write_text("algorithm: dqn\nenv:\n  id: CartPole-v1\nlearner:\n  num_epochs: 4\n"
                    "  minibatch_size: 64\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.problems == [
        f"{path}:5: learner.num_epochs does not apply to dqn (replay takes one optimizer step per "
        "sampled batch of algo.batch_size); remove it, or set algo.batch_size / algo.replay_ratio",
        f"{path}:6: learner.minibatch_size does not apply to dqn (replay takes one optimizer step "
        "per sampled batch of algo.batch_size); remove it, or set algo.batch_size / "
        "algo.replay_ratio"]


def test_resume_with_a_replay_of_another_shape_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "experiments/dqn_cartpole.yaml", "--run-dir", str(run_dir),
                 *sets(SHORT + ["algo.checkpoint_replay=true", "stop.num_env_steps=600"])]) == 0
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--set", "env.num_envs=2"]) == 2
    err = capsys.readouterr().err
    assert "replay.npz: 'frames' has shape (1, 100000, 4), this buffer (2, 50000, 4)" in err
    assert "resume with the run's own algo.buffer_size and env.num_envs" in err


@pytest.mark.parametrize("experiment", ["dqn_pong.yaml", "ppo_pong.yaml"])
def test_atari_files_start_collect_and_update(tmp_path, experiment):
    """The shipped Atari files as they stand (DQN's on ale-py's native vector env, PPO's on the
    wrapped Gymnasium env): a few hundred steps with updates, no error."""
    run_dir = tmp_path / "run"
    short = ["stop.num_env_steps=256", "eval.every_env_steps=0", "logging.progress_every_s=0",
             "checkpoint.every_env_steps=0", "learner.torch_threads=1", "rollout.num_actors=0",
             "env.num_envs=2", "rollout.fragment_length=32"]
    if experiment.startswith("dqn"):
        short += ["algo.learning_starts=64", "algo.buffer_size=1000", "algo.batch_size=8"]
    else:
        short += ["learner.minibatch_size=32", "learner.num_epochs=1"]
    assert main(["run", f"experiments/{experiment}", "--run-dir", str(run_dir), *sets(short)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 256 and summary["updates"] > 0
