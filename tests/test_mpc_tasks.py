"""The planners' reward and termination code for the MuJoCo tasks (plugins/mpc/rewards.py)
against the envs' own rewards on random-action transitions, their spaces against the envs',
the termination rule of imagined returns by hand, and the refusal of iLQR on a reward with no
gradient."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.cli import main
from rlcore.errors import IncompatibleEnvError
from rlcore.plugins.mpc.config import CEMMPCConfig, ILQRMPCConfig
from rlcore.plugins.mpc.planner import imagined_returns
from rlcore.plugins.mpc.rewards import TASKS, task_for
from rlcore.registry import ensure_env_registered
from rlcore.types import SpaceSpec

pytestmark = pytest.mark.timeout(300)

MUJOCO = ("InvertedPendulum-v5", "Reacher-v5", "HalfCheetah-v5")


def make(env_id: str) -> gym.Env:
    ensure_env_registered(f"rlcore/{env_id}")
    return gym.make(f"rlcore/{env_id}")


def transitions(env_id: str, steps: int, seed: int = 0):
    """(obs, a in [-1, 1], next_obs, reward, terminated) of uniformly random actions, resetting
    at episode ends; the env's action is a rescaled to its bounds as the actors do. rlcore's
    registration of the env (float32 observations, MuJoCo's warnings to the logger)."""
    env = make(env_id)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(steps):
        a = rng.uniform(-1, 1, low.shape).astype(np.float32)  # the env computes in float32
        nxt, r, term, trunc, _ = env.step((low + (a + 1) * (high - low) / 2).astype(np.float32))
        rows.append((obs, a, nxt, r, term))
        obs = env.reset()[0] if term or trunc else nxt
    obs, a, nxt, r, term = (np.array(x) for x in zip(*rows))
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    return t(obs), t(a), t(nxt), r, term


@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Reacher-v5"])
def test_reward_and_termination_are_the_envs(env_id):
    task = TASKS[env_id]
    obs, a, nxt, r, term = transitions(env_id, 600)
    got = task.reward(obs, a, nxt).numpy()
    np.testing.assert_allclose(got, r, rtol=1e-6, atol=1e-6)  # Reacher's ctrl cost is float32
    if task.terminated is not None:
        assert term.sum() >= 10  # random actions topple the pole: both cases are checked
        np.testing.assert_array_equal(task.terminated(nxt).numpy(), term)
    else:
        assert not term.any()


@pytest.mark.parametrize("env_id", MUJOCO)
def test_the_true_step_rebuilt_from_the_observation_is_the_envs(env_id):
    """MujocoStep (the diagnostics' true dynamics) sets MuJoCo's state from an observation and
    steps it: the env's own next observations from float32 observations, on random actions
    (terminating steps included)."""
    obs, a, nxt, _, _ = transitions(env_id, 300)
    step = TASKS[env_id].dynamics
    got = step(obs, a).numpy()
    err = np.abs(got - nxt.numpy())
    # the observations are float32, so the rebuilt state is off by their rounding: measured
    # max 4e-7 / 2e-6 / 4e-5 (InvertedPendulum / Reacher / HalfCheetah), median < 3e-8
    assert err.max() < 1e-4 and np.median(err) < 1e-6, (err.max(), np.median(err))
    # leading dimensions pass through, and a new process rebuilds the simulator
    import pickle
    again = pickle.loads(pickle.dumps(step))
    two = again(obs[:6].reshape(2, 3, -1), a[:6].reshape(2, 3, -1))
    np.testing.assert_allclose(two.reshape(6, -1).numpy(), got[:6], rtol=0, atol=1e-12)


def test_half_cheetahs_surrogate_reward_stays_close_to_the_envs():
    """The env rewards (x' - x) / dt with x unobserved; the surrogate averages the root's x
    velocity at both ends of the step (rewards.half_cheetah_reward)."""
    obs, a, nxt, r, _ = transitions("HalfCheetah-v5", 2000)
    got = TASKS["HalfCheetah-v5"].reward(obs, a, nxt).numpy()
    err = np.abs(got - r)
    assert err.mean() < 0.16 and err.mean() < 0.25 * r.std(), (err.mean(), r.std())
    assert np.corrcoef(got, r)[0, 1] > 0.95
    # the control cost is exact: with the velocities zeroed both sides agree to the action term
    still = torch.zeros_like(obs)
    np.testing.assert_allclose(TASKS["HalfCheetah-v5"].reward(still, a, still).numpy(),
                               -0.1 * np.square(a.numpy()).sum(-1))


@pytest.mark.parametrize("env_id", MUJOCO)
def test_the_tasks_match_the_envs_spaces(env_id):
    env = make(env_id)
    spaces = SpaceSpec.from_gym(env.observation_space, env.action_space)
    assert task_for(env_id, spaces) is TASKS[env_id]
    with pytest.raises(IncompatibleEnvError, match="algo.task 'Pendulum-v1' needs observations "
                       r"of shape \(3,\)"):
        task_for("Pendulum-v1", spaces)


class Drift:
    """A deterministic one-member model that adds 0.1 to the pole angle (obs[1]) per step."""

    members, fitted = 1, True

    def step(self, obs, action, generator):
        return obs + torch.tensor([0.0, 0.1, 0.0, 0.0])


def test_imagined_returns_stop_at_a_predicted_termination():
    """InvertedPendulum from angle 0.05 drifting by 0.1 per step: s1 = 0.15 (alive, r = 1), s2
    = 0.25 (terminal, r = 0, as the env pays), then nothing, whatever the horizon; from
    -0.35 (already past the bound) the first step lands at -0.25, terminal: 0. Each step also
    pays the tie-break, min((angle / 0.2)^2 / 2, 1) / (2 H) with H = 6 (the cart at 0)."""
    task = TASKS["InvertedPendulum-v5"]
    seqs = np.zeros((1, 6, 1))
    tie = lambda *angles: sum(min((x / 0.2) ** 2 / 2, 1.0) for x in angles) / 12  # noqa: E731
    for start, survived, reached in ((0.05, 1, (0.15, 0.25)), (-0.35, 0, (-0.25,)),
                                     (-0.15, 3, (-0.05, 0.05, 0.15, 0.25))):
        obs = np.array([0.0, start, 0.0, 0.0], np.float32)
        got = imagined_returns(Drift(), task, obs, seqs, 1, None)
        assert got[0] == pytest.approx(survived - tie(*reached), abs=1e-5), start


class Slide:
    """A deterministic one-member model that moves the cart (obs[0]) by 0.1 per step."""

    members, fitted = 1, True

    def step(self, obs, action, generator):
        return obs + torch.tensor([0.1, 0.0, 0.0, 0.0])


def test_the_rail_end_ends_an_imagined_episode_without_reward():
    """The cart from 0.75: s1 = 0.85 (alive, 1 minus its tie-break 0.85^2 / 2 / (2 H)), s2 =
    0.95, past 0.9: the planners count the episode lost there (the env would go on)."""
    task = TASKS["InvertedPendulum-v5"]
    obs = np.array([0.75, 0.0, 0.0, 0.0], np.float32)
    got = imagined_returns(Slide(), task, obs, np.zeros((1, 6, 1)), 1, None)
    assert got[0] == pytest.approx(1 - 0.85 ** 2 / 2 / 12, abs=1e-5)
    assert not task.terminated(torch.tensor([[0.95, 0.0, 0.0, 0.0]])).any()  # the env's own


def test_the_tie_break_is_the_distance_from_the_middle_capped_at_one():
    task = TASKS["InvertedPendulum-v5"]
    states = torch.tensor([[0.0, 0.2, 0.0, 0.0], [0.5, 0.0, 3.0, 3.0], [0.0, -0.5, 0.0, 0.0],
                           [1.0, 0.1, 0.0, 0.0], [-2.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(task.tie_break(states).numpy(),
                               [0.5, 0.125, 1.0, 0.625, 1.0], rtol=1e-6)


def test_ilqr_is_refused_a_reward_without_gradients(tmp_path, capsys):
    with pytest.raises(ValueError, match="ilqr_mpc plans by the gradients of the reward, and "
                       "InvertedPendulum-v5's is an indicator .* use algorithm: cem_mpc for "
                       "InvertedPendulum-v5; ilqr_mpc supports HalfCheetah-v5, Pendulum-v1, "
                       "Reacher-v5"):
        ILQRMPCConfig(task="InvertedPendulum-v5")
    CEMMPCConfig(task="InvertedPendulum-v5")  # the sampling planner takes it
    code = main(["validate", "experiments/ilqr_mpc_pendulum.yaml", "--set",
                 "env.id=InvertedPendulum-v5", "--set", "algo.task=InvertedPendulum-v5"])
    assert code == 2
    assert "use algorithm: cem_mpc for InvertedPendulum-v5" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_cem_mpc_balances_inverted_pendulum_for_most_of_an_episode_within_2000_steps(tmp_path):
    """Seed 0 of experiments/cem_mpc_inverted_pendulum.yaml: an evaluation at or above 700 (of
    1,000) by 2,000 env steps (250 random). Seeds 0-4 of the benchmark with this file were at
    696-1,000 at 1,000 env steps and 813-1,000 at 2,000 (benchmarks/RESULTS.md, "The wider
    search"), so 2,000 holds across seeds, not only on one CPU's rounding; here seed 0 stops at
    its evaluation of 1,000 steps (916). Without the planning aids (tie-break, rail end) the
    same seed scored 348 at 1,000 and never passed 476 in 3,000 steps; with the aids but the
    narrower search of before (200 candidates, 3 iterations) it passed 700 by 1,000 on an Intel
    Xeon and scored 64 there on an AMD EPYC."""
    from rlcore.run.lifecycle import train_experiment

    s = train_experiment("experiments/cem_mpc_inverted_pendulum.yaml", tmp_path,
                         ["learner.torch_threads=1", "stop.eval_return=700",
                          "stop.num_env_steps=2000"])[0]
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= 700 and s["env_steps"] <= 2000
