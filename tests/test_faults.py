"""Faults on the inline path (no Ray): NaN/inf from the env or the loss under their policies, a
full disk, and checkpoint writes cut short (BAD_INPUTS.md rows 12, 13, 15, 24)."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from rlcore.learner import core as learner
from rlcore.run import checkpoint
from rlcore.cli import main

from fault_envs import MODULE_ID
from test_runs import scalar_steps

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def experiment(tmp_path, **sections) -> str:
    data = {"algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "num_envs": 4},
            "rollout": {"num_actors": 0, "fragment_length": 16},
            "learner": {"num_epochs": 1, "minibatch_size": 0},
            "stop": {"num_env_steps": 256}, "eval": {"episodes": 1},
            "checkpoint": {"every_env_steps": 64}, "logging": {"progress_every_s": 0}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def rlcore(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def tb_last(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return acc.Scalars(tag)[-1].value


def ckpt_names(run_dir):
    return [p.name for p in checkpoint.complete_checkpoints(run_dir)]


# ------------------------------------------------------------------ env NaN (row 12)


def test_nonfinite_observation_stops_with_a_located_error_and_a_checkpoint(tmp_path, capsys):
    path = experiment(tmp_path, env={"id": MODULE_ID, "kwargs": {"fault": "nan", "after": 70}},
                      stop={"num_env_steps": 1024})
    run_dir = tmp_path / "run"
    code, err = rlcore(capsys, "run", path, "--run-dir", str(run_dir))
    assert code == 3  # failed after it started
    # steps 65..80 of each sub-env are the fifth fragment; the NaN comes at step 70 (t = 5)
    assert "env 'tests.fault_envs:rlcore-test/Fault-v0': non-finite obs from actor 0, sub-env 0, " \
           "returned by the step at fragment step 5 (actor step 276), last action " in err
    assert "rollout.nonfinite=stop; set it to drop" in err
    assert f"the run stopped at 256 env steps (checkpoint {run_dir / 'checkpoints'}" in err
    assert f"continue with: rlcore resume {run_dir}" in err
    assert ckpt_names(run_dir)[-1] == "step_000000000256"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed"
    assert summary["error"].startswith("EnvRuntimeError: env 'tests.fault_envs")


def test_nonfinite_final_observation_of_a_truncated_episode_is_caught(tmp_path, capsys):
    """A NaN only in the observation a truncation hands back (the reset's follows it): the
    learner would bootstrap from it, so it stops the run like any other non-finite input."""
    path = experiment(tmp_path, env={"id": "tests.fault_envs:rlcore-test/FaultShort-v0",
                                     "kwargs": {"fault": "nan_at_episode_step", "after": 5}},
                      stop={"num_env_steps": 1024})
    code, err = rlcore(capsys, "run", path, "--run-dir", str(tmp_path / "run"))
    assert code == 3  # failed after it started
    assert ("non-finite final observation of a truncated episode from actor 0, sub-env 0, "
            "returned by the step at fragment step 4, last action ") in err
    assert "(the learner bootstraps from it)" in err


def test_nonfinite_observation_with_drop_policy_drops_one_fragment_and_finishes(tmp_path, capsys):
    marker = tmp_path / "fault-once"
    marker.touch()
    path = experiment(tmp_path, rollout={"nonfinite": "drop"},
                      env={"id": MODULE_ID, "kwargs": {"fault": "nan", "after": 20,
                                                       "marker": str(marker)}})
    run_dir = tmp_path / "run"
    code, err = rlcore(capsys, "run", path, "--run-dir", str(run_dir))
    assert code == 0, err
    assert not marker.exists()  # the fault fired
    assert "dropped a fragment: env 'tests.fault_envs:rlcore-test/Fault-v0': non-finite obs" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 256 and summary["stop_reason"] == "num_env_steps"
    assert tb_last(run_dir, "actors/dropped_fragments") == 1.0
    assert summary["actor_health"]["dropped_fragments"] == 1  # the count survives the run
    # the dropped fragment is not counted: 256 / 64 = 4 updates at steps 64, 128, 192, 256
    assert scalar_steps(run_dir, "learner/loss") == [64, 128, 192, 256]


def test_drop_policy_stops_after_max_drops_in_a_row(tmp_path, capsys):
    path = experiment(tmp_path, rollout={"nonfinite": "drop", "max_nonfinite_drops": 3},
                      env={"id": MODULE_ID, "kwargs": {"fault": "nan", "after": 20}})
    code, err = rlcore(capsys, "run", path, "--run-dir", str(tmp_path / "run"))
    assert code == 3  # failed after it started
    assert "3 fragments in a row dropped for non-finite values (rollout.max_nonfinite_drops=3)" in err
    assert err.count("dropped a fragment") == 2


# ------------------------------------------------------------------ loss NaN (row 13)


def test_nonfinite_gradients_are_skipped_then_stop_naming_the_checkpoint(tmp_path, capsys,
                                                                          monkeypatch):
    real = torch.nn.utils.clip_grad_norm_
    calls = []

    def nan_after_two_updates(params, max_norm):
        calls.append(1)
        norm = real(params, max_norm)
        return norm if len(calls) <= 2 else norm * float("nan")

    monkeypatch.setattr(learner.torch.nn.utils, "clip_grad_norm_", nan_after_two_updates)
    path = experiment(tmp_path, learner={"max_nonfinite_steps": 3},
                      checkpoint={"every_env_steps": 128}, stop={"num_env_steps": 1024})
    run_dir = tmp_path / "run"
    code, err = rlcore(capsys, "run", path, "--run-dir", str(run_dir))
    assert code == 3  # failed after it started
    assert ("the gradient was non-finite with a finite loss and finite weights (a numerically "
            "unstable operation in the loss: a log, a division or a sqrt at 0) in 3 optimizer "
            "step(s) in a row (learner.nonfinite=skip, learner.max_nonfinite_steps=3)") in err
    # updates 3 and 4 were skipped (weights unchanged), update 5 stopped the run at 320 steps
    assert f"the run stopped at 320 env steps (checkpoint {run_dir / 'checkpoints' / 'step_000000000320'}" in err
    assert ckpt_names(run_dir) == ["step_000000000128", "step_000000000256", "step_000000000320"]
    assert tb_last(run_dir, "learner/skipped_updates") == 2.0
    a, b = (torch.load(run_dir / "checkpoints" / n / "weights.pt", weights_only=True)["modules"]
            for n in ("step_000000000256", "step_000000000320"))
    assert all(torch.equal(a["ac"][k], b["ac"][k]) for k in a["ac"])


# ------------------------------------------------------------------ disk full (row 24)


def test_disk_full_at_a_checkpoint_stops_cleanly_and_keeps_the_previous_one(tmp_path, capsys,
                                                                            monkeypatch):
    real_save = torch.save
    saves = []

    def disk_fills_up(obj, f, *a, **k):
        saves.append(1)
        if len(saves) > 1:
            f.write(b"\x00" * 64)  # part of the file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    run_dir = tmp_path / "run"
    code, err = rlcore(capsys, "run", experiment(tmp_path), "--run-dir", str(run_dir))
    assert code == 3  # failed after it started
    first = run_dir / "checkpoints" / "step_000000000064"
    assert (f"cannot write the checkpoint of step 128 under {run_dir / 'checkpoints'} (No space "
            f"left on device); the previous checkpoint {first} is intact") in err
    assert "the run stopped at 128 env steps" in err and f"rlcore resume {run_dir}" in err
    assert ckpt_names(run_dir) == ["step_000000000064"]
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))
    meta = json.loads((first / "meta.json").read_text())
    path, _, _ = checkpoint.load_latest(run_dir, "ppo", meta["spaces"], torch.device("cpu"))
    assert path == first
    assert json.loads((run_dir / "summary.json").read_text())["error"].startswith("CheckpointError")


def test_disk_full_under_the_tensorboard_writer_stops_cleanly(tmp_path, capsys, monkeypatch):
    from rlcore.run.logging import RunLogger

    real = RunLogger.scalars

    def scalars(self, prefix, values, step):
        if step >= 192:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, prefix, values, step)

    monkeypatch.setattr(RunLogger, "scalars", scalars)
    run_dir = tmp_path / "run"
    code, err = rlcore(capsys, "run", experiment(tmp_path), "--run-dir", str(run_dir))
    assert code == 3  # failed after it started
    assert f"cannot write to the run folder {run_dir} (No space left on device)" in err
    assert ckpt_names(run_dir) == ["step_000000000064", "step_000000000128", "step_000000000192"]


# ------------------------------------------------------------------ interrupted checkpoint writes


def save_two(run_dir):
    t = {"w": torch.arange(4.0)}
    checkpoint.save(run_dir, 10, t, {"algorithm": "x", "spaces": {}})
    checkpoint.save(run_dir, 20, {"w": t["w"] + 1}, {"algorithm": "x", "spaces": {}})


def latest_w(run_dir):
    path, _, tensors = checkpoint.load_latest(run_dir, "x", {}, torch.device("cpu"))
    return path.name, tensors["w"].tolist()


def test_a_failing_rename_leaves_the_previous_checkpoint_latest(tmp_path, monkeypatch):
    save_two(tmp_path)

    def rename_fails(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(checkpoint.os, "rename", rename_fails)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 30, {"w": torch.zeros(4)}, {"algorithm": "x", "spaces": {}})
    monkeypatch.undo()
    assert latest_w(tmp_path) == ("step_000000000020", [1.0, 2.0, 3.0, 4.0])
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_rewriting_a_step_that_fails_midway_keeps_that_step(tmp_path, monkeypatch):
    save_two(tmp_path)
    real = os.rename
    calls = []

    def second_rename_fails(src, dst):  # old step moved aside, new one fails to move in
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(checkpoint.os, "rename", second_rename_fails)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 20, {"w": torch.zeros(4)}, {"algorithm": "x", "spaces": {}})
    monkeypatch.undo()
    assert latest_w(tmp_path) == ("step_000000000020", [1.0, 2.0, 3.0, 4.0])


SAVE_AND_DIE = textwrap.dedent("""
    import os, signal, sys, torch
    from rlcore.run import checkpoint
    real = torch.save
    def save_half_then_die(obj, f, *a, **k):
        f.write(b"PK" + b"\\x00" * 100)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    torch.save = save_half_then_die
    checkpoint.save(sys.argv[1], int(sys.argv[2]), {"w": torch.zeros(4)}, {"algorithm": "x", "spaces": {}})
""")


def test_a_process_killed_in_the_middle_of_a_save_leaves_the_previous_checkpoint(tmp_path):
    save_two(tmp_path)
    for step in (30, 20):  # a new step, and a rewrite of the latest step
        proc = subprocess.run([sys.executable, "-c", SAVE_AND_DIE, str(tmp_path), str(step)],
                              cwd=ROOT, capture_output=True, timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert latest_w(tmp_path) == ("step_000000000020", [1.0, 2.0, 3.0, 4.0])
    assert list((tmp_path / "checkpoints").glob(".tmp-*"))  # the dead writers' leftovers
    checkpoint.save(tmp_path, 40, {"w": torch.ones(4)}, {"algorithm": "x", "spaces": {}})
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # cleaned by the next save
    assert latest_w(tmp_path) == ("step_000000000040", [1.0, 1.0, 1.0, 1.0])


def test_a_process_killed_between_the_renames_of_a_rewrite_keeps_that_step(tmp_path):
    save_two(tmp_path)
    die_after_first_rename = SAVE_AND_DIE.replace("torch.save = save_half_then_die", """
real_rename = os.rename
def rename(src, dst):
    real_rename(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
checkpoint.os.rename = rename""")
    proc = subprocess.run([sys.executable, "-c", die_after_first_rename, str(tmp_path), "20"],
                          cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "checkpoints" / "step_000000000020").exists()
    path, meta, tensors = checkpoint.load_latest(tmp_path, "x", {}, torch.device("cpu"))
    assert path.name.startswith(".replaced-step_000000000020-")
    assert tensors["w"].tolist() == [1.0, 2.0, 3.0, 4.0]
