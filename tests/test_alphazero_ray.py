"""Self-play on Ray actors (loopback only): the same games as the inline worker, and a short
training run through the trainer."""

import numpy as np
import pytest
import torch
import yaml

from rlcore.config import load_experiment
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def experiment(tmp_path, num_actors, **stop):
    path = tmp_path / f"az{num_actors}.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "alphazero", "seed": 4, "env": {"id": "rlcore/TicTacToe-v0"},
        "rollout": {"num_actors": num_actors},
        "algo": {"channels": 8, "blocks": 1, "value_hidden": 8, "num_simulations": 8,
                 "parallel_games": 3, "games_per_round": 3, "batch_size": 16,
                 "updates_per_round": 2, "min_positions": 16, "eval_simulations": 8},
        "stop": {"num_env_steps": 80, **stop}, "eval": {"episodes": 2},
        "logging": {"progress_every_s": 0}, "ray": {"num_cpus": 2},
    }))
    return load_experiment(path)


def test_ray_actors_play_the_inline_workers_games(tmp_path, ray_session):
    from rlcore.actors.pool import make_pool
    from rlcore.regimes.game import selfplay_worker_spec

    exp_ray, exp_inline = experiment(tmp_path, 2), experiment(tmp_path, 0)
    spaces = check_spaces(exp_ray)
    learner = Learner(exp_ray, spaces, torch.device("cpu"))
    pool = make_pool(selfplay_worker_spec(exp_ray, spaces), exp_ray.config)
    try:
        pool.publish(learner.weights(), 5)
        games = [g for batch in pool.round([3, 3]) for g in batch]
    finally:
        pool.close()
    inline_pool = make_pool(selfplay_worker_spec(exp_inline, spaces), exp_inline.config)
    inline_pool.publish(learner.weights(), 5)
    inline = inline_pool.round([3])[0]
    assert sorted({g.actor_id for g in games}) == [0, 1] and len(games) == 6
    assert all(g.policy_version == 5 for g in games)
    ray0 = [g for g in games if g.actor_id == 0]
    for a, b in zip(ray0, inline):  # actor 0 and the inline worker share seeds and weights
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.pi, b.pi)
        np.testing.assert_array_equal(a.z, b.z)


def test_trainer_with_ray_actors(tmp_path, ray_session):
    from rlcore.run.lifecycle import train_experiment

    path = tmp_path / "exp.yaml"
    exp = experiment(tmp_path, 2)
    path.write_text(yaml.safe_dump(exp.resolved()))
    summary, trainer = train_experiment(path, tmp_path / "run")
    assert summary["num_actors"] == 2 and summary["updates"] > 0
    assert summary["env_steps"] >= 80 and summary["games_played"] >= 12
    assert trainer.pool.actors == []  # closed
