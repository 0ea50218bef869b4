"""Shared networks and the actors' inference policy."""

import numpy as np
import torch
from torch import nn

import math

from rlcore.ops.actions import rescale_action
from rlcore.networks.blocks import (ActorCritic, CategoricalPolicy, GaussianActorCritic, GaussianPolicy,
                             NatureCNN, NumpyMLP, make_actor_critic, tanh_log_det)
from rlcore.types import SpaceSpec

VEC = SpaceSpec((4,), "float32", "discrete", (), 3)


def test_numpy_policy_matches_torch_and_follows_weight_loads():
    torch.manual_seed(0)
    net, other = ActorCritic(VEC, (16, 16)), ActorCritic(VEC, (16, 16))
    policy = CategoricalPolicy(net, explore=False)
    assert policy._np_pi is not None
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = torch.log_softmax(net.logits(torch.from_numpy(obs)), -1).numpy()
    np.testing.assert_allclose(policy.log_probs(obs), expected, atol=1e-5)
    net.load_state_dict(other.state_dict())  # copies into the same tensors: views stay valid
    with torch.no_grad():
        expected = torch.log_softmax(other.logits(torch.from_numpy(obs)), -1).numpy()
    assert policy._np_pi.valid()
    np.testing.assert_allclose(policy.log_probs(obs), expected, atol=1e-5)
    net.load_state_dict(ActorCritic(VEC, (16, 16)).state_dict(), assign=True)  # new tensors
    assert not policy._np_pi.valid()
    with torch.no_grad():  # falls back to torch, still correct
        expected = torch.log_softmax(net.logits(torch.from_numpy(obs)), -1).numpy()
    np.testing.assert_allclose(policy.log_probs(obs), expected, atol=1e-6)


def test_numpy_mlp_only_for_plain_mlps():
    assert NumpyMLP.build(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))) is not None
    assert NumpyMLP.build(nn.Sequential(nn.Linear(2, 3), nn.Sigmoid())) is None
    assert NumpyMLP.build(nn.Linear(2, 3)) is None


def test_sampling_follows_the_distribution():
    net = ActorCritic(VEC, (8,))
    with torch.no_grad():
        for p in net.pi.parameters():
            p.zero_()
        net.pi[-1].bias.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
    policy = CategoricalPolicy(net, explore=True)
    out = policy.act(np.zeros((20000, 4), np.float32), np.random.default_rng(1))
    freq = np.bincount(out.action, minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)
    np.testing.assert_allclose(np.exp(out.log_prob), np.array([0.2, 0.3, 0.5])[out.action], rtol=1e-5)
    greedy = CategoricalPolicy(net, explore=False).act(np.zeros((3, 4), np.float32), None)
    assert greedy.action.tolist() == [2, 2, 2]


def test_image_observations_use_the_nature_cnn():
    spaces = SpaceSpec((4, 84, 84), "uint8", "discrete", (), 6)
    net = ActorCritic(spaces)
    assert isinstance(net.torso, NatureCNN)
    policy = CategoricalPolicy(net, explore=True)
    assert policy._np_pi is None
    out = policy.act(np.zeros((2, 4, 84, 84), np.uint8), np.random.default_rng(0))
    assert out.action.shape == (2,) and out.log_prob.shape == (2,)
    logits, value = net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert logits.shape == (2, 6) and value.shape == (2,)


BOX = SpaceSpec((4,), "float32", "box", (2,), action_low=(-2.0, 0.0), action_high=(2.0, 10.0))


def gaussian(squash=False, log_std_init=0.0):
    torch.manual_seed(0)
    return GaussianActorCritic(BOX, (8,), squash=squash, log_std_init=log_std_init)


def test_box_spaces_get_the_gaussian_actor_critic():
    assert isinstance(make_actor_critic(BOX, (8,), "tanh"), GaussianActorCritic)
    assert type(make_actor_critic(VEC, (8,), "tanh")) is ActorCritic
    net = gaussian(log_std_init=-0.5)
    mean, value = net(torch.zeros(3, 4))
    assert mean.shape == (3, 2) and value.shape == (3,)
    np.testing.assert_allclose(net.log_std.detach().numpy(), [-0.5, -0.5])


def test_value_mlp_can_be_wider_than_the_policy_mlp():
    from rlcore.registry import get_algorithm

    def widths(seq):
        return [m.out_features for m in seq if isinstance(m, nn.Linear)]

    for space in (VEC, BOX):
        net = make_actor_critic(space, (8, 8), "tanh", value_hidden=(32, 16))
        assert widths(net.pi) == [8, 8, net.pi[-1].out_features]
        assert widths(net.v) == [32, 16, 1]
        assert widths(make_actor_critic(space, (8,), "tanh").v) == [8, 1]  # default: as pi
    for name in ("pg", "ppo", "trpo"):  # the algo key reaches the modules
        plugin = get_algorithm(name)
        cfg = plugin.config_cls(hidden_sizes=(8,), value_hidden_sizes=(24,))
        ac = plugin.make_modules(cfg, BOX)["ac"]
        assert widths(ac.pi) == [8, 2] and widths(ac.v) == [24, 1], name


def test_gaussian_log_prob_matches_torch_and_a_hand_calculation():
    net = gaussian(log_std_init=0.3)
    mean = torch.randn(5, 2)
    action = torch.randn(5, 2)
    ref = torch.distributions.Normal(mean, math.exp(0.3)).log_prob(action).sum(-1)
    torch.testing.assert_close(net.distribution(mean).log_prob(action), ref)
    # 1-D by hand: mean 0.5, std e^0.3, a = 1.2
    one = GaussianActorCritic(SpaceSpec((4,), "float32", "box", (1,), action_low=(-1.0,),
                                        action_high=(1.0,)), (8,), log_std_init=0.3)
    z = (1.2 - 0.5) / math.exp(0.3)
    hand = -0.5 * z * z - 0.3 - 0.5 * math.log(2 * math.pi)
    got = one.distribution(torch.tensor([[0.5]])).log_prob(torch.tensor([[1.2]]))
    assert abs(float(got.detach()) - hand) < 1e-6


def test_tanh_gaussian_log_prob_matches_torch_and_a_hand_calculation():
    net = gaussian(squash=True, log_std_init=-0.2)
    mean = torch.randn(6, 2, dtype=torch.float64)
    u = torch.randn(6, 2, dtype=torch.float64) * 2.0
    base = torch.distributions.Normal(mean, math.exp(-0.2))
    ref = torch.distributions.TransformedDistribution(
        base, [torch.distributions.TanhTransform()]).log_prob(torch.tanh(u)).sum(-1)
    net.double()
    torch.testing.assert_close(net.distribution(mean).log_prob(u), ref)
    # 1-D by hand at mean 0, std 1, u = 0.7: log N(0.7) - log(1 - tanh(0.7)^2)
    hand = -0.5 * 0.49 - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(0.7) ** 2)
    one = GaussianActorCritic(SpaceSpec((4,), "float32", "box", (1,), action_low=(-1.0,),
                                        action_high=(1.0,)), (8,), squash=True)
    got = one.distribution(torch.zeros(1, 1)).log_prob(torch.tensor([[0.7]]))
    assert abs(float(got.detach()) - hand) < 1e-5


def test_tanh_log_det_is_stable_for_large_inputs():
    u = np.array([-40.0, -5.0, 0.0, 5.0, 40.0])
    got = tanh_log_det(u)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[1:4], np.log(1 - np.tanh(u[1:4]) ** 2), rtol=1e-6)
    np.testing.assert_allclose(got[[0, 4]], 2 * math.log(2) - 80, rtol=1e-9)  # 4 e^-2|u|
    torch.testing.assert_close(tanh_log_det(torch.from_numpy(u)), torch.from_numpy(got))


def test_rescale_maps_minus_one_one_onto_the_bounds():
    low, high = np.array([-2.0, 0.0, -np.inf]), np.array([2.0, 10.0, np.inf])
    np.testing.assert_allclose(rescale_action(np.array([-1.0, -1.0, -1.0]), low, high), [-2, 0, -1])
    np.testing.assert_allclose(rescale_action(np.array([1.0, 1.0, 3.0]), low, high), [2, 10, 3])
    np.testing.assert_allclose(rescale_action(np.array([0.0, 0.5, 0.0]), low, high), [0, 7.5, 0])


def test_gaussian_policy_samples_with_the_right_mean_and_std():
    net = gaussian(log_std_init=math.log(0.5))
    with torch.no_grad():
        for p in net.pi.parameters():
            p.zero_()
        net.pi[-1].bias.copy_(torch.tensor([0.2, -0.4]))
    policy = GaussianPolicy(net, explore=True)
    assert policy._np_pi is not None
    out = policy.act(np.zeros((20000, 4), np.float32), np.random.default_rng(1))
    assert out.action.shape == (20000, 2) and out.action.dtype == np.float32
    np.testing.assert_allclose(out.action.mean(0), [0.2, -0.4], atol=0.015)
    np.testing.assert_allclose(out.action.std(0), [0.5, 0.5], atol=0.015)
    expected = net.distribution(torch.tensor([[0.2, -0.4]])).log_prob(torch.from_numpy(out.action))
    np.testing.assert_allclose(out.log_prob, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    # unsquashed: the env gets the rescaled sample clipped to the bounds; fragments keep it raw
    env = out.env_action
    assert (env >= [-2, 0]).all() and (env <= [2, 10]).all()
    inside = (np.abs(out.action) < 1).all(-1)
    # (the expectation adds 1 to a float32 action first: absolute float32 resolution, 1e-7)
    np.testing.assert_allclose(env[inside], (out.action[inside] + 1) * [2, 5] + [-2, 0], rtol=1e-5,
                               atol=1e-6)
    greedy = GaussianPolicy(net, explore=False).act(np.zeros((3, 4), np.float32), None)
    np.testing.assert_allclose(greedy.action, [[0.2, -0.4]] * 3, rtol=1e-6)
    np.testing.assert_allclose(greedy.env_action, [[0.4, 3.0]] * 3, rtol=1e-5)


def test_squashed_policy_steps_the_env_with_rescaled_tanh():
    net = gaussian(squash=True, log_std_init=0.5)
    out = GaussianPolicy(net, explore=True).act(np.random.default_rng(0).normal(
        size=(500, 4)).astype(np.float32), np.random.default_rng(2))
    np.testing.assert_allclose(out.env_action, (np.tanh(out.action) + 1) * [2, 5] + [-2, 0],
                               rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        dist = net.distribution(net.logits(torch.from_numpy(np.random.default_rng(0).normal(
            size=(500, 4)).astype(np.float32))))
        np.testing.assert_allclose(out.log_prob, dist.log_prob(torch.from_numpy(out.action)),
                                   rtol=1e-4, atol=1e-4)
