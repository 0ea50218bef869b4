"""`rlcore check-plugin NAME --ray`: one Ray actor gives the inline worker's first round, record
for record, for a plugin of each data regime; a policy that ignores the worker's rng fails it."""

import pytest

from rlcore import registry
from rlcore.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    ray.shutdown()


@pytest.fixture
def isolated_registry(monkeypatch):
    import copy

    monkeypatch.setattr(registry, "_extra", copy.deepcopy(registry._extra))


@pytest.mark.parametrize("name", ["ppo", "dqn", "alphazero"])  # trajectory, transition, game
def test_builtins_give_the_same_data_in_a_ray_actor(name, capsys):
    code = main(["check-plugin", name, "--action-kind", "discrete", "--ray"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (f"ok   {name} (discrete) one Ray actor gives the inline worker's data: 1 record(s) "
            "identical") in out


def test_a_policy_ignoring_the_workers_rng_fails_the_ray_check(capsys, isolated_registry):
    registry.register_algorithm("ppo_unseeded_policy", "tests.broken_plugins:UNSEEDED_POLICY")
    assert main(["check-plugin", "ppo_unseeded_policy", "--action-kind", "discrete",
                 "--ray"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL ppo_unseeded_policy (discrete) one Ray actor gives the inline worker's data: "
            "the Ray actor's first round differs from the inline worker's (round[0].action: "
            "arrays differ") in out
    assert "draw its random numbers from the rng the worker passes to act()" in out
