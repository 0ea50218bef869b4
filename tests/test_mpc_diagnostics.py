"""The model diagnostics of cem_mpc and ilqr_mpc (plugins/mpc/diagnostics.py) on hand-computable
models and a hand-filled replay, the held-out slots kept out of the fit, and the figures in
TensorBoard after a short run."""

import numpy as np
import pytest
import torch

from rlcore.buffers import ReplayBuffer
from rlcore.plugins.mpc.config import CEMMPCConfig, ILQRMPCConfig
from rlcore.plugins.mpc.diagnostics import (open_loop_mse, planned_versus_random,
                                            replay_chains)
from rlcore.plugins.mpc.model import GaussianEnsemble, held_out, loss, prepare_batch

pytestmark = pytest.mark.timeout(300)


def test_held_out_blocks_by_hand():
    # block 3, every 4: slots 0-2 and 12-14 of 0..14
    expected = [True] * 3 + [False] * 9 + [True] * 3
    assert held_out(np.arange(15), 3, 4).tolist() == expected
    assert not held_out(np.arange(15), 3, 0).any()


def test_open_loop_mse_of_a_linear_model_by_hand():
    # real: s' = s + a; model: s' = 2 s + a (1-d state and action)
    obs = np.array([[[1.0], [1.0], [1.0]],      # s0 = 1, a = (0, 0)
                    [[-1.0], [0.0], [1.0]]])    # s0 = -1, a = (1, 1)
    actions = np.array([[[0.0], [0.0]], [[1.0], [1.0]]])
    # chain 1: predicted 2, 4 against 1, 1 -> errors 1, 9
    # chain 2: predicted -1, -1 against 0, 1 -> errors 1, 4
    mse = open_loop_mse(lambda s, a: 2 * s + a, obs, actions)
    np.testing.assert_allclose(mse, [1.0, 6.5])


def test_planned_versus_random_by_hand():
    # true: s' = s + a; model: s' = s + 2a; reward -s^2; the planner always plans a = 1
    def true_step(s, a):
        return s + a

    def model_step(s, a):
        return s + 2 * a

    def reward(s, a, nxt):  # the rewards' signature; this one reads s only
        return -s[..., 0].square()

    states = np.array([[0.0], [1.0]])
    out = planned_versus_random(model_step, true_step, reward, lambda s: np.ones((5, 1)),
                                states, 2, np.random.default_rng(0))
    # planned, k = 2: model s2 = s0 + 4, true s2 = s0 + 2 -> error 4 for both states;
    # returns r(s0) + r(s1): gap -(s0 + 2)^2 + (s0 + 1)^2 = -3 (s0 = 0) and -5 (s0 = 1)
    assert out["planned_mse_2step"] == pytest.approx(4.0)
    assert out["planned_return_gap"] == pytest.approx(-4.0)
    a = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 2, 1))  # the same draws
    s0 = states[:, 0]
    total = a[:, 0, 0] + a[:, 1, 0]
    assert out["random_mse_2step"] == pytest.approx(np.mean(total ** 2))
    gap = -(s0 + 2 * a[:, 0, 0]) ** 2 + (s0 + a[:, 0, 0]) ** 2
    assert out["random_return_gap"] == pytest.approx(gap.mean())


def filled_buffer(terminate_at: int | None = None) -> ReplayBuffer:
    """One stream: an episode of 30 steps with observation t (truncated at its end, or
    terminated at step ``terminate_at``), then an episode of 10 with observation 100 + t."""
    buf = ReplayBuffer(100, (1,), np.float32, (1,), np.float32, 1)
    for start, length in ((0, 30), (100, 10)):
        for t in range(length):
            term = start == 0 and t == terminate_at
            buf.add(np.array([0]), np.array([[start + t]], np.float32),
                    np.array([[0.01 * (start + t)]], np.float32), np.zeros(1),
                    np.array([term]), np.array([t == length - 1 and not term]),
                    np.array([[start + t + 1]], np.float32))
            if term:
                break
    return buf


def test_replay_chains_keep_to_held_out_slots_and_episodes():
    buf = filled_buffer()
    rng = np.random.default_rng(0)
    # slots: episode 1 takes 0-30 (30 its final observation), episode 2 takes 31-41;
    # held out with block 5, every 2: 0-4, 10-14, 20-24, 30-34, 40-44
    obs, actions = replay_chains(buf, 3, True, 5, 2, 1000, rng)
    starts = sorted(obs[:, 0, 0].tolist())
    # episode 1: chains from 0-2, 10-12, 20-22 (each inside a block); episode 2 (obs 100 + t
    # at slot 31 + t): chains from slots 31 and 32 (obs 100 and 101)
    assert starts == [0, 1, 2, 10, 11, 12, 20, 21, 22, 100, 101]
    for chain, acts in zip(obs, actions):
        np.testing.assert_array_equal(chain[:, 0], chain[0, 0] + np.arange(4))
        np.testing.assert_allclose(acts[:, 0], 0.01 * (chain[0, 0] + np.arange(3)), rtol=1e-6)
    obs, _ = replay_chains(buf, 3, False, 5, 2, 1000, rng)
    # trained-on slots 5-9, 15-19, 25-29 (episode 1), 35-39 (obs 104-108, chains 104-106)
    assert sorted(obs[:, 0, 0].tolist()) == [5, 6, 7, 15, 16, 17, 25, 26, 27, 104, 105, 106]
    assert len(replay_chains(buf, 3, False, 5, 2, 4, rng)[0]) == 4


def test_replay_chains_stop_at_a_termination():
    obs, _ = replay_chains(filled_buffer(terminate_at=16), 3, False, 5, 2, 1000,
                           np.random.default_rng(0))
    # episode 1 ends by termination at step 16 (slot 17 its last frame): no chain from slot
    # 15 or 16; episode 2 then takes slots 18-28 (obs 100 + t at slot 18 + t): trained-on
    # chains only from slot 25 (25-27; 18-20 and 19-21 reach the held-out block 20-24)
    assert sorted(obs[:, 0, 0].tolist()) == [5, 6, 7, 107]


def test_held_out_slots_never_train_the_model():
    torch.manual_seed(0)
    cfg = CEMMPCConfig(hidden_sizes=(8,), ensemble_size=2, particles=2, holdout_every=2,
                       holdout_block=10, diagnostic_steps=10)
    model = GaussianEnsemble(3, 1, (8,), 2)
    rng = np.random.default_rng(0)
    n = 40
    index = np.arange(n)  # slots 0-9 and 20-29 are held out
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    ones = np.ones(n, np.float32)

    def sample(next_obs):
        from types import SimpleNamespace
        return SimpleNamespace(obs=obs, action=np.zeros((n, 1), np.float32), reward=0 * ones,
                               discount=ones, next_obs=next_obs, weight=ones, index=index)

    nxt = obs + 1.0
    batch = prepare_batch({"model": model}, sample(nxt), cfg, {})
    assert batch.train.tolist() == [False] * 10 + [True] * 10 + [False] * 10 + [True] * 10
    # statistics from the 20 trained-on rows only
    np.testing.assert_allclose(model.y_mean.numpy(), [1.0, 1.0, 1.0], rtol=1e-6)
    gen = torch.Generator().manual_seed(0)
    base = loss({"model": model}, batch, cfg, {}, gen)[0]["model"]
    changed = nxt.copy()
    changed[held_out(index, 10, 2)] += 100.0  # the held-out targets do not enter the loss
    batch2 = prepare_batch({"model": model}, sample(changed), cfg, {})
    gen = torch.Generator().manual_seed(0)
    assert loss({"model": model}, batch2, cfg, {}, gen)[0]["model"].item() == pytest.approx(
        base.item())


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match=r"holdout_every \(1\) would hold out every transition"):
        ILQRMPCConfig(holdout_every=1)
    with pytest.raises(ValueError, match=r"holdout_block \(5\) must be at least "
                                         r"diagnostic_steps \(10\)"):
        ILQRMPCConfig(holdout_block=5)


def test_the_diagnostics_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.run.lifecycle import train_experiment

    s = train_experiment("experiments/ilqr_mpc_pendulum.yaml", tmp_path / "run", [
        # random actions throughout; the log window after 1,000 env steps (at 1,010) carries
        # the diagnostics of a model fitted 910 times
        "stop.num_env_steps=1020", "algo.random_steps=1020", "algo.learning_starts=100",
        "algo.hidden_sizes=[16]", "algo.horizon=10", "algo.diagnostic_states=2",
        "eval.every_env_steps=5000", "eval.episodes=1", "learner.torch_threads=1"])[0]
    assert s["env_steps"] == 1020
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for name in ("heldout_mse_1step", "heldout_mse_10step", "train_mse_1step",
                 "train_mse_10step", "planned_mse_10step", "random_mse_10step",
                 "planned_return_gap", "random_return_gap"):
        assert f"learner/{name}" in tags, sorted(tags)
        values = [e.value for e in acc.Scalars(f"learner/{name}")]
        assert all(np.isfinite(values)), (name, values)
    # more steps ahead, more error: on the held-out chains and on the trained-on ones
    last = {n: acc.Scalars(f"learner/{n}")[-1].value for n in ("heldout_mse_1step",
                                                              "heldout_mse_10step")}
    assert last["heldout_mse_10step"] > last["heldout_mse_1step"]


def test_a_mujoco_task_gets_the_planned_versus_random_comparison(tmp_path):
    """HalfCheetah-v5's true step is MuJoCo's (plugins/mpc/mujoco_step.py), so the comparison
    that needs true dynamics runs there too, not only on Pendulum."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.run.lifecycle import train_experiment

    s = train_experiment("experiments/cem_mpc_halfcheetah.yaml", tmp_path / "run", [
        "stop.num_env_steps=1020", "algo.random_steps=1020", "algo.learning_starts=100",
        "algo.hidden_sizes=[16]", "algo.ensemble_size=2", "algo.horizon=5",
        "algo.population=20", "algo.elites=4", "algo.iterations=2", "algo.particles=2",
        "algo.diagnostic_states=2", "eval.every_env_steps=5000", "eval.episodes=1",
        "learner.torch_threads=1"])[0]
    assert s["env_steps"] == 1020
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    for name in ("planned_mse_5step", "random_mse_5step", "planned_return_gap",
                 "random_return_gap"):
        values = [e.value for e in acc.Scalars(f"learner/{name}")]
        assert values and all(np.isfinite(values)), (name, values)
    # the model fitted on random actions predicts random sequences; its error there is a
    # finite, positive number (a model does not fit MuJoCo's step exactly)
    assert acc.Scalars("learner/random_mse_5step")[-1].value > 0
