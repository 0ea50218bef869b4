"""The run folder's writers on storage that turns read-only or vanishes (BAD_INPUTS.md row 24's
siblings): the TensorBoard writer, checkpoints and summary.json end in one clean error (exit 2,
what, where, fix, no traceback); a resume into a folder that takes no writes is refused before
anything starts. Read-only storage is real: a read-only bind mount in a private mount namespace
(``unshare -m``), so no permission bit or root privilege hides it."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlcore.run import checkpoint

pytestmark = pytest.mark.timeout(180)
RLCORE = [sys.executable, "-m", "rlcore.cli"]
needs_mounts = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare")
    or not shutil.which("nsenter"),
    reason="a read-only bind mount needs root and util-linux's unshare/nsenter (Linux)")


def experiment(tmp_path, steps: int) -> str:
    data = {"algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "num_envs": 4},
            "rollout": {"num_actors": 0, "fragment_length": 16},
            "learner": {"num_epochs": 1, "minibatch_size": 0},
            "stop": {"num_env_steps": steps}, "eval": {"episodes": 1, "every_env_steps": 0},
            "checkpoint": {"every_env_steps": 256}, "logging": {"progress_every_s": 0.05}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def in_private_mount_ns(runs: Path, argv: list[str], read_only: bool) -> subprocess.Popen:
    """``argv`` in a new mount namespace where ``runs`` is a bind mount of itself (read-only
    from the start if asked); the caller may remount it read-only later with ``nsenter``."""
    ro = f" && mount -o remount,bind,ro {runs} {runs}" if read_only else ""
    script = f"mount --bind {runs} {runs}{ro} && exec \"$@\""
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                             "sh", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_progress(proc: subprocess.Popen, steps: int) -> None:
    """Read the run's console until it reports at least ``steps`` env steps."""
    for line in proc.stdout:
        if "steps" in line and "/" in line:
            done = int(line.split("steps")[1].split("/")[0].replace(",", ""))
            if done >= steps:
                return
    raise AssertionError(f"the run ended before {steps} steps: {proc.stderr.read()}")


def stopped_by(proc: subprocess.Popen, steps: int, fault) -> str:
    """Let the run reach ``steps`` env steps, apply ``fault()``, wait for the run to stop; it
    must stop with exit 3 (failed after it started) and no traceback. Returns its stderr."""
    try:
        wait_for_progress(proc, steps)
        fault()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "Exception in thread" not in err
    return err


@needs_mounts
def test_resume_into_a_read_only_run_folder_is_refused_before_anything_starts(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    path = experiment(tmp_path, 512)
    done = subprocess.run([*RLCORE, "run", path, "--run-dir", str(runs / "r")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before = sorted(str(p.relative_to(runs)) for p in runs.rglob("*"))
    proc = in_private_mount_ns(runs, [*RLCORE, "resume", str(runs / "r"), "--set",
                                      "stop.num_env_steps=1024"], read_only=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert err == (f"error: {runs / 'r'}: cannot write there (Read-only file system); resume "
                   "writes checkpoints, summary.json and TensorBoard events into the run folder. "
                   f"Make it writable, or resume a copy: cp -r {runs / 'r'} NEW_DIR && rlcore "
                   "resume NEW_DIR\n")
    assert "rlcore: ppo" not in out  # nothing started
    assert sorted(str(p.relative_to(runs)) for p in runs.rglob("*")) == before


@needs_mounts
def test_a_run_folder_turned_read_only_mid_run_stops_cleanly_and_resumes_later(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    run_dir = runs / "r"
    proc = in_private_mount_ns(runs, [*RLCORE, "run", experiment(tmp_path, 10_000_000),
                                      "--run-dir", str(run_dir)], read_only=False)
    remount = ["nsenter", "-t", str(proc.pid), "-m", "mount", "-o", "remount,bind,ro",
               str(runs), str(runs)]

    def make_read_only() -> None:
        # The kernel refuses a read-only remount (EBUSY, "mount point is busy") while a file on
        # the mount is open for writing; the run opens its event file and checkpoints only for
        # the moment of a write, so try again until the remount lands between two writes.
        for _ in range(400):
            done = subprocess.run(remount, capture_output=True, text=True)
            if done.returncode == 0:
                return
            assert "busy" in done.stderr, done.stderr
            time.sleep(0.01)
        raise AssertionError(f"the mount stayed busy through 400 remounts: {done.stderr}")

    # past the checkpoint at 256 steps
    err = stopped_by(proc, 600, make_read_only)
    # whichever writer comes first: the TensorBoard writer, or a checkpoint falling due
    assert (err.startswith(f"error: cannot write TensorBoard events to the run folder {run_dir} "
                           "(Read-only file system); it was made read-only, filled up or "
                           "removed.")
            or re.match(rf"error: cannot write the checkpoint of step \d+ under "
                        rf"{re.escape(str(run_dir / 'checkpoints'))} \(Read-only file "
                        rf"system\); the previous checkpoint ", err)), err
    assert "the run stopped at " in err and f"rlcore resume {run_dir}" in err
    # Nothing lost: outside that namespace the folder is writable, and the run continues from
    # the checkpoint written before the folder turned read-only.
    saved = [p.name for p in checkpoint.complete_checkpoints(run_dir)]
    assert saved and int(saved[-1].split("_")[1]) >= 256
    resumed = subprocess.run([*RLCORE, "resume", str(run_dir), "--set",
                              f"stop.num_env_steps={int(saved[-1].split('_')[1]) + 256}"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {run_dir / 'checkpoints' / saved[-1]}" in resumed.stdout


def test_a_run_folder_removed_mid_run_stops_cleanly_with_a_checkpoint(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    proc = subprocess.Popen([*RLCORE, "run", experiment(tmp_path, 10_000_000), "--run-dir",
                             str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    gone = tmp_path / "gone"

    def remove() -> None:
        # One atomic step (as the run sees it): a plain rmtree races the run's own writes,
        # which can add a file between rmtree's listing and its final rmdir.
        run_dir.rename(gone)
        shutil.rmtree(gone)

    err = stopped_by(proc, 300, remove)
    assert err.startswith(f"error: cannot write TensorBoard events to the run folder {run_dir} "
                          "(No such file or directory); it was made read-only, filled up or "
                          "removed.")
    # The stop writes what it can: the folder is made again and holds the state at the stop.
    saved = checkpoint.complete_checkpoints(run_dir)
    assert len(saved) == 1 and f"checkpoint {saved[0]} written" in err
