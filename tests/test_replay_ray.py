"""Two Ray actors feed one learner's replay asynchronously (local, loopback-only Ray)."""

import pytest

from rlcore.run.lifecycle import train_experiment

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]


def test_two_actors_feed_one_replay_while_the_learner_trains(tmp_path):
    import ray

    try:
        summary, trainer = train_experiment("experiments/dqn_cartpole.yaml", tmp_path, [
            "rollout.num_actors=2", "env.num_envs=2", "ray.num_cpus=2",
            "rollout.num_cpus_per_actor=0.5", "stop.num_env_steps=3000", "stop.eval_return=null", "eval.every_env_steps=0",
            "eval.episodes=2", "algo.learning_starts=500", "algo.hidden_sizes=[32]",
            "learner.torch_threads=1", "algo.publish_every=4",
            "rollout.inline_start=false"])  # the actors' lag is the point: actors throughout
    finally:
        ray.shutdown()
    by_actor = summary["env_steps_by_actor"]
    assert sorted(by_actor) == ["0", "1"] and min(by_actor.values()) >= 500, by_actor
    assert sum(by_actor.values()) == summary["env_steps"] >= 3000
    assert summary["num_actors"] == 2
    assert summary["updates"] == int(0.5 * (summary["env_steps"] - 500 + 1))
    # weights go out every 4 updates and actors run ahead of the learner: their fragments
    # come from older policy versions
    assert summary["policy_lag_mean"] > 0
    # each actor writes its own replay streams: stream 0 is actor 0's env, stream 1 actor 1's
    buf = trainer.regime.buffer
    assert (buf.count > 0).all() and buf.S == 2
