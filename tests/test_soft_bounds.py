"""Bounded soft Q-learning (plugins/tabular/bounds.py): the empirical model, the bounds on a
masked set of pairs against hand calculations, when bounds are kept, and the learning effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from rlcore.errors import IncompatibleEnvError
from rlcore.plugins.tabular.solvers import (empirical_model, soft_q_bounds,
                                            soft_value_iteration)


def test_empirical_model_by_hand():
    # S = 2, A = 2; (0, 0) tried 3 times: twice to state 1, once ending the episode, rewards 1.5 in all
    counts = np.zeros((2, 2, 3), np.int64)
    counts[0, 0] = [0, 2, 1]
    counts[1, 0] = [1, 0, 0]
    reward_sum = np.array([[1.5, 0.0], [-2.0, 0.0]])
    P, R, terminal, tried = empirical_model(counts, reward_sum)
    assert P.shape == (3, 2, 3) and R.shape == (3, 2)
    np.testing.assert_allclose(P[0, 0], [0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(P[1, 0], [1, 0, 0])
    np.testing.assert_allclose(P[0, 1], [1, 0, 0])  # untried: a self-loop ...
    np.testing.assert_allclose(P[2, 1], [0, 0, 1])  # the end state absorbs
    assert R[0, 0] == 0.5 and R[1, 0] == -2.0 and R[0, 1] == 0.0
    assert tried.tolist() == [[True, False], [True, False], [False, False]]  # ... marked untried
    assert terminal.tolist() == [False, False, True]
    with pytest.raises(ValueError, match=r"\[S, A, S \+ 1\]"):
        empirical_model(np.zeros((2, 2, 2)), reward_sum)


def test_masked_bounds_by_hand():
    # one state, action 0 loops with reward 1, action 1 never tried; gamma 0.5, estimate Q = 0:
    # TQ(s, 0) = 1 + 0.5 * V(s) = 1 (V = beta^-1 log mean exp(0) = 0), Delta = 1 on the tried pair,
    # so 1 + (0.5/0.5) * min(1, 0) = 1 <= Q*(s, 0) <= 1 + 1 * 1 = 2; the untried pair is unbounded
    P = np.zeros((1, 2, 1)) + 1.0
    R = np.array([[1.0, 0.0]])
    lower, upper = soft_q_bounds(P, R, np.array([False]), 0.5, 3.0, np.zeros((1, 2)),
                                 mask=np.array([[True, False]]))
    assert lower[0, 0] == pytest.approx(1.0) and upper[0, 0] == pytest.approx(2.0)
    assert lower[0, 1] == -np.inf and upper[0, 1] == np.inf
    # with action 1 also known the true optimum lies inside: Q*(s,0) = 1 + 0.5 V*, V* > Q*(s,1)
    _, Q_star, _ = soft_value_iteration(P, R, np.array([False]), 0.5, 3.0)
    lower, upper = soft_q_bounds(P, R, np.array([False]), 0.5, 3.0, np.zeros((1, 2)))
    assert (lower <= Q_star + 1e-12).all() and (Q_star <= upper + 1e-12).all()


def table_with_model(S=2, A=1):
    from rlcore.plugins.tabular.networks import QTable
    return QTable(S, A, 0.0, 1.0, model=True)


def transitions(state, action, reward, next_state, kind):
    from rlcore.plugins.tabular.loss import Transitions
    n = len(state)
    return Transitions(np.array(state), np.array(action), np.array(reward, np.float64),
                       np.array(next_state), np.full(n, -1), np.array(kind, np.int8))


def test_terminations_count_as_the_end_column_and_stochastic_models_are_not_kept():
    from rlcore.plugins.tabular import bounds
    from rlcore.plugins.tabular.config import TabularConfig
    from rlcore.plugins.tabular.loss import EXPECTED, TERMINAL

    cfg = TabularConfig(method="soft_q_learning", bounds="empirical", gamma=0.5, beta=2.0)
    t = table_with_model()
    # 0 -> 1 (reward 0), 1 -> end (reward 1; its recorded next state, 0, is the reset's)
    bounds.record(t, transitions([0, 1], [0, 0], [0.0, 1.0], [1, 0], [EXPECTED, TERMINAL]))
    assert t.next_counts[:, 0].tolist() == [[0, 1, 0], [0, 0, 1]]
    q = np.zeros((2, 1))
    lower, upper = bounds.tighten(t, q, cfg)
    # exact model: Q*(1) = 1, Q*(0) = 0.5; TQ = (0, 1), Delta = (0, 1), scale 1: [0, 1] and [1, 2]
    np.testing.assert_allclose(lower[:, 0], [0.0, 1.0])
    np.testing.assert_allclose(upper[:, 0], [1.0, 2.0])
    lower, upper = bounds.tighten(t, np.array([[0.5], [1.0]]), cfg)  # at Q*: they meet
    np.testing.assert_allclose(lower[:, 0], [0.5, 1.0])
    np.testing.assert_allclose(upper[:, 0], [0.5, 1.0])
    # deterministic so far: the tightest are kept, a looser estimate does not widen them
    lower, upper = bounds.tighten(t, np.array([[-5.0], [9.0]]), cfg)
    np.testing.assert_allclose(lower[:, 0], [0.5, 1.0])
    np.testing.assert_allclose(upper[:, 0], [0.5, 1.0])
    # a second outcome of (0, 0): the model is stochastic, the bounds are recomputed, not kept
    bounds.record(t, transitions([0], [0], [0.0], [0], [EXPECTED]))
    assert not bounds.deterministic_so_far(t.next_counts.numpy())
    lower, upper = bounds.tighten(t, np.array([[-5.0], [9.0]]), cfg)
    assert lower[0, 0] < 0.5 and upper[1, 0] > 1.0
    assert torch.isinf(t.lower).all() and torch.isinf(t.upper).all()  # and not stored


def test_bounds_config_errors():
    from rlcore.plugins.tabular.config import TabularConfig
    from rlcore.plugins.tabular.networks import make_modules
    from rlcore.types import SpaceSpec

    with pytest.raises(ValueError, match="needs method: soft_q_learning and gamma < 1"):
        TabularConfig(method="q_learning", bounds="empirical")
    with pytest.raises(ValueError, match="gamma < 1"):
        TabularConfig(method="soft_q_learning", bounds="empirical", gamma=1.0)
    cfg = TabularConfig(method="soft_q_learning", bounds="empirical")
    spaces = SpaceSpec.from_gym(*_spaces(3000, 4))
    with pytest.raises(IncompatibleEnvError, match="use bounds: none"):
        make_modules(cfg, spaces)


def _spaces(n_obs, n_act):
    import gymnasium as gym
    return gym.spaces.Discrete(n_obs), gym.spaces.Discrete(n_act)


def soft_run(tmp_path, bounds, steps):
    data = yaml.safe_load(open("experiments/tabular_soft_gridworld.yaml"))
    data["algo"]["bounds"] = bounds
    data["stop"]["num_env_steps"] = steps
    data["eval"] = {"episodes": 1}
    data["checkpoint"] = {"every_env_steps": 0}
    data["logging"] = {"progress_every_s": 0}
    path = tmp_path / f"soft-{bounds}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_empirical_bounds_speed_up_soft_q_learning_on_a_deterministic_maze(tmp_path):
    """Seed 0, 10k env steps: max-norm error 1e-4 with bounds against 0.048 without (the
    benchmark, benchmarks/soft_q_convergence.py, measures five seeds and the slippery maze)."""
    import gymnasium as gym

    from rlcore.registry import ensure_env_registered
    from rlcore.run.lifecycle import train_experiment

    ensure_env_registered("rlcore/GridWorld-v0")
    errors = {}
    for bounds in ("none", "empirical"):
        _, run = train_experiment(soft_run(tmp_path, bounds, 10_000), tmp_path / bounds)
        env = gym.make("rlcore/GridWorld-v0", **run.exp.config.env.kwargs).unwrapped
        _, Q, _ = soft_value_iteration(env.P, env.R, env.terminal, 0.9, 5.0)
        table = run.learner.modules["q"]
        q, tried = table.q.detach().numpy(), table.counts.numpy() > 0
        seen = tried.any(axis=1)
        errors[bounds] = np.abs(q[seen] - Q[seen]).max()
        if bounds == "empirical":
            lower, upper = table.lower.numpy(), table.upper.numpy()
            assert ((lower[tried] <= Q[tried] + 1e-9) & (Q[tried] <= upper[tried] + 1e-9)).all()
            assert torch.isfinite(table.upper[torch.from_numpy(tried)]).all()
    assert errors["empirical"] < 0.005 and errors["none"] > 0.03, errors


@pytest.mark.slow
def test_deep_soft_q_policy_is_within_tv_0_1_of_the_exact_soft_optimum(tmp_path):
    """dqn with soft_beta on the maze of tabular_soft_gridworld (one-hot observations): the
    Boltzmann policy of the learned network against pi* from soft value iteration, total
    variation in every state the agent acts in (measured 0.0018 at 20k steps, seed 1)."""
    import gymnasium as gym

    from rlcore.plugins.tabular.solvers import boltzmann_policy
    from rlcore.registry import ensure_env_registered
    from rlcore.run.lifecycle import train_experiment

    ensure_env_registered("rlcore/GridWorld-v0")
    _, run = train_experiment("experiments/soft_dqn_gridworld.yaml", tmp_path / "run",
                              ["logging.progress_every_s=0", "eval.every_env_steps=0"])
    env = gym.make("rlcore/GridWorld-v0", **run.exp.config.env.kwargs).unwrapped
    _, _, pi_star = soft_value_iteration(env.P, env.R, env.terminal, 0.9, 5.0)
    live = ~env.terminal & (env.grid.ravel() != "#")
    with torch.no_grad():
        q = run.learner.modules["q"](torch.eye(env.num_states))[..., 0].numpy()
    pi = boltzmann_policy(q, np.full(q.shape, 0.25), 5.0)
    tv = 0.5 * np.abs(pi - pi_star).sum(axis=1)[live]
    assert tv.max() < 0.1, tv
    assert np.abs(pi_star[live] - 0.25).max() > 0.1  # and pi* is not the uniform prior


def test_deep_soft_target_bounds_by_hand_and_against_the_exact_bounds():
    """dqn's soft_bounds: clip, per batch (plugins/dqn/loss.py soft_target_bounds)."""
    import gymnasium as gym

    from rlcore.plugins.dqn.loss import soft_bootstrap_values, soft_target_bounds
    from rlcore.registry import ensure_env_registered

    # two samples: TQ = [0.5 + 0.5 * 1, 0 + 0] = [1, 0]; Delta = TQ - Q = [1, -1];
    # d/(1-d) = [1, 0]: L = [1 - 1, 0], U = [1 + 1, 0] (a termination is bounded exactly by r)
    lower, upper = soft_target_bounds(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]),
                                      torch.tensor([0.5, 0.0]), torch.tensor([0.5, 0.0]))
    assert lower.tolist() == [0.0, 0.0] and upper.tolist() == [2.0, 0.0]
    # a batch of every (s, a) of a deterministic maze with expected backups: the exact bounds
    ensure_env_registered("rlcore/GridWorld-v0")
    env = gym.make("rlcore/GridWorld-v0", layout="SFFF/F#HF/FFFG", step_reward=-0.05).unwrapped
    gamma, beta = 0.9, 5.0
    Q = np.random.default_rng(0).normal(size=env.R.shape)
    live = np.flatnonzero(~env.terminal)
    s, a = np.repeat(live, 4), np.tile(np.arange(4), len(live))
    nxt = env.P[s, a].argmax(axis=1)
    v_next = soft_bootstrap_values(torch.from_numpy(Q[nxt]), beta)
    discount = torch.from_numpy(np.where(env.terminal[nxt], 0.0, gamma))
    lower, upper = soft_target_bounds(torch.from_numpy(Q[s, a]), v_next,
                                      torch.from_numpy(env.R[s, a]), discount)
    exact_lo, exact_hi = soft_q_bounds(env.P, env.R, env.terminal, gamma, beta, Q)
    into_end = env.terminal[nxt]  # d = 0: bounded by r alone, tighter than the exact bound
    np.testing.assert_allclose(lower.numpy()[~into_end], exact_lo[s, a][~into_end], atol=1e-12)
    np.testing.assert_allclose(upper.numpy()[~into_end], exact_hi[s, a][~into_end], atol=1e-12)
    np.testing.assert_allclose(lower.numpy()[into_end], env.R[s, a][into_end], atol=1e-12)


