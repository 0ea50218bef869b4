"""Rollout actors that die, hang or keep failing, on a local loopback Ray (BAD_INPUTS.md rows
18, 19): the run goes on with replaced actors, or stops with a checkpoint and the cause."""

import json
import os
import signal
import time

import pytest
import torch
import yaml

from rlcore.actors.pool import rollout_pool
from rlcore.cli import main
from rlcore.config import load_experiment
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

from fault_envs import MODULE_ID
from test_faults import ckpt_names, tb_last

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    ray.shutdown()


def write(tmp_path, **sections) -> str:
    data = {"algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "num_envs": 4},
            "rollout": {"num_actors": 2, "fragment_length": 16, "sample_timeout_s": 60},
            "learner": {"num_epochs": 1, "minibatch_size": 0},
            "stop": {"num_env_steps": 320}, "eval": {"episodes": 1},
            "checkpoint": {"every_env_steps": 128}, "logging": {"progress_every_s": 0},
            "ray": {"num_cpus": 2}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_sigkilled_actor_is_replaced_with_the_current_weights(tmp_path):
    import ray

    exp = load_experiment(write(tmp_path))
    spaces = check_spaces(exp)
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    try:
        first = pool.sample(learner.weights(), 5)
        pid = ray.get(pool.actors[1].pid.remote())
        os.kill(pid, signal.SIGKILL)
        again = pool.sample(None, 5)  # no new weights: the replacement gets version 5's
        new_pid = ray.get(pool.actors[1].pid.remote())
    finally:
        pool.close()
    assert new_pid != pid
    assert [f.actor_id for f in again] == [0, 1]
    assert all(f.policy_version == 5 for f in first + again)
    assert pool.health()["restarts"] == 1 and pool.health()["healthy"] == 2
    assert pool.restart_log[0]["slot"] == 1 and pool.restart_log[0]["cause"].startswith("died")
    # the replacement's envs are seeded anew: it does not replay actor 1's first fragment
    assert not (again[1].obs[0] == first[1].obs[0]).all()


def test_a_lost_actor_with_no_room_left_runs_as_a_guest_until_the_cluster_has_room(tmp_path):
    """No free CPUs for a replacement (a lost node's actors, a full cluster): the slot's next
    worker runs inside the surviving actor, with the slot's sub-envs and the current weights;
    once there is room again it gets an actor of its own (a re-admission, not a restart)."""
    import ray

    from rlcore.actors.ray_pool import Guest

    exp = load_experiment(write(tmp_path))
    spaces = check_spaces(exp)
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    room = [False]
    pool._room = lambda wait_s=0.0: room[0]  # what Ray's free CPUs would say
    try:
        first = pool.sample(learner.weights(), 5)
        host_pid = ray.get(pool.actors[0].pid.remote())
        os.kill(ray.get(pool.actors[1].pid.remote()), signal.SIGKILL)
        hosted = pool.sample(None, 5)
        guest, health = pool.actors[1], pool.health()
        room[0], pool.next_admit = True, 0.0
        back = pool.sample(learner.weights(), 6)
        own, own_pid, after = pool.actors[1], ray.get(pool.actors[1].pid.remote()), pool.health()
    finally:
        pool.close()
    assert isinstance(guest, Guest) and guest.host_slot == 0
    assert health["guest_slots"] == 1 and health["restarts"] == 1
    assert [f.actor_id for f in hosted] == [0, 1]  # the batch of a round is unchanged
    assert [f.obs.shape for f in hosted] == [f.obs.shape for f in first]
    assert all(f.policy_version == 5 for f in hosted)
    assert not (hosted[1].obs[0] == first[1].obs[0]).all()  # fresh seeds, as a replacement
    entry = pool.restart_log[0]
    assert entry["slot"] == 1 and entry["cause"].startswith("died") and entry["runs_in"] == 0
    assert entry["recovery_s"] > 0 and entry["recovered_on"] == pool.nodes[0]
    # room again: slot 1 in an actor of its own, not counted as a restart
    assert not isinstance(own, Guest) and own_pid != host_pid
    assert [f.policy_version for f in back] == [6, 6]
    assert [r["slot"] for r in pool.slots.readmissions] == [1]
    assert after["guest_slots"] == 0 and after["restarts"] == 1


def test_actor_killed_mid_run_the_run_finishes_with_the_right_step_count(tmp_path, capsys):
    marker = tmp_path / "kill-once"
    marker.touch()
    path = write(tmp_path, env={"id": MODULE_ID, "kwargs": {"fault": "kill", "after": 40,
                                                            "marker": str(marker)}})
    run_dir = tmp_path / "run"
    assert main(["run", path, "--run-dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert not marker.exists()  # an actor did SIGKILL itself at its 40th env step (3rd fragment)
    assert "died (" in err and "replaced (failure 1 in a row, 1 restarts in all)" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 320 and summary["stop_reason"] == "num_env_steps"
    assert len(summary["actor_restarts"]) == 1
    assert tb_last(run_dir, "actors/restarts") == 1.0
    assert tb_last(run_dir, "actors/healthy") == 2.0


def test_a_hanging_env_step_times_out_and_the_actor_is_replaced(tmp_path, capsys):
    marker = tmp_path / "hang-once"
    marker.touch()
    exp = load_experiment(write(tmp_path, rollout={"sample_timeout_s": 4},
                                env={"id": MODULE_ID, "kwargs": {"fault": "hang", "after": 20,
                                                                 "marker": str(marker)}}))
    spaces = check_spaces(exp)
    pool = rollout_pool(exp, spaces)
    weights = Learner(exp, spaces, torch.device("cpu")).weights()
    try:
        t0 = time.monotonic()
        frags = [pool.sample(weights, 1) for _ in range(2)]  # env step 20 is in the 2nd fragment
        took = time.monotonic() - t0
    finally:
        pool.close()
    assert not marker.exists()
    assert [len(f) for f in frags] == [2, 2] and all(f.policy_version == 1 for f in frags[1])
    assert pool.restart_log[0]["cause"] == "hung: no answer within rollout.sample_timeout_s=4 s"
    assert 4 <= took < 60
    assert "hung: no answer within rollout.sample_timeout_s=4 s; replaced" in capsys.readouterr().err


def test_an_actor_failing_again_and_again_stops_the_run_with_a_checkpoint(tmp_path, capsys):
    path = write(tmp_path, rollout={"num_actors": 1, "max_actor_restarts": 1},
                 env={"id": MODULE_ID, "kwargs": {"fault": "kill", "after": 5}})
    run_dir = tmp_path / "run"
    code = main(["run", path, "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" not in err
    # every incarnation dies at its 5th env step, before its first fragment: the first actor
    # and its one allowed replacement die, which is one failure too many
    assert ("rollout actor 0 failed 2 times in a row (rollout.max_actor_restarts=1); the last "
            "time it died") in err
    assert "look for the out-of-memory killer" in err
    assert f"the run stopped at 0 env steps (checkpoint {run_dir / 'checkpoints' / 'step_000000000000'} written)" in err
    assert "continue with: rlcore resume" in err
    assert ckpt_names(run_dir) == ["step_000000000000"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and summary["error"].startswith("ClusterError: rollout actor 0")


def test_ctrl_c_with_ray_actors_checkpoints_and_resume_continues(tmp_path):
    """Ctrl-C in a terminal reaches the whole foreground process group: driver and Ray alike."""
    import subprocess
    import sys

    from test_runs import scalar_steps

    path = write(tmp_path, stop={"num_env_steps": 10_000_000}, logging={"progress_every_s": 0.2},
                 checkpoint={"every_env_steps": 0})
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rlcore.cli", "run", path, "--run-dir",
                             str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            # as from a terminal: a shell's background job would otherwise hand
                            # SIGINT down ignored, to the driver and Ray alike
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        seen = 0
        for line in proc.stdout:  # wait until a few updates are done
            seen += "steps/s" in line
            if seen >= 3 or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever Ray left in the group
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, err[-3000:]
    assert f"rlcore resume {run_dir}" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    saved = summary["env_steps"]
    assert saved >= 3 * 64 and saved % 64 == 0
    assert ckpt_names(run_dir)[-1] == f"step_{saved:012d}"

    assert main(["resume", str(run_dir), "--set", f"stop.num_env_steps={saved + 128}"]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["env_steps"] == saved + 128
    steps = scalar_steps(run_dir, "learner/loss")
    assert len(steps) == len(set(steps)) and steps == sorted(steps)
    assert steps[-2:] == [saved + 64, saved + 128]


# ------------------------------------------------------------ every regime, one actor layer


def test_dqn_actor_sigkilled_mid_run_is_replaced_and_training_goes_on(tmp_path, capsys):
    """Transition regime, 2 actors with Ape-X epsilons: one actor's env SIGKILLs its process at
    its 300th step; the run reaches its full step count with every update the replay ratio
    asks for, and the restart is counted in actors/restarts and summary.json."""
    from rlcore.run.lifecycle import train_experiment

    marker = tmp_path / "kill-once"
    marker.touch()
    summary, run = train_experiment("experiments/dqn_cartpole.yaml", tmp_path / "run", [
        f"env.id={MODULE_ID}", f"env.kwargs={{fault: kill, after: 300, marker: '{marker}'}}",
        "env.num_envs=2", "rollout.num_actors=2", "ray.num_cpus=2",
        "rollout.num_cpus_per_actor=0.5", "rollout.sample_timeout_s=60",
        "stop.num_env_steps=3000", "stop.eval_return=null", "eval.every_env_steps=0",
        "eval.episodes=2", "algo.learning_starts=500", "algo.hidden_sizes=[32]"])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "rollout actor" in err and "died (" in err and "1 restarts in all" in err
    assert summary["env_steps"] >= 3000 and summary["stop_reason"] == "num_env_steps"
    assert summary["updates"] == int(0.5 * (summary["env_steps"] - 500 + 1))
    assert len(summary["actor_restarts"]) == 1 and summary["actor_health"]["restarts"] == 1
    by_actor = summary["env_steps_by_actor"]  # the killed actor's partial fragment is dropped
    assert sorted(by_actor) == ["0", "1"] and sum(by_actor.values()) == summary["env_steps"]
    assert tb_last(tmp_path / "run", "actors/restarts") == 1.0


def test_alphazero_selfplay_actor_sigkilled_mid_run_is_replaced(tmp_path, capsys):
    """Game regime, 2 self-play actors: actor 1's process is SIGKILLed before the third round;
    the round is played again by its replacement and the run reaches its move count."""
    import ray

    from rlcore.run.lifecycle import make_run
    from rlcore.run.logging import RunLogger
    from test_alphazero import write_experiment

    exp = load_experiment(write_experiment(  # the kill needs the actors: no inline start
        tmp_path, rollout__num_actors=2, rollout__inline_start=False, ray__num_cpus=2,
        stop__num_env_steps=200, algo__games_per_round=4))
    run = make_run(exp, tmp_path / "run")
    real_round, rounds = run.pool.round, []

    def round_with_a_kill(requests):
        rounds.append(requests)
        if len(rounds) == 3:
            os.kill(ray.get(run.pool.actors[1].pid.remote()), signal.SIGKILL)
        return real_round(requests)

    run.pool.round = round_with_a_kill
    logger = RunLogger(tmp_path / "run", 0, 0)
    summary = run.run(logger)
    logger.close()
    err = capsys.readouterr().err
    assert "self-play actor 1 died (" in err and "replaced (failure 1 in a row" in err
    assert summary["env_steps"] >= 200 and summary["stop_reason"] == "num_env_steps"
    assert summary["games_played"] == 4 * len(rounds)  # every round delivered all its games
    assert len(summary["actor_restarts"]) == 1 and summary["actor_restarts"][0]["slot"] == 1
    assert summary["updates"] > 0
    assert tb_last(tmp_path / "run", "actors/restarts") == 1.0


def test_ray_actors_failing_between_successes_are_stopped_by_the_budget(tmp_path, capsys):
    path = write(tmp_path, env={"id": MODULE_ID, "kwargs": {"fault": "raise_every", "after": 3}},
                 rollout={"restart_budget": 2, "max_actor_restarts": 5},
                 stop={"num_env_steps": 1_000_000})
    run_dir = tmp_path / "run"
    assert main(["run", path, "--run-dir", str(run_dir)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("3 rollout actor failures within 600 s (rollout.restart_budget=2 per "
            "rollout.restart_window_s=600); the last: rollout actor") in err
    assert "raised RuntimeError: episode 3 of this env fails" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and summary["error"].startswith("ClusterError: 3 ")
    assert len(summary["actor_restarts"]) == 2
    assert ckpt_names(run_dir)[-1] == f"step_{summary['env_steps']:012d}"


def test_placement_does_not_change_the_batch_nor_the_updates_per_env_step(tmp_path):
    """ppo_cartpole.yaml inline and with 2 Ray actors: every update gets the same batch (8 envs
    x 32 steps, split 4 + 4 over the actors), so the same number of updates per env step."""
    from rlcore.run.lifecycle import make_run
    from rlcore.run.logging import RunLogger

    seen = {}
    for n in (0, 2):
        exp = load_experiment("experiments/ppo_cartpole.yaml", [
            f"rollout.num_actors={n}", "ray.num_cpus=2", "rollout.num_cpus_per_actor=0.5",
            "stop.num_env_steps=1024", "stop.eval_return=null", "eval.every_env_steps=0",
            "eval.episodes=1", "learner.num_epochs=1", "learner.torch_threads=1",
            "logging.progress_every_s=0"])
        run = make_run(exp, tmp_path / f"r{n}")
        real_update, batches = run.learner.update, []

        def update(data, progress, real_update=real_update, batches=batches):
            batches.append([f.reward.shape for f in data])
            return real_update(data, progress)

        run.learner.update = update
        logger = RunLogger(tmp_path / f"r{n}", 0, 0)
        summary = run.run(logger)
        logger.close()
        seen[n] = (batches, summary["env_steps"], summary["updates"])
    assert seen[0][0] == [[(32, 8)]] * 4
    assert seen[2][0] == [[(32, 4), (32, 4)]] * 4
    assert seen[0][1:] == seen[2][1:] == (1024, 4)


def test_a_silent_dqn_actor_is_replaced_after_the_timeout_while_the_others_stream(tmp_path,
                                                                                 capsys):
    """Streaming (transition regime): an actor whose env hangs gets no special treatment from
    the learner's loop; its request passes its deadline and the actor is replaced."""
    from rlcore.run.lifecycle import train_experiment

    marker = tmp_path / "hang-once"
    marker.touch()
    summary, _ = train_experiment("experiments/dqn_cartpole.yaml", tmp_path / "run", [
        f"env.id={MODULE_ID}", f"env.kwargs={{fault: hang, after: 100, marker: '{marker}'}}",
        "env.num_envs=2", "rollout.num_actors=2", "ray.num_cpus=2",
        "rollout.num_cpus_per_actor=0.5", "rollout.sample_timeout_s=2",
        # long enough (several seconds of updates) for the hung request to pass its deadline
        "stop.num_env_steps=8000", "stop.eval_return=null", "eval.every_env_steps=0",
        "eval.episodes=2", "algo.learning_starts=500", "algo.hidden_sizes=[32]"])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "hung: no answer within rollout.sample_timeout_s=2 s; replaced" in err
    assert summary["env_steps"] >= 8000 and summary["stop_reason"] == "num_env_steps"
    assert [r["cause"] for r in summary["actor_restarts"]] == [
        "hung: no answer within rollout.sample_timeout_s=2 s"]
