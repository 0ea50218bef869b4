"""Datasets as one-step environments, the info keys the rollout carries to a plugin, and the
supervised plugin (README, "Datasets as environments")."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from rlcore.testing.fake_env import register
from rlcore.envs import datasets
from rlcore.learner.batches import concat_fragments
from rlcore.plugin import DataSpec
from rlcore.registry import ensure_env_registered, get_algorithm
from rlcore.actors.worker import RolloutWorker, probe_spaces

X_TINY = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
Y_TINY = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("env_id", list(datasets.IDS))
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_dataset_env_passes_gymnasiums_checker(env_id, split):
    ensure_env_registered(env_id)
    check_env(gym.make(env_id, split=split).unwrapped, skip_render_check=True)


def test_tiny_array_dataset_rewards_terminations_and_info_by_hand():
    env = datasets.classification_env(X_TINY, Y_TINY, test_fraction=0.25, split_seed=0)
    test = datasets.classification_env(X_TINY, Y_TINY, split="test", test_fraction=0.25)
    train_rows = datasets.split_indices(4, 0.25, 0, "train")
    assert len(env.X) == 3 and len(test.X) == 1
    assert sorted(np.concatenate([train_rows, datasets.split_indices(4, 0.25, 0, "test")])) == [0, 1, 2, 3]
    mean, std = X_TINY[train_rows].mean(0), X_TINY[train_rows].std(0)  # train statistics only
    np.testing.assert_allclose(test.X, ((X_TINY[~np.isin(range(4), train_rows)] - mean) / std),
                               rtol=1e-6)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and info == {}
    row = train_rows[env._i]
    np.testing.assert_allclose(obs, (X_TINY[row] - mean) / std, rtol=1e-6)
    label = int(Y_TINY[row])
    _, r, term, trunc, info = env.step(label)
    assert (r, term, trunc, info) == (1.0, True, False, {"label": label})
    env.reset(seed=3)
    _, r, term, _, info = env.step((label + 1) % 3)
    assert (r, term, info["label"]) == (0.0, True, label)
    costly = datasets.classification_env(X_TINY, Y_TINY, score=[[1, -1, -5], [0, 2, 0], [0, 0, 3]])
    costly.reset(seed=3)
    assert costly.step(2)[1] == [[1, -1, -5], [0, 2, 0], [0, 0, 3]][label][2]


def test_samples_follow_the_reset_seed_and_the_split_follows_split_seed():
    ensure_env_registered("rlcore/IrisClassification-v0")
    env = gym.make("rlcore/IrisClassification-v0")
    a = [env.reset(seed=7)[0]] + [env.reset()[0] for _ in range(5)]
    b = [env.reset(seed=7)[0]] + [env.reset()[0] for _ in range(5)]
    np.testing.assert_array_equal(a, b)
    c = [env.reset(seed=8)[0]] + [env.reset()[0] for _ in range(5)]
    assert not np.array_equal(a, c)
    s0 = datasets.split_indices(150, 0.25, 0, "test")
    assert np.array_equal(s0, datasets.split_indices(150, 0.25, 0, "test"))
    assert not np.array_equal(s0, datasets.split_indices(150, 0.25, 1, "test"))


def test_regression_reward_is_minus_squared_error_of_standardized_target():
    X = np.arange(20.0).reshape(10, 2)
    y = 3.0 * np.arange(10.0) + 1.0
    env = datasets.regression_env(X, y, test_fraction=0.2)
    env.reset(seed=0)
    target = env.y[env._i]
    _, r, term, _, info = env.step(target + np.float32(0.5))
    assert term and r == pytest.approx(-0.25) and info["label"] == pytest.approx(target)


def test_torch_dataset_becomes_a_classification_env():
    ds = torch.utils.data.TensorDataset(torch.tensor(X_TINY, dtype=torch.float32),
                                        torch.tensor(Y_TINY))
    env = datasets.torch_dataset_env(ds, test_fraction=0.25)
    ref = datasets.classification_env(X_TINY, Y_TINY, test_fraction=0.25)
    np.testing.assert_allclose(env.X, ref.X, rtol=1e-6)
    assert env.action_space.n == 3


def test_autoencoder_enforces_the_bottleneck_and_scores_reconstruction():
    ensure_env_registered("rlcore/DigitsAutoencoder-v0")
    env = gym.make("rlcore/DigitsAutoencoder-v0", code_size=4).unwrapped
    obs, _ = env.reset(seed=0)
    x = obs[1:].copy()
    assert obs[0] == 0.0
    code = np.zeros(64, np.float32)
    code[:4] = [1, 2, 3, 4]
    code[4:] = 9.0  # beyond the code size: must not reach the decoder
    obs2, r, term, _, _ = env.step(code)
    assert (r, term, obs2[0]) == (0.0, False, 1.0)
    np.testing.assert_array_equal(obs2[1:5], [1, 2, 3, 4])
    assert not obs2[5:].any()
    _, r, term, _, _ = env.step(x + 1.0)
    assert term and r == pytest.approx(-1.0)
    assert -1.0 < env.pca_reward() < 0.0


def test_clustering_reward_is_minus_squared_distance_to_the_chosen_centroid_by_hand():
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    env = datasets.clustering_env(X, split_seed=0, centroids=[[0.0, 1.0], [10.0, 1.0]],
                                  standardize=False)
    assert env.action_space.n == 2 and len(env.X) == 3
    # -||x - c||^2 / d with d = 2: every point is 1 from its near centroid, sqrt(101) from the far
    by_hand = {(0.0, 0.0): (-0.5, -50.5), (0.0, 2.0): (-0.5, -50.5),
               (10.0, 0.0): (-50.5, -0.5), (10.0, 2.0): (-50.5, -0.5)}
    seen = set()
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        for action in (0, 1):
            env.reset(seed=seed)
            o, r, term, trunc, info = env.step(action)
            assert (r, term, trunc, info) == (by_hand[tuple(obs)][action], True, False, {})
        seen.add(tuple(obs))
    assert len(seen) == 3
    np.testing.assert_array_equal(env.nearest(X), [0, 0, 1, 1])
    assert env.optimal_reward() == pytest.approx(-0.5)


def test_kmeans_is_seeded_and_finds_two_obvious_clusters():
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0], [0.0, 1.0], [10.0, 1.0]])
    for seed in range(5):
        C = datasets.kmeans(X, 2, seed)
        np.testing.assert_allclose(sorted(map(tuple, C)), [(0.0, 1.0), (10.0, 1.0)])
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(50, 3))
    np.testing.assert_array_equal(datasets.kmeans(Y, 4, 1), datasets.kmeans(Y, 4, 1))


def test_digits_clustering_centroids_come_from_the_train_split_and_are_shared():
    ensure_env_registered("rlcore/DigitsClustering-v0")
    train = gym.make("rlcore/DigitsClustering-v0").unwrapped
    test = gym.make("rlcore/DigitsClustering-v0", split="test").unwrapped
    assert train.action_space.n == 10
    np.testing.assert_array_equal(train.centroids, test.centroids)
    train_rows = datasets.split_indices(1797, 0.25, 0, "train")
    X = datasets._standardize(datasets._load("load_digits")[0].astype(np.float64), train_rows)
    np.testing.assert_allclose(train.centroids, datasets.kmeans(X[train_rows], 10, 0), atol=1e-5)
    # k-means is at a fixed point: each centroid is the mean of the train rows nearest to it
    near = train.nearest()
    for j in np.unique(near):
        np.testing.assert_allclose(train.centroids[j], train.X[near == j].mean(0), atol=1e-4)

    class Nearest:
        def act(self, obs, rng):
            from rlcore.types import ActionOut
            return ActionOut(test.nearest(obs))

    assert datasets.split_mean_reward(Nearest(), test) == pytest.approx(test.optimal_reward())
    assert test.optimal_reward() > -1.0 > -test.sq_distances(test.X).mean()  # beats random


class _Recorder:
    """A stand-in plugin: uniform random actions, asks for the given info keys."""

    def __init__(self, keys):
        self.name = "recorder"
        self.data_spec = DataSpec(needs_log_prob=False, info_keys=keys)

    def make_modules(self, cfg, spaces):
        return {}

    def make_policy(self, modules, cfg, spaces, explore):
        class Uniform:
            def act(self, obs, rng):
                from rlcore.types import ActionOut
                return ActionOut(rng.integers(0, 2, len(obs)))
        return Uniform()


def test_rollout_records_the_steps_info_not_the_resets_under_same_step_autoreset():
    env_id = register()
    plugin = _Recorder(("label", "step_left"))
    spaces = probe_spaces(env_id)
    w = RolloutWorker(plugin, None, spaces, env_id, 4, {}, 16, seed=0, actor_id=0)
    frag = w.sample()
    label, left = frag.info["label"], frag.info["step_left"]
    assert label.shape == left.shape == (16, 4)
    np.testing.assert_array_equal(label, (frag.obs[..., 0] > 0).astype(label.dtype))
    assert frag.terminated.any() and frag.truncated.any()
    assert (left[frag.terminated] == 0).all()  # final_info; the reset info says 3..8
    assert (left[~frag.terminated] > 0).all()
    frag2 = w.sample()
    joined = concat_fragments([frag, frag2])["info"]
    np.testing.assert_array_equal(joined["label"], np.concatenate([label, frag2.info["label"]], 1))


def test_one_step_episodes_carry_labels_and_a_missing_key_is_an_error():
    env_id = "rlcore/DigitsClassification-v0"
    spaces = probe_spaces(env_id)
    w = RolloutWorker(_Recorder(("label",)), None, spaces, env_id, 8, {}, 4, seed=1, actor_id=0)
    frag = w.sample()
    assert frag.terminated.all() and len(frag.episode_lengths) == 32
    env = gym.make(env_id).unwrapped
    for t, n in np.ndindex(4, 8):  # each recorded label belongs to the observation acted on
        row = np.flatnonzero((env.X == frag.obs[t, n]).all(1))
        assert frag.info["label"][t, n] in env.y[row]
        assert frag.reward[t, n] == float(frag.action[t, n] == frag.info["label"][t, n])
    bad = RolloutWorker(_Recorder(("nope",)), None, spaces, env_id, 2, {}, 2, seed=0, actor_id=0)
    with pytest.raises(Exception, match="info\\['nope'\\]"):
        bad.sample()


@pytest.mark.parametrize("algorithm", ["pg", "ppo"])
def test_the_label_never_reaches_rl_plugins(algorithm):
    plugin = get_algorithm(algorithm)
    assert plugin.data_spec.info_keys == ()
    env_id = "rlcore/DigitsClassification-v0"
    spaces = probe_spaces(env_id)
    cfg = plugin.config_cls(hidden_sizes=(8,))
    w = RolloutWorker(plugin, cfg, spaces, env_id, 4, {}, 4, seed=0, actor_id=0)
    frag = w.sample()
    assert frag.info == {}
    batch = plugin.prepare_batch(w.modules, [frag], cfg, plugin.init_state(cfg))
    assert "label" not in batch.fields()


def test_supervised_loss_is_cross_entropy_on_the_label():
    plugin = get_algorithm("supervised")
    spaces = probe_spaces("rlcore/IrisClassification-v0")
    cfg = plugin.config_cls(hidden_sizes=(8,))
    modules = plugin.make_modules(cfg, spaces)
    w = RolloutWorker(plugin, cfg, spaces, "rlcore/IrisClassification-v0", 4, {}, 3, 0, 0)
    w.modules = modules
    batch = plugin.prepare_batch(modules, [w.sample()], cfg, {})
    losses, metrics = plugin.loss(modules, batch, cfg, {})
    expected = torch.nn.functional.cross_entropy(modules["model"](batch.obs), batch.label)
    assert torch.allclose(losses["nll"], expected) and 0 <= metrics["accuracy"] <= 1


def _train_then_test_accuracy(tmp_path, file, *overrides):
    from rlcore.run.lifecycle import train_experiment

    summary, trainer = train_experiment(file, tmp_path, overrides)
    exp = trainer.exp
    policy = exp.plugin.make_policy(trainer.learner.modules, exp.algo, trainer.spaces,
                                    explore=False)
    return summary, datasets.split_mean_reward(policy, exp.config.env.id, "test")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pg_on_digits_reaches_90_percent_test_accuracy(tmp_path):
    summary, accuracy = _train_then_test_accuracy(tmp_path, "experiments/digits_pg.yaml")
    assert summary["env_steps"] <= 300_100 and accuracy >= 0.90, (accuracy, summary["evals"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_supervised_on_digits_reaches_95_percent_test_accuracy(tmp_path):
    summary, accuracy = _train_then_test_accuracy(tmp_path, "experiments/digits_supervised.yaml")
    assert summary["env_steps"] <= 60_200 and accuracy >= 0.95, (accuracy, summary["evals"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kaplan_comparison_script_writes_the_figure_and_pg_needs_more_samples(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks/kaplan_comparison.py"
    spec = importlib.util.spec_from_file_location("kaplan_comparison", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "k.png"
    result = script.main(["--seeds", "0", "--pg-samples", "5000", "--supervised-samples", "1000",
                          "--out", str(out)])
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    ratio = result["early_phase_ratio"]
    assert np.isfinite(ratio) and ratio > 1, result["levels"]
    for row in result["levels"][:len(script.EARLY_LEVELS)]:  # every early level is reached ...
        assert np.isfinite(row["pg_samples"]) and np.isfinite(row["supervised_samples"]), row
        assert row["pg_samples"] > row["supervised_samples"], row  # ... by supervised first


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pg_on_digits_clustering_nears_the_nearest_centroid_rule(tmp_path):
    summary, reward = _train_then_test_accuracy(
        tmp_path, "experiments/digits_pg.yaml", "env.id=rlcore/DigitsClustering-v0",
        "rollout.fragment_length=2", "stop.num_env_steps=60000")
    test = datasets.make_clustering(split="test")
    random = -test.sq_distances(test.X).mean()  # about -6.8; the optimum is about -0.78
    assert reward >= test.optimal_reward() - 0.2 and reward > random / 4, (reward, summary["evals"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_supervised_regression_on_diabetes_beats_the_mean_predictor(tmp_path):
    summary, reward = _train_then_test_accuracy(tmp_path, "experiments/diabetes_supervised.yaml")
    test = datasets.make_regression("Diabetes", split="test")
    mean_predictor = -float((test.y ** 2).sum(-1).mean())  # the train mean is 0: about -0.95
    assert -reward < 0.7 and reward > mean_predictor + 0.2, (reward, summary["evals"])
