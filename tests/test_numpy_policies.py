"""Torch-free actor policies: each built-in plugin's numpy policy (``numpy_policy`` spec, built
by ``rlcore.policies.numpy_policy``) acts as its torch policy (``make_policy``) does, given the
same observations and generator state; an actor with a numpy policy never imports torch."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from rlcore import registry
from rlcore.errors import PluginError
from rlcore.learner.core import to_numpy_weights
from rlcore.networks.export import net_spec, ops_of
from rlcore.policies.numpy_nets import NetSpec, NumpyNet
from rlcore.policies.numpy_policy import NumpyPolicySpec, build
from rlcore.types import SpaceSpec

VEC = SpaceSpec((5,), "float32", "discrete", (), 3)
BOX = SpaceSpec((5,), "float32", "box", (2,), 0, (-2.0, 0.0), (2.0, 10.0))
IMAGE = SpaceSpec((4, 84, 84), "uint8", "discrete", (), 6)

# (plugin, spaces, algo overrides, exact): exact = the numpy forward is the one the torch
# policy already ran (NumpyMLP), so outputs are bit-identical; else within 1e-6
CASES = {
    "ppo-categorical": ("ppo", VEC, {}, True),
    "ppo-gaussian": ("ppo", BOX, {}, True),
    "ppo-gaussian-squashed": ("ppo", BOX, {"squash": True, "log_std_init": -0.5}, True),
    "ppo-nature-cnn": ("ppo", IMAGE, {}, False),
    "pg-categorical": ("pg", VEC, {}, True),
    "trpo-gaussian": ("trpo", BOX, {}, True),
    "supervised-categorical": ("supervised", VEC, {}, True),
    "dqn": ("dqn", VEC, {"eps_start": 0.4}, True),
    "dqn-dueling": ("dqn", VEC, {"eps_start": 0.4, "dueling": True}, False),
    "dqn-boltzmann": ("dqn", VEC, {"eps_start": 0.2, "soft_beta": 2.0, "double_q": False}, True),
    "dqn-nature-cnn": ("dqn", IMAGE, {"eps_start": 0.4, "dueling": True}, False),
    "c51": ("c51", VEC, {"eps_start": 0.4}, True),
    "c51-dueling": ("c51", VEC, {"eps_start": 0.4, "dueling": True}, False),
    "qrdqn": ("qrdqn", VEC, {"eps_start": 0.4}, True),
    "ddpg": ("ddpg", BOX, {"exploration_noise": 0.3}, True),
    "td3": ("td3", BOX, {}, True),
    "sac": ("sac", BOX, {}, False),
}


def policies(name: str, explore: bool):
    """(torch policy, numpy policy, observations) of a case, on randomly perturbed weights."""
    algorithm, spaces, overrides, _ = CASES[name]
    plugin = registry.get_algorithm(algorithm)
    cfg = plugin.config_cls(**overrides)
    torch.manual_seed(0)
    modules = plugin.make_modules(cfg, spaces)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # off the initial weights (tiny output layers, zero biases)
        for m in modules.values():
            for p in m.parameters():
                fan_in = p[0].numel() if p.dim() > 1 else 25
                p.add_(0.5 / fan_in ** 0.5 * torch.randn(p.shape, generator=gen))
            m.eval()
    weights = to_numpy_weights({k: m for k, m in modules.items() if not k.startswith("target")})
    spec = plugin.numpy_policy(modules, cfg, spaces)
    spec = pickle.loads(pickle.dumps(spec))  # as an actor receives it
    numpy_policy = build(spec, cfg, spaces, explore)
    numpy_policy.load_weights(weights)
    rng = np.random.default_rng(2)
    if spaces.obs_dtype == "uint8":
        obs = rng.integers(0, 256, (8, *spaces.obs_shape), dtype=np.uint8)
    else:
        obs = rng.normal(size=(8, *spaces.obs_shape)).astype(np.float32)
    return plugin.make_policy(modules, cfg, spaces, explore), numpy_policy, obs


@pytest.fixture(autouse=True)
def one_torch_thread():
    """torch's sums run in an order that depends on its thread count, which an earlier test
    in this process may have changed (a run sets it): one thread, as in an actor."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same(a, b, exact: bool, what: str):
    if a is None or b is None:
        assert a is None and b is None, what
    elif exact:
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:  # float32 sums in another order (numpy's BLAS and im2col, not torch's kernels)
        # 1e-6 of the outputs' scale, and 4e-6 for the Nature CNN, whose first dense layer sums
        # 3,136 products: two float32 orders of such a sum differ by up to about sqrt(3136) x
        # 6e-8 = 3.4e-6 of its scale (measured: 1.15e-6 with one torch thread on an AVX2 CPU)
        rel = 4e-6 if "cnn" in what else 1e-6
        np.testing.assert_allclose(a, b, rtol=0, atol=rel * max(1.0, np.abs(b).max()),
                                   err_msg=what)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("explore", [True, False])
def test_numpy_policy_acts_as_the_torch_policy(name, explore):
    torch_policy, numpy_policy, obs = policies(name, explore)
    exact = CASES[name][3]
    rngs = np.random.default_rng(3), np.random.default_rng(3)
    for step in range(4):
        a, b = torch_policy.act(obs, rngs[0]), numpy_policy.act(obs, rngs[1])
        # discrete actions must agree exactly; a float difference below 1e-6 flipping an
        # argmax would need a near-tie these weights do not have
        if a.action.dtype.kind in "iu":
            np.testing.assert_array_equal(a.action, b.action)
        else:
            assert_same(a.action, b.action, exact, f"{name} actions at step {step}")
        assert_same(a.log_prob, b.log_prob, exact, f"{name} log-probs at step {step}")
        if a.env_action is not None:  # compared in the policy's [-1, 1] units (1e-6 of a
            scale = (np.array(BOX.action_high) - BOX.action_low) / 2  # 5-wide range is 5e-6)
            assert_same(a.env_action / scale, b.env_action / scale, exact,
                        f"{name} env actions at step {step}")
        obs = obs[::-1].copy()
    assert rngs[0].random() == rngs[1].random()  # the same numbers were drawn


@pytest.mark.parametrize("name", ["dqn", "dqn-dueling", "dqn-nature-cnn", "c51", "c51-dueling",
                                  "qrdqn"])
def test_numpy_q_values_match_the_torch_network(name):
    torch_policy, numpy_policy, obs = policies(name, explore=True)
    assert_same(torch_policy.values(obs), numpy_policy.values(obs), CASES[name][3], name)


def test_conv2d_matches_torch_for_strides_and_channels():
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=1),
                        nn.Tanh(), nn.Flatten(), nn.Linear(4 * 7 * 7, 6))
    x = torch.randn(5, 3, 21, 21, generator=gen)
    numpy_net = NumpyNet(net_spec("m", (net, "")))
    numpy_net.load(to_numpy_weights({"m": net}))
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(numpy_net(x.numpy()), expected, rtol=1e-5, atol=1e-6)
    conv_only = NumpyNet(net_spec("m", (net[0], "0.")))  # an image out: NCHW, as torch's
    conv_only.load(to_numpy_weights({"m": net}))
    with torch.no_grad():
        np.testing.assert_allclose(conv_only(x.numpy()), net[0](x).numpy(), rtol=1e-5, atol=1e-6)


def test_the_forward_never_writes_into_observations_or_weights():
    net = nn.Sequential(nn.ReLU(), nn.Linear(4, 3), nn.Tanh())
    weights = to_numpy_weights({"m": net})
    for arr in weights["m"].values():
        arr.flags.writeable = False  # as Ray's object store hands them over
    numpy_net = NumpyNet(net_spec("m", (net, "")))
    numpy_net.load(weights)
    obs = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    numpy_net(obs)
    assert obs.tolist() == [[-1.0, 2.0, -3.0, 4.0]]


def test_specs_that_do_not_fit_are_errors_for_people():
    with pytest.raises(PluginError, match="op .*'gelu'"):
        NetSpec("m", (("gelu",),))
    with pytest.raises(PluginError, match="Sigmoid"):
        ops_of(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()))
    with pytest.raises(PluginError, match="Conv2d"):
        ops_of(nn.Conv2d(1, 1, 3, padding=1))
    numpy_net = NumpyNet(NetSpec("q", (("linear", "head"),)))
    with pytest.raises(PluginError, match="no module 'q'.*they have ac"):
        numpy_net.load({"ac": {}})
    with pytest.raises(PluginError, match="no 'head.weight'"):
        numpy_net.load({"q": {}})
    with pytest.raises(PluginError, match="cannot be imported"):
        build(NumpyPolicySpec("rlcore.policies.nowhere:policy", {}), None, VEC, True)


# ------------------------------------------------------------ actors without torch

CHILD = textwrap.dedent("""
    import pickle, sys
    from rlcore.actors.pool import WorkerHost
    factory, kwargs, weights = pickle.load(open(sys.argv[1], "rb"))
    host = WorkerHost(factory, kwargs, in_ray=True)
    host.worker.set_weights(weights, 0)
    frag = host.worker.work({"env_steps": 0, "num_actors": 1})
    pickle.dump((frag, sorted(m for m in sys.modules if m.split(".")[0] == "torch")),
                open(sys.argv[2], "wb"))
""")


@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_an_actor_with_a_numpy_policy_never_imports_torch(tmp_path, algorithm):
    """A rollout actor's process for PPO and DQN on CartPole: built from the kwargs its slot
    sends (pickled, as Ray sends them), given the learner's weights, it collects a fragment
    without torch; the fragment is the one the torch policy collects."""
    from rlcore.actors.worker import RolloutWorker, rollout_worker_spec
    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.run.checks import check_spaces

    exp = load_experiment(data={
        "algorithm": algorithm, "seed": 3, "env": {"id": "CartPole-v1", "num_envs": 4},
        "rollout": {"num_actors": 1, "fragment_length": 16},
        "learner": {"minibatch_size": 0}, "algo": {"eps_start": 0.3} if algorithm == "dqn" else {}})
    spaces = check_spaces(exp)
    spec = rollout_worker_spec(exp, spaces)
    kwargs = spec.kwargs(0, 0, True)
    assert kwargs["numpy_policy"] is not None
    weights = Learner(exp, spaces, torch.device("cpu")).weights(for_actors=True)
    (tmp_path / "in.pkl").write_bytes(pickle.dumps((spec.factory, kwargs, weights)))
    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "in.pkl"), str(tmp_path / "out.pkl")],
                   check=True, timeout=120)
    frag, torch_modules = pickle.loads((tmp_path / "out.pkl").read_bytes())
    assert torch_modules == []
    assert frag.num_steps == 64

    torch_worker = RolloutWorker(**dict(spec.kwargs(0, 0, False), numpy_policy=None))
    torch_worker.set_weights(weights, 0)
    expected = torch_worker.work({"env_steps": 0, "num_actors": 1})
    np.testing.assert_array_equal(frag.action, expected.action)
    np.testing.assert_array_equal(frag.obs, expected.obs)
    if algorithm == "ppo":
        np.testing.assert_array_equal(frag.log_prob, expected.log_prob)


def test_a_numpy_worker_acting_before_any_weights_starts_from_the_torch_workers_weights():
    """Driven by hand (no pool sends weights first), the numpy worker builds the plugin's
    modules from the same seed, as the torch worker does: the same first fragment."""
    from rlcore.actors.worker import RolloutWorker
    from rlcore.networks.export import numpy_policy_of

    plugin = registry.get_algorithm("ppo")
    cfg = plugin.config_cls()
    spaces = SpaceSpec((4,), "float32", "discrete", (), 2)
    args = (plugin, cfg, spaces, "CartPole-v1", 3, {}, 8)
    numpy_worker = RolloutWorker(*args, seed=5, actor_id=1,
                                 numpy_policy=numpy_policy_of(plugin, cfg, spaces))
    torch_worker = RolloutWorker(*args, seed=5, actor_id=1)
    a, b = numpy_worker.work(), torch_worker.work()
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)


@pytest.mark.ray
def test_a_ray_rollout_actor_has_no_torch():
    import ray

    from rlcore.actors.pool import rollout_pool
    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.run.checks import check_spaces

    exp = load_experiment(data={
        "algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "num_envs": 2},
        "rollout": {"num_actors": 1, "fragment_length": 8, "num_cpus_per_actor": 0.5},
        "learner": {"minibatch_size": 0}})
    spaces = check_spaces(exp)
    pool = rollout_pool(exp, spaces)
    try:
        pool.publish(Learner(exp, spaces, torch.device("cpu")).weights(for_actors=True), 0)
        assert pool.round([None])[0].num_steps == 16
        loaded = ray.get(pool.actors[0].__ray_call__.remote(
            lambda host: sorted(m for m in sys.modules if m.split(".")[0] == "torch")))
        assert loaded == []
    finally:
        pool.close()
        ray.shutdown()
