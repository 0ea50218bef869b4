"""TRPO's natural-gradient pieces against explicit linear algebra on tiny problems."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from rlcore.plugins.trpo.natural_gradient import (conjugate_gradient, fisher_vector_product,
                                                  line_search, natural_gradient_step)


def test_conjugate_gradient_solves_a_small_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    A = m @ m.T + 0.5 * np.eye(6)
    b = rng.normal(size=6)
    At, bt = torch.tensor(A), torch.tensor(b)
    x, residual = conjugate_gradient(lambda v: At @ v, bt, iters=20, residual_tol=1e-20)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    assert residual < 1e-8


def tiny_policy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    obs = torch.randn(7, 3, dtype=torch.float64)
    return net, obs


def test_fisher_vector_product_matches_the_explicit_kl_hessian():
    net, obs = tiny_policy()
    params = list(net.parameters())
    theta_old = parameters_to_vector(params).detach().clone()
    old_logits = net(obs).detach()


    def kl_functional(theta):
        shapes = [p.shape for p in params]
        pieces, i = [], 0
        for s in shapes:
            k = int(np.prod(s))
            pieces.append(theta[i:i + k].reshape(s))
            i += k
        w1, b1, w2, b2 = pieces
        logits = torch.tanh(obs @ w1.T + b1) @ w2.T + b2
        old = torch.distributions.Categorical(logits=old_logits)
        return torch.distributions.kl_divergence(old, torch.distributions.Categorical(logits=logits)).mean()

    H = torch.autograd.functional.hessian(kl_functional, theta_old)
    kl_fn = lambda: torch.distributions.kl_divergence(  # noqa: E731
        torch.distributions.Categorical(logits=old_logits),
        torch.distributions.Categorical(logits=net(obs))).mean()
    v = torch.randn(len(theta_old), dtype=torch.float64)
    damping = 0.1
    got = fisher_vector_product(kl_fn, params, v, damping)
    np.testing.assert_allclose(got.detach().numpy(), (H @ v + damping * v).numpy(), rtol=1e-8,
                               atol=1e-10)


def quadratic_problem():
    """One parameter vector w; surrogate = c^T w, 'KL' = 0.5 |w - w0|^2."""
    w = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    evaluate = lambda: (float(c @ w), float(0.5 * (w ** 2).sum()))  # noqa: E731
    return w, c, evaluate


def test_line_search_halves_a_step_that_violates_the_kl_bound():
    w, c, evaluate = quadratic_problem()
    step = c * 2.0  # KL of the full step 0.5 * 4 * 5.25 = 10.5; of 1/8 of it 0.164
    res = line_search([w], step, float(c @ step), evaluate, max_kl=0.2)
    assert res.accepted and res.steps == 4 and res.kl <= 0.2
    np.testing.assert_allclose(w.detach().numpy(), (step / 8).numpy())


def test_line_search_shrinks_by_the_backtrack_coefficient():
    w, c, evaluate = quadratic_problem()
    step = c * 2.0  # KL of a fraction f of it: 10.5 f^2; <= 4 from f = 0.617 down
    res = line_search([w], step, float(c @ step), evaluate, max_kl=4.0, backtrack_coef=0.8)
    # fractions tried: 1 (KL 10.5), 0.8 (6.72), 0.64 (4.30), 0.512 (2.75): accepted at the 4th
    assert res.accepted and res.steps == 4 and res.kl == pytest.approx(10.5 * 0.512 ** 2)
    np.testing.assert_allclose(w.detach().numpy(), (step * 0.512).numpy())
    w2, _, evaluate2 = quadratic_problem()  # halving goes from 1 straight to 0.5
    res2 = line_search([w2], step, float(c @ step), evaluate2, max_kl=4.0)
    assert res2.steps == 2 and res2.kl == pytest.approx(10.5 * 0.25)


def test_line_search_keeps_old_parameters_when_no_step_is_within_the_kl_bound():
    w, c, evaluate = quadratic_problem()
    res = line_search([w], c * 1e4, float(c @ c) * 1e4, evaluate, max_kl=1e-12, max_backtracks=5)
    assert not res.accepted and res.kl == 0.0 and res.improvement == 0.0
    assert torch.equal(w.detach(), torch.zeros(3, dtype=torch.float64))


def test_line_search_rejects_a_step_that_worsens_the_surrogate():
    w, c, evaluate = quadratic_problem()
    bad = -c  # within the KL bound at every size, but the surrogate decreases
    res = line_search([w], bad, float(c @ c), evaluate, max_kl=100.0)
    assert not res.accepted and res.steps == 10
    assert torch.equal(w.detach(), torch.zeros(3, dtype=torch.float64))


def test_natural_gradient_step_stays_in_the_trust_region_and_improves_the_surrogate():
    net, obs = tiny_policy()
    params = list(net.parameters())
    old_logits = net(obs).detach()
    action = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0, -0.5, 0.0, 1.0], dtype=torch.float64)
    old_logp = torch.distributions.Categorical(logits=old_logits).log_prob(action)

    def surrogate():
        logp = torch.distributions.Categorical(logits=net(obs)).log_prob(action)
        return ((logp - old_logp).exp() * adv).mean()

    def kl():
        return torch.distributions.kl_divergence(torch.distributions.Categorical(logits=old_logits),
                                                 torch.distributions.Categorical(logits=net(obs))).mean()

    m = natural_gradient_step(params, surrogate, kl, max_kl=0.01, damping=0.1)
    assert m["step_accepted"] == 1.0 and 0 < m["kl"] <= 0.01
    assert m["surrogate_improvement"] > 0.1 * m["expected_improvement"] > 0
    assert abs(float(kl().detach()) - m["kl"]) < 1e-12


def test_value_regression_never_moves_the_policy(tmp_path):
    """With a trust region no step fits in, the policy stays exactly put while Adam (the core's
    optimizer over all parameters) fits the value MLP."""
    from test_contract import build

    from rlcore.actors.pool import rollout_pool
    from rlcore.learner.core import Learner

    exp, spaces = build(tmp_path, "trpo", max_kl=1e-30)
    pool = rollout_pool(exp, spaces)
    learner = Learner(exp, spaces, torch.device("cpu"))
    net = learner.modules["ac"]
    pi0 = [p.detach().clone() for p in net.pi.parameters()]
    v0 = [p.detach().clone() for p in net.v.parameters()]
    m = learner.update(pool.sample(learner.weights(), learner.version), 0.0)
    assert m["step_accepted"] == 0.0 and m["kl"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(pi0, net.pi.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(v0, net.v.parameters()))


def test_gaussian_trust_region_counts_the_log_std():
    """For Box actions the KL must see a change of the state-independent log-std, which is a
    policy parameter (so the natural-gradient step may move it)."""
    from rlcore.networks.blocks import GaussianActorCritic
    from rlcore.plugins.trpo.loss import mean_kl
    from rlcore.plugins.trpo.networks import base_distribution, policy_params
    from rlcore.types import SpaceSpec

    spaces = SpaceSpec((3,), "float32", "box", (2,), 0, (-1.0, -1.0), (1.0, 1.0))
    for squash in (False, True):
        net = GaussianActorCritic(spaces, (8,), squash=squash)
        assert any(p is net.log_std for p in policy_params(net))
        obs = torch.randn(5, 3)
        with torch.no_grad():
            old = base_distribution(net, obs)
        assert float(mean_kl(net, obs, old)) == pytest.approx(0.0, abs=1e-7)
        with torch.no_grad():
            net.log_std.add_(0.1)
        # KL(N(m, s) || N(m, s e^0.1)) per dim = 0.1 + (e^-0.2 - 1) / 2, two dims
        expected = 2 * (0.1 + (np.exp(-0.2) - 1) / 2)
        assert float(mean_kl(net, obs, old)) == pytest.approx(expected, rel=1e-5)


def test_linear_max_kl_schedule_shrinks_the_trust_region_with_progress():
    from rlcore.plugins.trpo.config import TRPOConfig
    from rlcore.plugins.trpo.plugin import trust_region

    const, linear = TRPOConfig(max_kl=0.02), TRPOConfig(max_kl=0.02, max_kl_schedule="linear")
    assert trust_region(const, {"progress": 0.75}) == 0.02
    assert trust_region(linear, {}) == 0.02  # before the first update
    assert trust_region(linear, {"progress": 0.75}) == pytest.approx(0.005)
    assert trust_region(linear, {"progress": 1.0}) == 0.0  # a zero step, which is never accepted
