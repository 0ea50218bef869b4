"""The model-based plugins on Ray actors (local, loopback-only Ray): the learner fits the model
from the actors' transitions, the actors control with the published weights. Judged on the
actors' own transitions in the replay; every env step is an actor's
(``rollout.inline_start=false``: no inline steps while Ray starts)."""

import numpy as np
import pytest

from rlcore.run.lifecycle import train_experiment

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

ACTORS = ["rollout.num_actors=2", "env.num_envs=2", "ray.num_cpus=2",
          "rollout.num_cpus_per_actor=0.5", "rollout.inline_start=false"]


def stream_steps(buf, stream: int) -> np.ndarray:
    """The replay slots of one stream (one actor's env) that hold a recorded step, in order."""
    slots = np.arange(int(buf.count[stream]))
    assert buf.count[stream] <= buf.C  # never wrapped: slot order is time order
    return slots[buf.complete[stream, slots]]


def train(path: str, tmp_path, overrides: list[str]):
    import ray

    try:
        return train_experiment(path, tmp_path, [*ACTORS, *overrides])
    finally:
        ray.shutdown()


def test_lqr_actors_balance_cartpole_with_the_published_fit(tmp_path):
    # the fit at 2,000 env steps (learning_starts): before it the actors act at random
    summary, trainer = train("experiments/lqr_cartpole.yaml", tmp_path,
                             ["stop.num_env_steps=6000", "eval.every_env_steps=0",
                              "eval.episodes=3"])
    assert sorted(summary["env_steps_by_actor"]) == ["0", "1"]
    assert summary["num_actors"] == 2 and summary["env_steps"] == 6000
    # fits at 2,000 to 5,000 env steps (the file: a fresh fit every 1,000)
    assert summary["updates"] == 4 and summary["eval_return_mean"] == 500.0
    buf = trainer.regime.buffer
    for s in range(2):
        steps = stream_steps(buf, s)
        ended = np.nonzero(buf.terminated[s, steps])[0]
        held = np.nonzero(buf.truncated[s, steps])[0]
        # random actions end an episode every ~20 steps; once the published LQR gain acts, the
        # pole never falls: every episode after the first one held to the 500-step limit ends
        # by that limit
        assert len(ended) >= 20, len(ended)
        assert len(held) >= 1 and not (ended > held[0]).any(), (ended[-3:], held)


def test_cem_mpc_actors_plan_through_the_published_ensemble(tmp_path):
    # a small search so the test is quick; the file's search is the benchmark's
    summary, trainer = train("experiments/cem_mpc_pendulum.yaml", tmp_path, [
        "stop.num_env_steps=1600", "stop.eval_return=null", "eval.every_env_steps=0",
        "eval.episodes=3", "algo.population=100", "algo.iterations=3", "algo.elites=10",
        "algo.random_steps=200", "algo.learning_starts=200", "seed=1"])
    by_actor = summary["env_steps_by_actor"]
    assert sorted(by_actor) == ["0", "1"] and min(by_actor.values()) >= 300, by_actor
    assert summary["env_steps"] == 1600
    assert summary["updates"] == 1600 - 200 + 1  # one model step per env step after 200
    # the actors plan with weights the learner published earlier: a lag, never a stale copy
    assert 0 < summary["policy_lag_mean"] < 100
    buf = trainer.regime.buffer
    for s in range(2):
        steps = stream_steps(buf, s)
        random_r = buf.reward[s, steps[:100]].mean()   # 100 random steps per env
        planned_r = buf.reward[s, steps[-200:]].mean()  # the last episode's worth
        # Pendulum pays -(angle^2 + 0.1 velocity^2 + 0.001 torque^2): about -6 per step at
        # random, near 0 held upright
        assert random_r < -3.0, random_r
        assert planned_r > -1.5, planned_r
    assert summary["eval_return_mean"] >= -400
