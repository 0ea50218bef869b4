"""cem_mpc (plugins/mpc): the reward code against gymnasium's, the ensemble's fit, the planner
on the true Pendulum dynamics (the planning separately from the learning), the plugin contract,
the refusal of envs without reward code, and (slow) learning Pendulum from 5,000 env steps."""

import math
import time
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.cli import main
from rlcore.errors import IncompatibleEnvError
from rlcore.plugins.mpc.config import CEMMPCConfig
from rlcore.plugins.mpc.model import GaussianEnsemble, loss, prepare_batch
from rlcore.plugins.mpc.planner import CEMPlanner
from rlcore.plugins.mpc.rewards import pendulum_dynamics, pendulum_reward, task_for
from rlcore.types import SpaceSpec

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pendulum_spaces() -> SpaceSpec:
    env = gym.make("Pendulum-v1")
    return SpaceSpec.from_gym(env.observation_space, env.action_space)


def test_pendulum_reward_is_gymnasiums():
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = np.column_stack([rng.uniform(-3 * np.pi, 3 * np.pi, 200), rng.uniform(-8, 8, 200)])
    actions = rng.uniform(-1, 1, (200, 1))
    expected = []
    for state, a in zip(states, actions):
        env.state = state.copy()
        expected.append(env.step(2.0 * a)[1])  # the env's torque is 2 a
    obs = torch.as_tensor(np.column_stack([np.cos(states[:, 0]), np.sin(states[:, 0]),
                                           states[:, 1]]))
    got = pendulum_reward(obs, torch.as_tensor(actions)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def synthetic_batch(n: int, seed: int):
    """s' = s + f(s, a) + noise on a 3-d state with a 1-d action (no terminations)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    action = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    delta = np.column_stack([np.sin(obs[:, 0]) + action[:, 0], 0.5 * obs[:, 1] * obs[:, 2],
                             np.tanh(obs[:, 2] - action[:, 0])])
    next_obs = (obs + delta + 0.05 * rng.normal(size=(n, 3))).astype(np.float32)
    ones = np.ones(n, np.float32)
    return SimpleNamespace(obs=obs, action=action, reward=0 * ones, discount=ones,
                           next_obs=next_obs, weight=ones)


def test_the_ensembles_nll_decreases_on_a_fixed_dataset():
    torch.manual_seed(0)
    cfg = CEMMPCConfig(hidden_sizes=(32, 32), ensemble_size=3, particles=3)
    model = GaussianEnsemble(3, 1, (32, 32), 3, cfg.max_logvar_init, cfg.min_logvar_init)
    modules, rng = {"model": model}, torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sample, held_out = synthetic_batch(512, 0), synthetic_batch(512, 1)

    def held_out_nll():
        with torch.no_grad():
            return loss(modules, prepare_batch(modules, held_out, cfg, {}, rng), cfg, {}, rng)[1]

    before = None
    for step in range(300):
        batch = prepare_batch(modules, sample, cfg, {}, rng)
        if before is None:
            before = held_out_nll()
        losses, _ = loss(modules, batch, cfg, {}, rng)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    after = held_out_nll()
    assert int(model.fits) == 302  # the statistics were refreshed at every fit
    assert after["nll"] < before["nll"] - 1.0, (before, after)
    assert after["mse"] < 0.1 * before["mse"], (before, after)


class TruePendulum:
    """Pendulum-v1's own equations (rewards.pendulum_dynamics, checked against gymnasium's
    step below) with the ensemble's planning interface: one deterministic member, always
    fitted."""

    members, fitted = 1, True

    def step(self, obs, action, generator):
        return pendulum_dynamics(obs, action)


def test_the_planner_swings_up_and_holds_pendulum_on_the_true_dynamics():
    from rlcore.run.evaluation import evaluate

    spaces = pendulum_spaces()
    cfg = CEMMPCConfig(ensemble_size=1, particles=1)
    planner = CEMPlanner(TruePendulum(), task_for("Pendulum-v1", spaces), cfg, spaces,
                         explore=False)
    returns = evaluate(planner, "Pendulum-v1", {}, episodes=3, seed=0)
    assert len(returns) == 3
    assert returns.mean() >= -200, returns


def test_the_true_model_matches_gymnasium():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=3)
    model = TruePendulum()
    for a in np.linspace(-1, 1, 20):
        predicted = model.step(torch.as_tensor(obs[None], dtype=torch.float64),
                               torch.tensor([[a]]), None)[0].numpy()
        obs, *_ = env.step(np.array([2.0 * a], np.float32))
        np.testing.assert_allclose(predicted, obs, atol=1e-5)


def test_the_planner_replays_exactly_from_the_same_rng():
    spaces = pendulum_spaces()
    cfg = CEMMPCConfig(ensemble_size=2, particles=2, hidden_sizes=(8,), population=20,
                       elites=4, horizon=5, iterations=2)
    from rlcore.plugins.mpc.plugin import make_modules, make_policy

    torch.manual_seed(0)
    modules = make_modules(cfg, spaces)
    modules["model"].fits += 1
    obs = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -1.0]], np.float32)
    runs = []
    for _ in range(2):
        policy, rng = make_policy(modules, cfg, spaces, explore=True), np.random.default_rng(7)
        runs.append([policy.act(obs, rng).action for _ in range(3)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert np.abs(runs[0][0]).max() <= 1.0 and runs[0][0].shape == (2, 1)


def test_check_plugin_passes():
    assert main(["check-plugin", "cem_mpc"]) == 0


def test_envs_without_reward_code_are_refused(tmp_path, capsys):
    code = main(["run", "experiments/cem_mpc_pendulum.yaml", "--set",
                 "env.id=MountainCarContinuous-v0", "--run-dir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert ("cem_mpc and ilqr_mpc plan with reward code written per env (HalfCheetah-v5, "
            "InvertedPendulum-v5, Pendulum-v1, Reacher-v5); algo.task 'Pendulum-v1' needs "
            "observations of shape (3,)") in err
    assert "this env has observations of shape (2,)" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(IncompatibleEnvError, match="have it for HalfCheetah-v5, "
                       "InvertedPendulum-v5, Pendulum-v1, Reacher-v5 only; algo.task is "
                       "'Hopper-v5'"):
        task_for("Hopper-v5", pendulum_spaces())
    with pytest.raises(IncompatibleEnvError, match=r"algo.task 'HalfCheetah-v5' needs "
                       r"observations of shape \(17,\)"):
        task_for("HalfCheetah-v5", pendulum_spaces())
    with pytest.raises(ValueError, match="no reward code for 'Hopper-v5'; cem_mpc and "
                                         "ilqr_mpc support HalfCheetah-v5, InvertedPendulum-v5, "
                                         "Pendulum-v1, Reacher-v5"):
        CEMMPCConfig(task="Hopper-v5")


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("algo", ["cem_mpc", "ilqr_mpc"])
def test_planner_learns_pendulum_within_5000_steps(tmp_path, algo):
    from rlcore.run.lifecycle import train_experiment

    t = time.perf_counter()
    s = train_experiment(f"experiments/{algo}_pendulum.yaml", tmp_path,
                         ["learner.torch_threads=1"])[0]
    print(f"{algo} Pendulum: {s['env_steps']} env steps, {time.perf_counter() - t:.0f} s, "
          f"evals {s['evals']}")
    assert s["stop_reason"] == "eval_return", s["evals"]
    assert s["eval_return_mean"] >= -200 and s["env_steps"] <= 5000
    assert math.isfinite(s["eval_return_mean"])
