"""An elastic start (``rollout.min_actors`` below ``rollout.num_actors``) on a local loopback
Ray: the run starts with the actors the cluster has room for, the other slots run inside them
(guests) with their own sub-envs and seeds, and each gets an actor of its own once there is
room (a re-admission, not a restart). The multi-node version, a node joining mid-run, is in
``tests/test_netns_node_loss.py``."""

import json
import time

import numpy as np
import pytest
import torch
import yaml

from rlcore.actors.pool import rollout_pool
from rlcore.cli import main
from rlcore.config import load_experiment
from rlcore.errors import ConfigError
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

from test_faults import tb_last

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def fresh_ray():
    """Each test starts its own local Ray (with its own CPU count) and ends it."""
    import ray

    ray.shutdown()
    yield
    ray.shutdown()


def write(tmp_path, num_cpus: int, progress_every_s: float = 0, **rollout) -> str:
    data = {"algorithm": "ppo", "seed": 3, "env": {"id": "CartPole-v1", "num_envs": 6},
            "rollout": {"num_actors": 3, "fragment_length": 16, "sample_timeout_s": 60,
                        "inline_start": False, **rollout},
            "learner": {"num_epochs": 1, "minibatch_size": 0},
            "stop": {"num_env_steps": 480}, "eval": {"episodes": 1},
            "checkpoint": {"every_env_steps": 0}, "logging": {"progress_every_s": progress_every_s},
            "ray": {"num_cpus": num_cpus}}
    path = tmp_path / f"exp-{num_cpus}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def two_rounds(path):
    """Two rounds of fragments from a fresh pool (weights versions 1, 2): the rounds, the kind
    of each slot's worker in the first, and the pool's health after the second."""
    exp = load_experiment(path)
    spaces = check_spaces(exp)
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    try:
        rounds = [pool.sample(learner.weights(), 1)]
        kinds = [type(w).__name__ for w in pool.actors]
        rounds.append(pool.sample(learner.weights(), 2))
        health = pool.health()
    finally:
        pool.close()
    return rounds, kinds, health


def test_an_elastic_start_runs_the_slots_without_room_as_guests_with_the_same_data(tmp_path):
    """Room for 2 actors of 3: slot 2 starts inside actor 0 and delivers exactly what an actor
    of its own delivers on a cluster with room for all three (same sub-envs, same seeds)."""
    import ray

    elastic, kinds, health = two_rounds(write(tmp_path, 2, min_actors=1))
    ray.shutdown()
    full, full_kinds, _ = two_rounds(write(tmp_path, 3))
    assert kinds[2] == "Guest" and kinds[:2] == full_kinds[:2]
    assert full_kinds == ["ActorHandle"] * 3
    assert health["guest_slots"] == 1 and health["restarts"] == 0
    for a, b in zip(elastic, full):
        assert [f.actor_id for f in a] == [f.actor_id for f in b] == [0, 1, 2]
        for fa, fb in zip(a, b):
            assert fa.obs.shape == (16, 2, 4)
            np.testing.assert_array_equal(fa.obs, fb.obs)
            np.testing.assert_array_equal(fa.action, fb.action)
            np.testing.assert_array_equal(fa.reward, fb.reward)


def test_a_guest_of_an_elastic_start_moves_out_once_there_is_room_and_the_actors_answered(
        tmp_path):
    """Another job holds one of 3 CPUs: room for 2 actors, slot 2 starts as a guest. Ray's view
    of free CPUs lags actors that have not started, so a guest is never moved on the room seen
    before every actor has answered (here a view that says "room" throughout the first round).
    Once the other job ends the slot gets an actor of its own: a re-admission, not a restart."""
    import ray

    from rlcore.actors.ray_pool import Guest
    from rlcore.actors.ray_setup import init_ray

    exp = load_experiment(write(tmp_path, 3, min_actors=1))
    init_ray(exp.config.ray, 0)

    @ray.remote(num_cpus=1)
    class OtherJob:
        def ping(self):
            return True

    other = OtherJob.remote()
    ray.get(other.ping.remote(), timeout=60)
    spaces = check_spaces(exp)
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    try:
        pool._room = lambda wait_s=0.0: True  # a view that lags: "room" before any answered
        pool.next_admit = 0.0
        first = pool.sample(learner.weights(), 1)
        kinds = [type(w).__name__ for w in pool.actors]
        del pool._room  # Ray's own view from here on
        ray.kill(other)
        deadline = time.monotonic() + 60
        while isinstance(pool.actors[2], Guest) and time.monotonic() < deadline:
            moved = pool.sample(learner.weights(), 2)
        later = pool.sample(learner.weights(), 3)
        health = pool.health()
    finally:
        pool.close()
    assert kinds == ["ActorHandle", "ActorHandle", "Guest"]
    assert [f.actor_id for f in first] == [f.actor_id for f in moved] == [0, 1, 2]
    assert [r["slot"] for r in pool.slots.readmissions] == [2]
    assert pool.slots.restart_log == [] and health == {**health, "guest_slots": 0, "restarts": 0}
    assert [f.policy_version for f in later] == [3, 3, 3]


def test_an_elastic_run_ends_at_its_budget_and_reports_the_guest(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", write(tmp_path, 2, 1e-3, min_actors=1), "--run-dir", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "actors 3/3 restarts 0 guests 1" in out  # the progress line
    assert ("the cluster has room for 2 of 3 rollout actors (rollout.min_actors=1): slot 2 "
            "runs inside them until nodes join") in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 480 and summary["stop_reason"] == "num_env_steps"
    assert summary["actor_health"]["guest_slots"] == 1
    assert summary["actor_restarts"] == [] and summary["actor_readmissions"] == []
    assert tb_last(run, "actors/guest_slots") == 1.0


def test_min_actors_above_num_actors_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"rollout.min_actors \(4\) must be at most "
                                          r"rollout.num_actors \(3\)"):
        load_experiment(write(tmp_path, 2, min_actors=4))
