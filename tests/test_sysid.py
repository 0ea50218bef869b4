"""CartPole system identification: checked against Gymnasium's CartPole-v1 and its constants."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.ops.sysid import (CartPoleParams, action_to_force, cartpole_step,
                              collect_random_transitions, identify_cartpole, linear_model)

# Gymnasium CartPole-v1 constants (gymnasium/envs/classic_control/cartpole.py)
TRUE = dict(gravity=9.8, masscart=1.0, masspole=0.1, length=0.5, force_mag=10.0)


@pytest.fixture(scope="module")
def train():
    return collect_random_transitions("CartPole-v1", steps=2000, seed=0)


@pytest.fixture(scope="module")
def fitted(train):
    return identify_cartpole(train.states, train.actions, train.next_states, dones=train.dones)


def test_step_matches_gymnasium():
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    worst_np = worst_torch = 0.0
    for _ in range(200):
        x = np.array(env.state, np.float64)
        a = int(rng.integers(2))
        _, _, terminated, _, _ = env.step(a)
        f = action_to_force(a, 10.0)
        worst_np = max(worst_np, np.abs(cartpole_step(x, f) - env.state).max())
        got = cartpole_step(torch.tensor(x), torch.tensor(float(f)))
        worst_torch = max(worst_torch, np.abs(got.numpy() - env.state).max())
        if terminated:
            env.reset()
    assert worst_np < 1e-6 and worst_torch < 1e-6


def test_step_is_batched_and_differentiable():
    x = torch.tensor([[0.0, 0.0, 0.1, 0.0], [0.0, 0.0, -0.1, 0.0]], dtype=torch.float64)
    g = torch.tensor(9.8, dtype=torch.float64, requires_grad=True)
    out = cartpole_step(x, torch.zeros(2, dtype=torch.float64), CartPoleParams(gravity=g))
    assert out.shape == (2, 4)
    out[0, 3].backward()
    # d(omega')/dg = tau sin(theta) / (l (4/3 - m_p cos^2(theta) / M)) at theta = 0.1
    c, s = np.cos(0.1), np.sin(0.1)
    expected = 0.02 * s / (0.5 * (4 / 3 - 0.1 * c ** 2 / 1.1))
    assert g.grad.item() == pytest.approx(expected, rel=1e-12)


def test_identify_recovers_constants(fitted, train):
    assert train.dones.any() and fitted.n_used == int((~train.dones).sum())
    p = fitted.params
    for name, value in TRUE.items():
        assert getattr(p, name) == pytest.approx(value, rel=1e-2), name
        assert getattr(p, name) == pytest.approx(value, rel=1e-8), name  # noise-free: exact
    assert fitted.force_per_mass == pytest.approx(10.0 / 1.1, rel=1e-8)
    assert fitted.masspole_fraction == pytest.approx(0.1 / 1.1, rel=1e-8)


def test_identify_without_force_mag_gives_scale_free_quantities(train):
    res = identify_cartpole(train.states, train.actions, train.next_states, dones=train.dones,
                            force_mag=None)
    assert res.params is None
    assert res.gravity == pytest.approx(9.8, rel=1e-8)
    assert res.length == pytest.approx(0.5, rel=1e-8)
    # another unit of force (action 1 = 5 N) rescales all masses together, ratios unchanged
    half = identify_cartpole(train.states, train.actions, train.next_states, dones=train.dones,
                             force_mag=5.0).params
    assert half.masscart == pytest.approx(0.5, rel=1e-8)
    assert half.masspole == pytest.approx(0.05, rel=1e-8)


def test_identify_from_float32_observations_within_one_percent():
    obs = collect_random_transitions(steps=2000, seed=0, exact_state=False)
    p = identify_cartpole(obs.states, obs.actions, obs.next_states, dones=obs.dones).params
    for name, value in TRUE.items():
        assert getattr(p, name) == pytest.approx(value, rel=1e-2), name


def test_identified_model_predicts_held_out(fitted):
    test = collect_random_transitions(steps=500, seed=1)
    keep = ~test.dones
    pred = cartpole_step(test.states[keep],
                         action_to_force(test.actions[keep], fitted.params.force_mag),
                         fitted.params)
    assert keep.sum() > 400
    assert np.abs(pred - test.next_states[keep]).max() < 1e-6


def _gym_next(env, x, action):
    env.state = np.array(x, np.float64)
    env.step(action)
    return np.array(env.state, np.float64)


def test_linear_model_matches_finite_differences_of_gymnasium():
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    A, B = linear_model(CartPoleParams())
    x0, eps = np.zeros(4), 1e-6
    # the step is affine in the force, so averaging both pushes gives the zero-force dynamics
    f0 = lambda x: 0.5 * (_gym_next(env, x, 1) + _gym_next(env, x, 0))  # noqa: E731
    A_fd = np.stack([(f0(x0 + eps * e) - f0(x0 - eps * e)) / (2 * eps) for e in np.eye(4)], 1)
    B_fd = (_gym_next(env, x0, 1) - _gym_next(env, x0, 0)) / 20.0
    np.testing.assert_allclose(A, A_fd, atol=1e-7)
    np.testing.assert_allclose(B[:, 0], B_fd, atol=1e-9)
    a = 9.8 / (0.5 * (4 / 3 - 0.1 / 1.1))  # closed form at the upright equilibrium
    assert A[3, 2] == pytest.approx(0.02 * a, rel=1e-12)
    assert A[1, 2] == pytest.approx(-0.02 * (0.05 / 1.1) * a, rel=1e-12)


def test_bad_inputs_raise(train):
    s, a, s2 = train.states, train.actions, train.next_states
    with pytest.raises(ValueError, match=r"next_states: expected shape \(2000, 4\).*found"):
        identify_cartpole(s, a, s2[:-1])
    with pytest.raises(ValueError, match=r"states: expected shape \[N, 4\], found \(2000, 3\)"):
        identify_cartpole(s[:, :3], a, s2[:, :3])
    with pytest.raises(ValueError, match=r"actions: expected shape \(2000,\), found"):
        identify_cartpole(s, a[:10], s2)
    with pytest.raises(ValueError, match=r"actions: expected indices"):
        identify_cartpole(s, a + 1, s2)
    with pytest.raises(ValueError, match=r"expected at least 10 .* found 3"):
        identify_cartpole(s[:3], a[:3], s2[:3])
    with pytest.raises(ValueError, match=r"expected at least 10 .* found 0"):
        identify_cartpole(s[:12], a[:12], s2[:12], dones=np.ones(12, bool))
    still = np.zeros((20, 4))  # upright at rest: the pole equation is not excited
    with pytest.raises(ValueError, match=r"pole equation: expected .* found rank"):
        identify_cartpole(still, np.ones(20, int), cartpole_step(still, 10.0))


def test_lqr_on_the_identified_model_balances_cartpole_on_its_first_episodes():
    """Identify from 2,000 random steps, linearize at the upright equilibrium, solve the
    infinite-horizon LQR, push in the direction of the LQR force (CartPole's actions are +-10 N):
    every one of ten first episodes lasts the full 500 steps, staying near upright."""
    import gymnasium as gym

    from rlcore.ops.control import lqr_infinite

    data = collect_random_transitions("CartPole-v1", 2000, seed=0)
    fit = identify_cartpole(data.states, data.actions, data.next_states, dones=data.dones)
    A, B = linear_model(fit.params)
    K, _ = lqr_infinite(A, B, np.diag([1.0, 1.0, 10.0, 1.0]), [[1e-3]])
    for seed in range(10):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=seed)
        steps, worst_angle, done = 0, 0.0, False
        while not done:
            obs, _, terminated, truncated, _ = env.step(int((-K @ obs)[0] > 0))
            steps, worst_angle = steps + 1, max(worst_angle, abs(float(obs[2])))
            done = terminated or truncated
        assert steps == 500 and not terminated, (seed, steps)
        assert worst_angle < 0.05  # radians; CartPole fails at 0.21
