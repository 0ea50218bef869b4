"""Run directories end to end: run -> summary, eval, resume without duplicated steps,
checkpoints that survive an interrupted write."""

import json
import shutil

import pytest
import torch

from rlcore.run import checkpoint
from rlcore.cli import main
from rlcore.errors import CheckpointError

pytestmark = pytest.mark.timeout(300)

SUMMARY_KEYS = {"algorithm", "env", "seed", "env_steps", "wall_s", "eval_return_mean",
                "eval_return_std", "eval_episodes", "grad_noise_scale", "versions"}


def run(tmp_path, *extra):
    run_dir = tmp_path / "run"
    rc = main(["run", "experiments/ppo_cartpole.yaml", "--run-dir", str(run_dir),
               "--set", "rollout.num_actors=0", "--set", "env.num_envs=8",
               "--set", "stop.num_env_steps=2048",
               "--set", "eval.every_env_steps=0", "--set", "eval.episodes=2",
               "--set", "checkpoint.every_env_steps=1024", "--set", "logging.progress_every_s=0",
               *extra])
    assert rc == 0
    return run_dir


def scalar_steps(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_run_eval_resume(tmp_path, capsys):
    run_dir = run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["algorithm"] == "ppo" and summary["env_steps"] == 2048
    assert summary["eval_episodes"] == 2
    assert (run_dir / "config.yaml").is_file()
    assert [p.name for p in checkpoint.complete_checkpoints(run_dir)] == [
        "step_000000001024", "step_000000002048"]
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {run_dir}" in out

    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"eval_return_mean", "eval_return_std", "eval_episodes"} <= set(result)
    assert result["eval_episodes"] == 3 and result["env_steps"] == 2048

    before = scalar_steps(run_dir, "learner/loss")
    assert main(["resume", str(run_dir), "--set", "stop.num_env_steps=4096"]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["env_steps"] == 4096
    assert resumed["resumed_from"]["checkpoint"].endswith("step_000000002048")
    steps = scalar_steps(run_dir, "learner/loss")
    assert steps[:len(before)] == before
    assert len(steps) == len(set(steps)) == 16 and steps == sorted(steps)


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, capsys):
    run_dir = run(tmp_path)
    ckpts = checkpoint.complete_checkpoints(run_dir)
    # a crash mid-write leaves a temporary folder: ignored
    (run_dir / "checkpoints" / ".tmp-crashed").mkdir()
    (run_dir / "checkpoints" / ".tmp-crashed" / "weights.pt").write_bytes(b"\x00" * 10)
    # and a truncated latest weights file: skipped, the previous one is used
    latest = ckpts[-1] / "weights.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    meta = json.loads((run_dir / "checkpoints" / ckpts[0].name / "meta.json").read_text())
    path, meta2, _ = checkpoint.load_latest(run_dir, "ppo", meta["spaces"], torch.device("cpu"))
    assert path == ckpts[0]
    assert meta2["skipped"] and ckpts[-1].name in meta2["skipped"][0]


def test_checkpoint_of_another_algorithm_is_refused_before_loading(tmp_path):
    run_dir = run(tmp_path)
    meta = json.loads((checkpoint.complete_checkpoints(run_dir)[-1] / "meta.json").read_text())
    for p in checkpoint.complete_checkpoints(run_dir):
        (p / "weights.pt").write_bytes(b"not a checkpoint")  # never read
    with pytest.raises(CheckpointError, match="written by algorithm 'ppo', not 'pg'"):
        checkpoint.load_latest(run_dir, "pg", meta["spaces"], torch.device("cpu"))
    other = dict(meta["spaces"], obs_shape=[8])
    with pytest.raises(CheckpointError, match="trained on spaces"):
        checkpoint.load_latest(run_dir, "ppo", other, torch.device("cpu"))


def test_checkpoints_load_without_pickle(tmp_path):
    run_dir = run(tmp_path)
    latest = checkpoint.complete_checkpoints(run_dir)[-1]
    torch.load(latest / "weights.pt", weights_only=True)  # raises if anything needs unpickling
    shutil.rmtree(run_dir / "checkpoints")
    with pytest.raises(CheckpointError, match="no loadable checkpoint"):
        checkpoint.load_latest(run_dir, "ppo", {}, torch.device("cpu"))


def test_trainer_is_reproducible_inline(tmp_path):
    """The learner is built in a thread beside the rollout pool: both draw initial weights from
    torch's generator, and the same seed must still give the same run."""
    from rlcore.config import load_experiment
    from rlcore.run.logging import RunLogger
    from rlcore.run.lifecycle import Run

    def first_updates(i):
        exp = load_experiment("experiments/ppo_cartpole.yaml", [
            "rollout.num_actors=0", "env.num_envs=8", "stop.num_env_steps=768",
            "eval.every_env_steps=0", "eval.episodes=1", "logging.progress_every_s=0"])
        trainer = Run(exp, tmp_path / f"r{i}")
        init = {k: v.clone() for k, v in trainer.learner.modules["ac"].state_dict().items()}
        logger = RunLogger(tmp_path / f"r{i}", 0, 0)
        trainer.run(logger)
        logger.close()
        return init, trainer.learner.modules["ac"].state_dict()

    (init_a, end_a), (init_b, end_b) = first_updates(0), first_updates(1)
    assert all(torch.equal(init_a[k], init_b[k]) for k in init_a)
    assert all(torch.equal(end_a[k], end_b[k]) for k in end_a)


def test_ctrl_c_inside_a_tensorboard_write_arrives_after_it():
    import os
    import signal

    from rlcore.run.logging import interrupts_after

    # Python's own handler, as under a terminal: a shell's background job (CI started with
    # `cmd &`) hands SIGINT down ignored, and then there is nothing to deliver
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with interrupts_after():
                os.kill(os.getpid(), signal.SIGINT)  # delivered to this (main) thread at once ...
                reached.append("end of block")  # ... but held until the block ends
        assert reached == ["end of block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
        with interrupts_after():  # nothing pending: nothing raised
            pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an ignored Ctrl-C stays ignored
        with interrupts_after():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outer)


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_resume_continues(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlcore.cli", "run", "experiments/ppo_cartpole.yaml",
         "--run-dir", str(run_dir), "--set", "rollout.num_actors=0", "--set", "env.num_envs=8",
         "--set", "stop.num_env_steps=10000000", "--set", "stop.eval_return=null",
         "--set", "eval.every_env_steps=0", "--set", "logging.progress_every_s=0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a shell's background job would otherwise hand SIGINT down ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until training is under way
        if "steps/s" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"rlcore resume {run_dir}" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    saved = summary["env_steps"]
    assert saved > 0
    assert checkpoint.complete_checkpoints(run_dir)[-1].name == f"step_{saved:012d}"

    assert main(["resume", str(run_dir), "--set", f"stop.num_env_steps={saved + 512}",
                 "--set", "eval.episodes=1"]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["env_steps"] == saved + 512
    steps = scalar_steps(run_dir, "learner/loss")
    assert len(steps) == len(set(steps)) and steps == sorted(steps)
