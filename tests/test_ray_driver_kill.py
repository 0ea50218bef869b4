"""A local Ray that rlcore starts ends with its driver, however the driver ends: a SIGKILL of the
driver leaves no Ray process behind 10 s later (without ``rlcore.actors.reaper``,
``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` were still there 20 s later), and a run
that ends normally, or a ``ray.shutdown()`` in a driver that goes on, leaves no reaper."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from rlcore.actors.reaper import alive, descendants, process_table

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

ROOT = Path(__file__).resolve().parents[1]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tree(pid: int) -> dict[int, int]:
    """The live descendants of ``pid``: PID -> start time."""
    table = process_table()
    return {p: table[p][2] for p in descendants([pid], table) if alive(p, table[p][2], table)}


def still_there(procs: dict[int, int]) -> dict[int, str]:
    table = process_table()
    return {p: cmdline(p) for p, start in procs.items() if alive(p, start, table)}


def kill_left(procs: dict[int, int]) -> None:
    """Clean-up: SIGKILL what is still there of ``procs`` (the same processes, by start time)."""
    for pid in still_there(procs):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def start_driver(tmp_path, num_actors: int, steps: int,
                 inline_start: bool = False) -> subprocess.Popen:
    """``rlcore run`` of PPO CartPole with ``num_actors`` Ray actors (by default without the
    inline start: the actors work from the first round)."""
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "num_envs": 2 * num_actors},
        "rollout": {"num_actors": num_actors, "fragment_length": 16,
                    "inline_start": inline_start},
        "learner": {"num_epochs": 1, "minibatch_size": 0},
        "stop": {"num_env_steps": steps}, "eval": {"episodes": 1},
        "logging": {"progress_every_s": 0}, "ray": {"num_cpus": 2}}))
    with open(tmp_path / "driver.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "rlcore.cli", "run", str(exp),
                                 "--run-dir", str(tmp_path / "run")],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_until_gone(procs: dict[int, int], within_s: float) -> tuple[float, dict[int, str]]:
    t0 = time.monotonic()
    while True:
        left = still_there(procs)
        took = time.monotonic() - t0
        if not left or took > within_s:
            return took, left
        time.sleep(0.05)


def test_a_sigkilled_driver_takes_its_local_ray_with_it(tmp_path):
    driver = start_driver(tmp_path, num_actors=2, steps=10_000_000)
    seen: dict[int, int] = {}
    try:
        # up: both actors run (their processes took the actor's name) and the raylet's agents
        deadline = time.monotonic() + 180
        while True:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            procs = tree(driver.pid)
            seen.update(procs)
            names = [cmdline(p) for p in procs]
            if (sum(n.startswith("ray::WorkerHost") for n in names) == 2
                    and any(n.startswith("ray::DashboardAgent") for n in names)
                    and any(n.startswith("ray::RuntimeEnvAgent") for n in names)):
                break
            assert time.monotonic() < deadline, f"Ray did not come up: {names}"
            time.sleep(0.2)
        assert any("reaper.py" in n for n in names)
        assert any("raylet" in n for n in names) and any("gcs_server" in n for n in names)

        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        took, left = wait_until_gone(procs, 10.0)
        assert not left, f"still there {took:.1f} s after the driver's SIGKILL: {left}"
        print(f"all {len(procs)} processes of the driver's Ray gone {took:.2f} s after SIGKILL")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        kill_left(seen)


@pytest.mark.parametrize("inline_start", [False, True])
def test_a_run_that_ends_normally_leaves_no_ray_process_and_no_reaper(tmp_path, inline_start):
    """Also with the inline start, where a 64-step run ends before Ray is up: it waits for
    the start, closes the actors, and leaves nothing."""
    driver = start_driver(tmp_path, num_actors=1, steps=64, inline_start=inline_start)
    seen: dict[int, int] = {}
    try:
        names: set[str] = set()  # a Ray worker takes its actor's name once it holds one
        while driver.poll() is None:  # everything the run starts, as it starts it
            procs = tree(driver.pid)
            seen.update(procs)
            names.update(cmdline(p) for p in procs)
            time.sleep(0.1)
        assert driver.returncode == 0, (tmp_path / "driver.log").read_text()[-3000:]
        assert any("reaper.py" in n for n in names)
        if not inline_start:
            assert any(n.startswith("ray::WorkerHost") for n in names)
        else:  # the run ended inline, then closed the actors Ray had started meanwhile
            log = (tmp_path / "driver.log").read_text()
            assert "take over" not in log
            summary = json.loads((tmp_path / "run" / "summary.json").read_text())
            assert summary["inline_start"] is None and summary["env_steps"] == 64
        _, left = wait_until_gone(seen, 10.0)
        assert not left, f"left behind by a run that ended normally: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        kill_left(seen)


def test_ray_shutdown_in_a_driver_that_goes_on_ends_its_reaper():
    import ray

    from rlcore.actors.ray_setup import init_ray

    if ray.is_initialized():  # a Ray another test module left: this test starts its own
        ray.shutdown()
    before = set(tree(os.getpid()))
    init_ray(SimpleNamespace(address=None, num_cpus=2, connect_timeout_s=0), 1)
    started: dict[int, int] = {}
    try:
        started = {p: s for p, s in tree(os.getpid()).items() if p not in before}
        reapers = {p: s for p, s in started.items()
                   if "reaper.py" in cmdline(p) and cmdline(p).split()[-1] == str(os.getpid())}
        assert len(reapers) == 1
        ray.shutdown()
        _, left = wait_until_gone(reapers, 10.0)
        assert not left, "the reaper outlived ray.shutdown()"
        _, left = wait_until_gone(started, 10.0)
        assert not left, f"left behind by ray.shutdown(): {left}"
    finally:
        ray.shutdown()
        kill_left(started)
