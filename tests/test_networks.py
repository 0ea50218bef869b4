"""Shared networks and the actors' inference policy."""

import numpy as np
import torch
from torch import nn

from rlcore.networks import ActorCritic, CategoricalPolicy, NatureCNN, NumpyMLP
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
