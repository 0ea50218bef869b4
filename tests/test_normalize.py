"""Running observation normalization and reward scaling: the statistics (hand-computed), one set
per run merged from every actor, published with the weights, checkpointed, used in evaluation."""

import numpy as np
import pytest
import torch
import yaml

from rlcore.testing.fake_env import register_counter
from rlcore.actors.pool import rollout_pool
from rlcore.config import load_experiment
from rlcore.errors import IncompatibleEnvError
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces
from rlcore.ops.normalize import (NormalizedPolicy, NormSettings, RunNormalizer, RunningStats,
                                  WorkerNormalizer, normalize_obs)
from rlcore.actors.worker import RolloutWorker


def test_running_stats_by_hand():
    s = RunningStats(())
    assert s.var == 1.0  # nothing seen: normalizing is the identity
    s.update(np.array([1.0, 2.0, 3.0]))
    s.update(np.array([4.0, 5.0]))
    assert s.count == 5 and s.mean == pytest.approx(3.0) and s.var == pytest.approx(2.0)


def test_merging_deltas_equals_one_stream():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, (n, 4)) for n in (7, 1, 30, 12)]
    merged = RunningStats((4,))
    for p in parts:
        d = RunningStats((4,))
        d.update(p)
        merged.merge(RunningStats.from_numpy(d.to_numpy()))  # as shipped in a fragment
    whole = np.concatenate(parts)
    assert merged.count == len(whole)
    np.testing.assert_allclose(merged.mean, whole.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, whole.var(0), rtol=1e-12)


def test_reward_scaling_by_hand():
    """gamma 0.5, rewards 1, 1, 1: returns 1, 1.5, 1.75; each reward is divided by the std of
    the returns seen so far (the first std is 0, so the reward is clipped to 10)."""
    w = WorkerNormalizer(NormSettings(reward=True, gamma=0.5), (2,), num_envs=1)
    no = np.array([False])
    out = [float(w.reward(np.array([1.0]), no)[0]) for _ in range(3)]
    var3 = np.var([1.0, 1.5, 1.75])  # 0.097222...
    assert out == pytest.approx([10.0, 1 / 0.25, 1 / np.sqrt(var3)], rel=1e-6)
    assert var3 == pytest.approx(0.0972222, rel=1e-5)
    # an episode end resets the discounted return after the step
    w.reward(np.array([1.0]), np.array([True]))
    assert w.discounted[0] == 0.0


def worker(actor_id, norm):
    from rlcore.registry import get_algorithm

    env_id = register_counter()
    plugin = get_algorithm("ppo")
    cfg = plugin.config_cls(hidden_sizes=(8,))
    from rlcore.actors.worker import probe_spaces

    spaces = probe_spaces(env_id)
    return RolloutWorker(plugin, cfg, spaces, env_id, 2, {}, 5, seed=0, actor_id=actor_id,
                         norm=norm)


def test_two_workers_build_one_set_of_statistics():
    """Each sub-env acts on k = 0, 1, 2, 3, 0 in the first fragment (truncated at k = 4): the
    run's statistics after merging both actors' deltas are those of all 20 observations."""
    settings = NormSettings(obs=True)
    workers = [worker(i, settings) for i in (0, 1)]
    frags = [w.sample() for w in workers]
    run = RunNormalizer(settings, (2,))
    run.absorb(f.norm_delta for f in frags)
    k = np.array([0, 1, 2, 3, 0] * 4, np.float64)
    assert run.obs.count == 20
    np.testing.assert_allclose(run.obs.mean, [1.2, 13.0])
    np.testing.assert_allclose(run.obs.var, [1.36, 136.0])
    np.testing.assert_allclose(run.obs.var, np.stack([k, 10 * k + 1], 1).var(0))
    # the first step was normalized with the two observations seen so far (both k = 0: std 0)
    np.testing.assert_array_equal(frags[0].obs[0], np.zeros((2, 2), np.float32))
    assert frags[0].obs.dtype == np.float32

    # the next fragment normalizes with the run's statistics plus the worker's own new steps
    w = workers[0]
    w.set_weights({**{n: {k2: v.detach().numpy() for k2, v in m.state_dict().items()}
                      for n, m in w.modules.items()}, RunNormalizer.KEY: run.to_numpy()}, 1)
    frag = w.sample()  # acts on k = 1, 2, 3, 0, 1; truncated at its step 2
    expected = run.obs.copy()
    expected.update(np.array([[1.0, 11.0]] * 2))
    np.testing.assert_allclose(frag.obs[0], normalize_obs(np.array([[1.0, 11.0]] * 2), expected, 10),
                               rtol=1e-6)
    assert frag.norm_delta["obs"]["count"] == 10  # only its own new steps are shipped
    # the truncated episode's true last observation (k = 4) is normalized, not counted
    assert frag.final_idx.tolist() == [[2, 0], [2, 1]]
    for k in (2.0, 3.0):  # acted on at steps 1 and 2
        expected.update(np.array([[k, 10 * k + 1]] * 2))
    np.testing.assert_allclose(frag.final_obs[0], normalize_obs(np.array([4.0, 41.0]), expected, 10),
                               rtol=1e-6)
    # episode returns are raw: 4 steps of reward 1
    assert frag.episode_returns.tolist() == [4.0, 4.0]


def experiment(tmp_path, **env):
    path = tmp_path / "norm.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "ppo", "seed": 0,
        "env": {"id": register_counter(), "num_envs": 2, "normalize_obs": True,
                "normalize_reward": True, **env},
        "rollout": {"num_actors": 0, "fragment_length": 8},
        "learner": {"minibatch_size": 8, "num_epochs": 1},
        "algo": {"hidden_sizes": [8], "gamma": 0.9},
    }))
    exp = load_experiment(path)
    return exp, check_spaces(exp)


def test_learner_merges_publishes_and_checkpoints_the_statistics(tmp_path):
    exp, spaces = experiment(tmp_path)
    assert NormSettings.of(exp).gamma == 0.9  # the return's discount defaults to algo.gamma
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    steps = 0
    for _ in range(3):
        frags = pool.sample(learner.weights(), learner.version)
        steps += sum(f.num_steps for f in frags)
        learner.update(frags, 0.0)
    assert learner.normalizer.obs.count == steps == 48  # every observation acted on, once
    assert learner.normalizer.ret.count == steps
    published = learner.weights()[RunNormalizer.KEY]
    np.testing.assert_array_equal(published["obs"]["mean"], learner.normalizer.obs.mean)

    restored = Learner(exp, spaces, torch.device("cpu"))
    restored.load_state_tensors(learner.state_tensors())
    for part in ("obs", "ret"):
        a, b = getattr(learner.normalizer, part), getattr(restored.normalizer, part)
        assert a.count == b.count
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.m2, b.m2)

    # evaluation sees observations normalized with the run's statistics, frozen
    seen = []

    class Spy:
        def act(self, obs, rng):
            seen.append(obs)

    policy = learner.policy_for_eval(learner.modules, explore=False)
    assert isinstance(policy, NormalizedPolicy)
    NormalizedPolicy(Spy(), policy.normalizer).act(np.array([[2.0, 21.0]]), None)
    stats = learner.normalizer.obs
    np.testing.assert_allclose(seen[0], (np.array([[2.0, 21.0]]) - stats.mean) / np.sqrt(stats.var + 1e-8),
                               rtol=1e-6)
    pool.close()


def test_normalizing_a_discrete_observation_is_refused(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "ppo", "env": {"id": "FrozenLake-v1", "normalize_obs": True}}))
    exp = load_experiment(path)
    with pytest.raises(IncompatibleEnvError, match="env.normalize_obs needs a Box observation"):
        check_spaces(exp)


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_two_ray_actors_feed_one_set_of_statistics(tmp_path):
    import ray

    from rlcore.run.lifecycle import train_experiment

    path = tmp_path / "ray.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "ppo", "seed": 1,
        "env": {"id": "Pendulum-v1", "num_envs": 2, "normalize_obs": True, "normalize_reward": True},
        "rollout": {"num_actors": 2, "fragment_length": 16},
        "learner": {"minibatch_size": 32, "num_epochs": 1},
        "algo": {"hidden_sizes": [8]},
        "stop": {"num_env_steps": 256}, "eval": {"episodes": 1},
        "ray": {"num_cpus": 2},
    }))
    try:
        summary, trainer = train_experiment(path, tmp_path / "run")
    finally:
        ray.shutdown()
    norm = trainer.learner.normalizer
    assert summary["env_steps"] == 256
    assert norm.obs.count == norm.ret.count == 256  # both actors' steps, each counted once
    # Pendulum's observation is (cos, sin, angular velocity): the first two lie in [-1, 1]
    assert np.all(np.abs(norm.obs.mean[:2]) <= 1) and np.all(norm.obs.var[:2] <= 1)
    assert norm.obs.var[2] > 0.01


def test_rlcore_eval_normalizes_like_the_run_did(tmp_path, capsys):
    """``rlcore eval`` loads the statistics from the checkpoint: with the seed of the run's
    final evaluation it reproduces that evaluation exactly (deterministic policy)."""
    import json

    from rlcore.cli import main

    path = tmp_path / "pendulum.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "ppo", "seed": 4,
        "env": {"id": "Pendulum-v1", "num_envs": 2, "normalize_obs": True, "normalize_reward": True},
        "rollout": {"num_actors": 0, "fragment_length": 64},
        "learner": {"minibatch_size": 64, "num_epochs": 2},
        "algo": {"hidden_sizes": [16]},
        "stop": {"num_env_steps": 512}, "eval": {"episodes": 2},
        "logging": {"progress_every_s": 0},
    }))
    run = tmp_path / "run"
    assert main(["run", str(path), "--run-dir", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2", "--seed", "4"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["eval_return_mean"] == pytest.approx(summary["eval_return_mean"], rel=1e-9)


def test_a_fragment_dropped_for_nans_leaves_the_statistics_alone(monkeypatch):
    from rlcore.errors import NonFiniteEnvError

    w = worker(0, NormSettings(obs=True, reward=True))
    w.sample()
    before = w.norm.snapshot()

    def nan_found(frag):
        raise NonFiniteEnvError("non-finite obs")

    monkeypatch.setattr(w, "_check_finite", nan_found)
    with pytest.raises(NonFiniteEnvError):
        w.sample()
    for a, b in zip(before, w.norm.snapshot()):
        if isinstance(a, RunningStats):
            assert a.count == b.count
            np.testing.assert_array_equal(a.mean, b.mean)
            np.testing.assert_array_equal(a.m2, b.m2)
        else:
            np.testing.assert_array_equal(a, b)
    assert w.norm.delta_obs.count == 0  # the first fragment's delta was shipped, nothing since


def test_normalization_is_refused_for_replay_algorithms(tmp_path):
    from rlcore.errors import ConfigError

    path = tmp_path / "td3.yaml"
    path.write_text("algorithm: td3\nenv:\n  id: Pendulum-v1\n  normalize_obs: true\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert f"{path}:4" in str(info.value)
    assert ("env.normalize_obs is for the on-policy algorithms (pg, ppo, trpo); td3 (transition "
            "regime) does not support it: remove it") in str(info.value)
