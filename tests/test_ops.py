"""Pure math against hand-computed values: returns, GAE, PPO surrogate, gradient noise scale."""

import numpy as np
import pytest
import torch

from rlcore.ops.advantages import discounted_returns, gae, next_values
from rlcore.ops.gns import NoiseScale, unbiased_estimates

# One sub-env, four steps: t=1 terminates, t=2 is truncated (final obs value 0.7),
# t=3 is the fragment's last step (bootstrap value 0.6).
R = np.array([[1.0], [1.0], [1.0], [1.0]])
V = np.array([[0.5], [0.4], [0.3], [0.2]])
TERM = np.array([[False], [True], [False], [False]])
TRUNC = np.array([[False], [False], [True], [False]])
DONE = TERM | TRUNC
GAMMA, LAM = 0.9, 0.8


def test_next_values_assembles_bootstrap_final_and_terminal():
    nxt = next_values(V, np.array([0.6]), np.array([0.7]), np.array([[2, 0]]), DONE)
    np.testing.assert_allclose(nxt[:, 0], [0.4, 0.0, 0.7, 0.6])


def test_gae_hand_computed_with_truncation_and_termination():
    nxt = np.array([[0.4], [0.0], [0.7], [0.6]])
    adv = gae(R, V, nxt, TERM, DONE, GAMMA, LAM)
    # deltas: 1+.9*.4-.5=.86, 1-.4=.6 (terminal: no bootstrap), 1+.9*.7-.3=1.33, 1+.9*.6-.2=1.34
    # A3=1.34, A2=1.33 (truncation cuts the sum but bootstrapped), A1=.6, A0=.86+.72*.6=1.292
    np.testing.assert_allclose(adv[:, 0], [1.292, 0.6, 1.33, 1.34], atol=1e-12)


def test_truncation_bootstraps_and_termination_does_not():
    nxt = np.array([[0.4], [5.0], [0.7], [0.6]])  # a value after the terminal step is ignored
    adv = gae(R, V, nxt, TERM, DONE, GAMMA, LAM)
    assert adv[1, 0] == pytest.approx(0.6)
    nxt_trunc_zero = np.array([[0.4], [0.0], [0.0], [0.6]])
    assert gae(R, V, nxt_trunc_zero, TERM, DONE, GAMMA, LAM)[2, 0] == pytest.approx(0.7)


def test_discounted_returns_hand_computed():
    nxt = np.array([[0.4], [0.0], [0.7], [0.6]])
    ret = discounted_returns(R, nxt, TERM, DONE, GAMMA)
    # G3=1+.9*.6=1.54, G2=1+.9*.7=1.63, G1=1 (terminal), G0=1+.9*1=1.9
    np.testing.assert_allclose(ret[:, 0], [1.9, 1.0, 1.63, 1.54], atol=1e-12)
    # reward-to-go equals GAE(lambda=1) + V
    np.testing.assert_allclose(ret, gae(R, V, nxt, TERM, DONE, GAMMA, 1.0) + V, atol=1e-12)


def test_gae_lambda_zero_is_one_step_td_and_envs_are_independent():
    rng = np.random.default_rng(0)
    r, v, nxt = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    term = np.zeros((5, 3), bool)
    adv = gae(r, v, nxt, term, term, 0.99, 0.0)
    np.testing.assert_allclose(adv, r + 0.99 * nxt - v)
    full = gae(r, v, nxt, term, term, 0.99, 0.95)
    np.testing.assert_allclose(full[:, 1:2], gae(r[:, 1:2], v[:, 1:2], nxt[:, 1:2], term[:, :1],
                                                  term[:, :1], 0.99, 0.95))


class _Cfg:
    variant, clip_coef, clip_schedule = "clip", 0.2, "constant"


def test_ppo_clip_value_and_gradient_on_a_fixed_batch():
    from rlcore.plugins.ppo.loss import surrogate

    old = torch.zeros(4)
    # ratios 1.5 (A=+1, clipped at 1.2), 0.5 (A=-1, clipped at 0.8), 1.1 (A=+1), 0.9 (A=-1)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.9])).requires_grad_()
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, metrics = surrogate(new, old, adv, _Cfg, {})
    # -(1.2 - 0.8 + 1.1 - 0.9) / 4 = -0.15
    assert float(loss.detach()) == pytest.approx(-0.15)
    loss.backward()
    # clipped samples give no gradient; unclipped ones -ratio*A/n
    np.testing.assert_allclose(new.grad.numpy(), [0.0, 0.0, -1.1 / 4, 0.9 / 4], atol=1e-6)
    assert float(metrics["clip_frac"]) == pytest.approx(0.5)


def test_ppo_clip_does_not_cap_a_worsening_step():
    """The min keeps the pessimistic term: a ratio far below 1 with A>0 is not clipped."""
    from rlcore.plugins.ppo.loss import surrogate

    new = torch.log(torch.tensor([0.5])).requires_grad_()
    loss, _ = surrogate(new, torch.zeros(1), torch.tensor([2.0]), _Cfg, {})
    assert float(loss.detach()) == pytest.approx(-1.0)  # -(0.5 * 2), not -(0.8 * 2)
    loss.backward()
    assert float(new.grad) == pytest.approx(-1.0)


def test_ppo_kl_variant_penalty_and_adaptation():
    from rlcore.plugins.ppo.loss import adapt_kl_coef, surrogate

    class Cfg:
        variant = "kl"

    new = torch.log(torch.tensor([2.0, 0.5]))
    loss, m = surrogate(new, torch.zeros(2), torch.tensor([1.0, 1.0]), Cfg, {"kl_coef": 0.5})
    k3 = ((2 - 1 - np.log(2)) + (0.5 - 1 - np.log(0.5))) / 2
    assert float(m["approx_kl"]) == pytest.approx(k3, rel=1e-6)
    assert float(loss) == pytest.approx(-(2.0 + 0.5) / 2 + 0.5 * k3, rel=1e-6)
    assert adapt_kl_coef(1.0, 0.02, 0.01) == 2.0
    assert adapt_kl_coef(1.0, 0.005, 0.01) == 0.5
    assert adapt_kl_coef(1.0, 0.01, 0.01) == 1.0


def test_unbiased_estimates_invert_the_expectation():
    g2, tr = 3.0, 48.0  # E|G_B|^2 = |G|^2 + tr/B
    est = unbiased_estimates(g2 + tr / 4, 4, g2 + tr / 64, 64)
    assert est == pytest.approx((3.0, 48.0))
    with pytest.raises(ValueError):
        unbiased_estimates(1.0, 8, 1.0, 8)


def test_noise_scale_on_synthetic_gradients_with_known_variance():
    """Per-sample gradients G + N(0, s^2 I) in d dims: B_simple = d s^2 / |G|^2 = 10*4/2.5 = 16."""
    rng = np.random.default_rng(0)
    d, s, b_small, k = 10, 2.0, 8, 4
    G = np.full(d, 0.5)
    gns = NoiseScale(decay=0.999)
    for _ in range(4000):
        per_sample = G + s * rng.normal(size=(b_small * k, d))
        small = per_sample.reshape(k, b_small, d).mean(1)
        gns.update(float((small ** 2).sum(1).mean()), b_small, float((per_sample.mean(0) ** 2).sum()),
                   b_small * k)
    assert gns.value == pytest.approx(16.0, rel=0.15)
    assert "far above" in gns.verdict(1000)
    assert "far below" in gns.verdict(1)


def test_schedules_keep_or_decay_linearly_to_zero():
    from rlcore.ops.schedule import scheduled

    assert scheduled(3e-4, "constant", 0.6) == 3e-4
    assert scheduled(3e-4, "linear", 0.0) == 3e-4
    assert scheduled(3e-4, "linear", 0.6) == pytest.approx(1.2e-4)
    assert scheduled(3e-4, "linear", 1.0) == 0.0
