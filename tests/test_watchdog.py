"""No hang anywhere: an env.step that never returns, inline or in evaluation, stops the run
within the timeout plus a few seconds, with a located message, a checkpoint of the last
completed update and summary.json; a worker that fails every few episodes forever is stopped
by the restart budget. Inline only (no Ray): the default suite."""

import json
import subprocess
import sys
import time

import pytest
import yaml

from rlcore.cli import main

from fault_envs import MODULE_ID
from test_faults import ckpt_names

pytestmark = pytest.mark.timeout(120)

TIMEOUT_S = 2


def write(tmp_path, **sections) -> str:
    data = {"algorithm": "ppo", "seed": 0, "env": {"id": MODULE_ID, "num_envs": 2},
            "rollout": {"num_actors": 0, "fragment_length": 16, "sample_timeout_s": TIMEOUT_S},
            "learner": {"num_epochs": 1, "minibatch_size": 0, "torch_threads": 1},
            "stop": {"num_env_steps": 2048}, "eval": {"episodes": 2},
            "logging": {"progress_every_s": 0}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def stopped_by_the_watchdog(tmp_path, capsys, path) -> tuple[str, dict, float]:
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    code = main(["run", path, "--run-dir", str(run_dir)])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    assert took < TIMEOUT_S + 10, took
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed"
    assert summary["error"].startswith("EnvHangError: env.step() of ")
    assert ckpt_names(run_dir) == [f"step_{summary['env_steps']:012d}"]
    assert f"continue with: rlcore resume {run_dir}" in err
    return err, summary, took


def test_a_hung_inline_env_step_stops_the_run_with_where_it_hung(tmp_path, capsys):
    # every sub-env hangs at its 100th step: sub-env 0 first, in the 7th fragment (16 steps
    # each), so six updates are done and checkpointed
    path = write(tmp_path, env={"kwargs": {"fault": "hang", "after": 100}})
    err, summary, _ = stopped_by_the_watchdog(tmp_path, capsys, path)
    assert summary["env_steps"] == 6 * 32 and summary["updates"] == 6
    assert (f"error: env.step() of env '{MODULE_ID}' (actor 0, sub-env 0, episode step "
            in err)
    assert f"did not return within rollout.sample_timeout_s={TIMEOUT_S} s" in err
    assert "last action" in err and "Fix its step()/reset()" in err
    # the episode step is the hung step's index in its episode (CartPole episodes end before
    # 100 steps under a random policy, so it is less than 99)
    step = int(err.split("episode step ")[1].split(",")[0])
    assert 0 <= step < 99


def test_a_hung_evaluation_env_stops_the_run(tmp_path, capsys):
    path = write(tmp_path, eval={"every_env_steps": 64, "env_kwargs": {"fault": "hang",
                                                                      "after": 5}})
    err, summary, _ = stopped_by_the_watchdog(tmp_path, capsys, path)
    assert summary["env_steps"] == 64 and summary["evals"] == []
    assert f"env.step() of the evaluation env '{MODULE_ID}' (sub-env " in err
    assert "episode step 4, last action" in err


def test_a_hang_the_signal_cannot_interrupt_still_ends_the_process(tmp_path):
    """SIGALRM blocked in the env (as C code that never returns to the interpreter would): the
    watchdog writes the checkpoint and summary from its own thread and ends the process."""
    path = write(tmp_path, env={"kwargs": {"fault": "hang_hard", "after": 100}})
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "rlcore.cli", "run", path, "--run-dir",
                           str(run_dir)], capture_output=True, text=True, timeout=90)
    took = time.monotonic() - t0
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "the hung call cannot be interrupted, stopping the process" in proc.stderr
    assert f"continue with: rlcore resume {run_dir}" in proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and "EnvHangError" in summary["error"]
    assert ckpt_names(run_dir) == [f"step_{summary['env_steps']:012d}"]
    assert summary["env_steps"] == 6 * 32
    assert took < 30  # interpreter start, the timeout, the grace period


def test_a_hang_in_a_run_outside_the_main_thread_ends_the_process(tmp_path):
    """A run in another thread (a Ray Tune trial runs its function in one) cannot be signalled:
    the watchdog saves the run at once and ends the process, without a grace period."""
    path = write(tmp_path, env={"kwargs": {"fault": "hang", "after": 100}})
    run_dir = tmp_path / "run"
    script = ("import sys, threading\n"
              "from rlcore.run.lifecycle import train_experiment\n"
              "t = threading.Thread(target=train_experiment, args=sys.argv[1:3], daemon=True)\n"
              "t.start(); t.join(60); sys.exit(0)\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script, path, str(run_dir)],
                          capture_output=True, text=True, timeout=90)
    took = time.monotonic() - t0
    assert proc.returncode == 3, proc.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and "EnvHangError" in summary["error"]
    assert summary["env_steps"] == 6 * 32
    assert took < 30


def test_a_worker_that_keeps_failing_between_successes_is_stopped_by_the_budget(tmp_path,
                                                                               capsys):
    """Every third episode of an env raises; a replacement runs two good episodes, so the
    failures never come K in a row, but the budget over the window stops the run."""
    path = write(tmp_path, env={"kwargs": {"fault": "raise_every", "after": 3}},
                 rollout={"restart_budget": 3, "max_actor_restarts": 3},
                 stop={"num_env_steps": 1_000_000})
    run_dir = tmp_path / "run"
    code = main(["run", path, "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" not in err
    assert err.count("rollout worker 0 raised RuntimeError: episode 3 of this env fails "
                     "(test fault); replaced") == 3
    assert "replaced (failure 1 in a row, 3 restarts in all)" in err
    assert ("error: 4 rollout worker failures within 600 s (rollout.restart_budget=3 per "
            "rollout.restart_window_s=600)") in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and summary["error"].startswith("ClusterError: 4 ")
    assert len(summary["actor_restarts"]) == 3
    assert summary["actor_health"]["restarts"] == 3
    assert summary["env_steps"] > 0 and summary["updates"] > 0  # it trained between failures


def test_an_inline_worker_that_fails_is_replaced_and_the_run_finishes(tmp_path, capsys):
    """The fourth episode of every env instance raises: the inline worker is replaced (new
    envs, new seeds) each time, as a Ray actor would be, and the run reaches its step count."""
    path = write(tmp_path, env={"kwargs": {"fault": "raise_every", "after": 4}},
                 rollout={"restart_budget": 100}, stop={"num_env_steps": 512})
    run_dir = tmp_path / "run"
    assert main(["run", path, "--run-dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 512 and summary["stop_reason"] == "num_env_steps"
    restarts = len(summary["actor_restarts"])
    assert restarts >= 1 and summary["actor_health"]["restarts"] == restarts
    assert err.count("rollout worker 0 raised RuntimeError: episode 4 of this env fails "
                     "(test fault); replaced") == restarts


def test_rlcore_eval_on_a_hanging_env_stops_with_the_message(tmp_path, capsys):
    path = write(tmp_path, stop={"num_env_steps": 64})
    run_dir = tmp_path / "run"
    assert main(["run", path, "--run-dir", str(run_dir)]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["eval"]["env_kwargs"] = {"fault": "hang", "after": 5}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    t0 = time.monotonic()
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 2
    assert time.monotonic() - t0 < TIMEOUT_S + 10
    err = capsys.readouterr().err
    assert err.startswith(f"error: env.step() of the evaluation env '{MODULE_ID}' (sub-env ")
    assert f"did not return within rollout.sample_timeout_s={TIMEOUT_S} s" in err
