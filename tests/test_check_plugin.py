"""`rlcore check-plugin`: the shipped contract checks pass for every built-in algorithm and
fail, in words, on plugins broken in the ways that otherwise fail silently."""

import dataclasses

import pytest

from rlcore import registry
from rlcore.cli import main
from rlcore.plugins.dqn.plugin import PLUGIN as DQN
from rlcore.plugins.ppo.plugin import PLUGIN as PPO
from rlcore.plugins.sac import loss as sac_loss
from rlcore.plugins.sac.plugin import PLUGIN as SAC

pytestmark = pytest.mark.timeout(300)


def global_rng_loss(modules, batch, cfg, state, rng=None):
    return sac_loss.loss(modules, batch, cfg, state, None)  # draws from torch's global RNG


def always_greedy_policy(modules, cfg, spaces, explore):
    return PPO.make_policy(modules, cfg, spaces, explore=False)


# SAC whose loss ignores its generator; DQN whose target network nobody updates; PPO whose
# make_policy was changed but whose numpy policy (what its actors run) was not
GLOBAL_RNG = dataclasses.replace(SAC, name="sac_global_rng", loss=global_rng_loss)
FROZEN_TARGET = dataclasses.replace(DQN, name="dqn_frozen_target", targets={})
STALE_NUMPY = dataclasses.replace(PPO, name="ppo_stale_numpy", make_policy=always_greedy_policy)


@pytest.fixture
def isolated_registry(monkeypatch):
    import copy

    monkeypatch.setattr(registry, "_extra", copy.deepcopy(registry._extra))


@pytest.mark.parametrize("name", sorted(registry.BUILTIN_ALGORITHMS))
def test_every_builtin_passes(name, capsys):
    assert main(["check-plugin", name]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.endswith(f"{name}: all checks passed\n") and "FAIL" not in out


def test_a_loss_drawing_from_the_global_generator_fails_with_the_fix(capsys, isolated_registry):
    registry.register_algorithm("sac_global_rng", "test_check_plugin:GLOBAL_RNG")
    assert main(["check-plugin", "sac_global_rng"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL sac_global_rng (box) save -> restore -> identical next update: after "
            "restoring step_") in out
    assert "draw every random number of prepare_batch and loss from their rng argument" in out
    assert ("FAIL sac_global_rng (box) same seed -> same run; other seed -> other run: seed 0 "
            "twice gave different parameters after one update") in out
    assert out.endswith("sac_global_rng: 2 check(s) failed\n")


def test_a_target_nobody_updates_fails_with_the_fix(capsys, isolated_registry):
    registry.register_algorithm("dqn_frozen_target", "test_check_plugin:FROZEN_TARGET")
    assert main(["check-plugin", "dqn_frozen_target"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL dqn_frozen_target (discrete) every target network is updated: target_q did "
            "not change in 50 updates while the plugin trained: declare "
            "targets={'target_q': '<online module>'}") in out


def test_unknown_plugin_and_wrong_action_kind_are_bad_input(capsys):
    assert main(["check-plugin", "ppp"]) == 2
    assert "unknown algorithm 'ppp'; did you mean" in capsys.readouterr().err
    assert main(["check-plugin", "dqn", "--action-kind", "box"]) == 2
    assert "--action-kind box: dqn takes discrete actions" in capsys.readouterr().err


def test_a_numpy_policy_that_is_not_make_policys_fails_with_the_fix(capsys, isolated_registry):
    registry.register_algorithm("ppo_stale_numpy", "test_check_plugin:STALE_NUMPY")
    assert main(["check-plugin", "ppo_stale_numpy", "--action-kind", "discrete"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL ppo_stale_numpy (discrete) the numpy policy acts as make_policy: exploring, "
            "the numpy policy's action differs from make_policy's") in out
    assert out.endswith("ppo_stale_numpy: 1 check(s) failed\n")
