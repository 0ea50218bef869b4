"""Learning tests with fixed seeds: thresholds from the issue, budgets in env steps."""

import pytest

from full_budget import full_budget_held_from
from rlcore.run.lifecycle import train_experiment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def train(tmp_path, file, *overrides):
    return train_experiment(file, tmp_path, overrides)[0]


def test_ppo_cartpole_reaches_475_within_100k_steps_inline(tmp_path):
    s = train(tmp_path, "experiments/ppo_cartpole.yaml", "rollout.num_actors=0", "env.num_envs=8",
              "stop.eval_return=475", "stop.num_env_steps=100000")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 100_000


def ppo_cartpole_held_from(tmp_path, *overrides):
    """The PPO file trained to its full budget: 100k env steps in rounds of 256 end at 100,096."""
    return full_budget_held_from(tmp_path, "experiments/ppo_cartpole.yaml", overrides,
                                 env_steps=100_096)


def test_ppo_cartpole_holds_475_from_30k_to_the_end_inline(tmp_path):
    """Seeds 0-4 held from 5k / 25k / 15k / 20k / 20k inline on an AMD EPYC with AVX-512
    (benchmarks/RESULTS.md, "PPO CartPole at lr 2e-3"); the bound is the issue's goal, 30k, as
    another CPU kind rounds differently (seed 0 is another sample of the same spread there)."""
    held_from, means = ppo_cartpole_held_from(tmp_path, "rollout.num_actors=0")
    assert held_from is not None and held_from <= 30_000, means


@pytest.mark.ray
def test_ppo_cartpole_holds_475_from_30k_to_the_end_with_two_ray_actors(tmp_path):
    """The demo file (a local Ray, 2 actors; with its default inline start seeds 0-4 held from
    15k / 20k / 20k / 10k / 20k). Here the run waits for the actors
    (rollout.inline_start=false), so that it repeats bit for bit."""
    import ray

    try:
        held_from, means = ppo_cartpole_held_from(tmp_path, "rollout.inline_start=false")
    finally:
        ray.shutdown()
    assert held_from is not None and held_from <= 30_000, means


@pytest.mark.ray
def test_ppo_cartpole_demo_config_with_two_ray_actors(tmp_path):
    import ray

    try:
        s = train(tmp_path, "experiments/ppo_cartpole.yaml", "stop.eval_return=475")
    finally:
        ray.shutdown()
    assert s["num_actors"] == 2
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 100_000


@pytest.mark.ray
def test_ppo_cartpole_learns_through_a_sigkilled_actor(tmp_path):
    """The demo config; actor 1's process is SIGKILLed before the 10th round. The replacement
    takes over with the current weights and the run meets the same threshold and budget."""
    import os
    import signal

    import ray

    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import make_run
    from rlcore.run.logging import RunLogger

    try:
        # the kill needs the actors from the first round: no inline start
        exp = load_experiment("experiments/ppo_cartpole.yaml",
                              ["stop.eval_return=475", "logging.progress_every_s=0",
                               "rollout.inline_start=false"])
        run = make_run(exp, tmp_path)
        real_round, rounds = run.pool.round, []

        def round_with_a_kill(requests):
            rounds.append(1)
            if len(rounds) == 10:
                os.kill(ray.get(run.pool.actors[1].pid.remote()), signal.SIGKILL)
            return real_round(requests)

        run.pool.round = round_with_a_kill
        logger = RunLogger(tmp_path, 0, 0)
        s = run.run(logger)
        logger.close()
    finally:
        ray.shutdown()
    assert len(s["actor_restarts"]) == 1 and s["actor_restarts"][0]["cause"].startswith("died")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 100_000


def test_ppo_adaptive_kl_variant_learns_cartpole(tmp_path):
    # Without clipping, 20 epochs at lr 1e-3 can collapse the policy's entropy early (seed 0
    # then stalls near 130 as the KL and its coefficient shrink); an entropy bonus of 0.01 keeps
    # it exploring: seeds 0-3 reached 500 at 15-30k steps.
    s = train(tmp_path, "experiments/ppo_cartpole.yaml", "rollout.num_actors=0", "env.num_envs=8",
              "learner.lr=1e-3", "algo.variant=kl", "algo.ent_coef=0.01", "stop.eval_return=475",
              "stop.num_env_steps=150000")
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 150_000, s["evals"]


def test_pg_cartpole_reaches_400_within_300k_steps(tmp_path):
    s = train(tmp_path, "experiments/pg_cartpole.yaml", "stop.eval_return=400")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 400 and s["env_steps"] <= 300_000


def test_trpo_cartpole_reaches_475_within_100k_steps(tmp_path):
    s = train(tmp_path, "experiments/trpo_cartpole.yaml", "stop.eval_return=475",
              "stop.num_env_steps=100000")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 100_000


def test_ppo_pendulum_reaches_minus_250_within_200k_steps(tmp_path):
    # Gaussian policy, 8 envs inline; seeds 0-4 passed -200 at 51-72k steps (a few seconds each
    # on 2 cores when alone).
    s = train(tmp_path, "experiments/ppo_pendulum.yaml", "stop.eval_return=-250",
              "stop.num_env_steps=200000")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= -250 and s["env_steps"] <= 200_000


def test_trpo_pendulum_reaches_minus_250_within_200k_steps(tmp_path):
    # Gaussian policy with max_kl 0.02; seeds 0-2 passed -200 at 82k, 141k and 61k steps.
    s = train(tmp_path, "experiments/trpo_pendulum.yaml", "stop.eval_return=-250")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= -250 and s["env_steps"] <= 200_000
