"""``algo.eval_network`` of the value-based plugins (dqn, c51, qrdqn): the evaluation policy acts
greedily on the online Q-network or on its target copy; the actors' exploring policy always
acts on the online one."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from rlcore import registry
from rlcore.types import SpaceSpec

VEC = SpaceSpec((5,), "float32", "discrete", (), 3)


def modules_of(plugin, cfg) -> dict:
    torch.manual_seed(0)
    modules = plugin.make_modules(cfg, VEC)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # two different networks, off the initial (tiny) output layers
        for m in modules.values():
            for p in m.parameters():
                p.add_(0.5 * torch.randn(p.shape, generator=gen))
    return modules


@pytest.mark.parametrize("algorithm", ["dqn", "c51", "qrdqn"])
def test_the_evaluation_policy_acts_on_the_network_named(algorithm):
    obs = np.random.default_rng(2).normal(size=(64, 5)).astype(np.float32)
    plugin = registry.get_algorithm(algorithm)
    online_cfg = plugin.config_cls()
    target_cfg = plugin.config_cls(eval_network="target")
    assert online_cfg.eval_network == "online"  # the default
    modules = modules_of(plugin, online_cfg)
    swapped = {"q": modules["target_q"], "target_q": modules["q"]}
    rng = np.random.default_rng(0)

    def greedy(mods, cfg, explore=False):
        policy = plugin.make_policy(mods, cfg, VEC, explore)
        policy.epsilon = 0.0  # greedy, also for the exploring one
        return policy.act(obs, rng).action

    on_q, on_target = greedy(modules, online_cfg), greedy(swapped, online_cfg)
    assert (on_q != on_target).any()  # the two networks disagree somewhere
    np.testing.assert_array_equal(greedy(modules, target_cfg), on_target)
    np.testing.assert_array_equal(greedy(modules, online_cfg), on_q)
    # the actors' policy ignores it
    np.testing.assert_array_equal(greedy(modules, target_cfg, explore=True), on_q)


def test_an_unknown_eval_network_is_refused():
    plugin = registry.get_algorithm("dqn")
    with pytest.raises(ValidationError) as err:
        plugin.config_cls(eval_network="polyak")
    assert "eval_network" in str(err.value) and "'online' or 'target'" in str(err.value)
