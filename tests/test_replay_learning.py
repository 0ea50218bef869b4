"""Learning tests of the off-policy plugins (fixed seeds; budgets in env steps). Each stops at
the first evaluation reaching the threshold."""

import pytest

from full_budget import full_budget_held_from
from rlcore.run.lifecycle import train_experiment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def train(tmp_path, file, *overrides):
    return train_experiment(file, tmp_path, ["learner.torch_threads=1", *overrides])[0]


@pytest.mark.parametrize("file,overrides", [
    ("experiments/dqn_cartpole.yaml", []),
    ("experiments/dqn_cartpole.yaml", ["algo.double_q=false"]),  # the file has double Q on
    ("experiments/c51_cartpole.yaml", []),
    ("experiments/qrdqn_cartpole.yaml", []),
    ("experiments/soft_dqn_cartpole.yaml", []),
], ids=["dqn", "dqn_single_q", "c51", "qrdqn", "soft_dqn"])
def test_value_based_cartpole_reaches_475_within_100k_steps(tmp_path, file, overrides):
    s = train(tmp_path, file, "stop.eval_return=475", "stop.num_env_steps=100000", *overrides)
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 475 and s["env_steps"] <= 100_000


def test_soft_dqn_cartpole_holds_475_to_the_end_of_its_budget(tmp_path):
    """Trained to the full 100k steps, no early stop: from some evaluation at or before 65k env
    steps every later one, the final included, is >= 475. 65k is the latest any of seeds 0-4
    held from (35k / 45k / 65k / 50k / 35k on an Intel Xeon, benchmarks/RESULTS.md, "Value-based
    learning that holds to the end"); seed 0 itself held from 35k there and from 50k on an AMD
    EPYC (AVX2 kernels round differently: another sample of the same spread), so a bound
    tighter than the seeds' own is a bound on one machine's rounding."""
    held_from, means = full_budget_held_from(tmp_path, "experiments/soft_dqn_cartpole.yaml",
                                            ["learner.torch_threads=1"])
    assert held_from is not None and held_from <= 65_000, means


def test_dqn_cartpole_holds_475_to_the_end_of_its_budget(tmp_path):
    """The file (value range [0, 100], prioritized replay, the target network evaluated)
    trained to the full 100k steps: from some evaluation at or before 40k every later one, the
    final included, is >= 475. Seeds 0-4 held from 20k / 30k / 20k / 30k / 25k on an AMD EPYC
    with AVX-512 (benchmarks/RESULTS.md, "Evaluating the target network"); seed 0 itself held
    from 20k there, but another CPU kind rounds differently: another sample of the same
    spread, which the goal's 40k bounds."""
    held_from, means = full_budget_held_from(tmp_path, "experiments/dqn_cartpole.yaml",
                                            ["learner.torch_threads=1"])
    assert held_from is not None and held_from <= 40_000, means


def test_qrdqn_cartpole_holds_475_from_40k_to_the_end_of_its_budget(tmp_path):
    """The file (target quantile samples clipped into [0, 100]) trained to the full 100k
    steps: from some evaluation at or before 40k every later one, the final included, is
    >= 475. 40k is the latest any of seeds 0-4 held from (35k / 35k / 35k / 40k / 30k on an AMD
    EPYC with AVX-512, benchmarks/RESULTS.md, "QR-DQN with value_range"), the issue's goal."""
    held_from, means = full_budget_held_from(tmp_path, "experiments/qrdqn_cartpole.yaml",
                                            ["learner.torch_threads=1"])
    assert held_from is not None and held_from <= 40_000, means


@pytest.mark.parametrize("file", ["experiments/ddpg_pendulum.yaml", "experiments/td3_pendulum.yaml"],
                         ids=["ddpg", "td3"])
def test_deterministic_policy_gradient_pendulum_reaches_minus_250_within_30k_steps(tmp_path, file):
    s = train(tmp_path, file, "stop.eval_return=-250", "stop.num_env_steps=30000")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= -250 and s["env_steps"] <= 30_000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sac_pendulum_reaches_minus_200_within_15k_steps(tmp_path, seed):
    s = train(tmp_path, "experiments/sac_pendulum.yaml", f"seed={seed}", "stop.eval_return=-200",
              "stop.num_env_steps=15000")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= -200 and s["env_steps"] <= 15_000
