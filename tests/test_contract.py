"""The contract every algorithm plugin must keep (STYLE.md rule 10): build from YAML, two
updates on a fake env, save -> restore -> identical next update, same seed -> same actions.

A new trajectory-regime plugin joins by adding its name to ALGORITHMS (and to BOX_ALGORITHMS
when it also declares Box actions: those run the same contract on a Box-action fake env); a
transition-regime (replay) plugin joins TRANSITION_CASES, which runs the contract through the
replay driver's parts.
Game-regime plugins (self-play on two-player games) join GAME_ALGORITHMS: the same contract with
self-play games in place of fragments."""

import numpy as np
import pytest
import torch
import yaml

from rlcore.testing.fake_env import register
from rlcore.run import checkpoint
from rlcore.actors.pool import rollout_pool
from rlcore.config import load_experiment
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

ALGORITHMS = ["pg", "ppo", "supervised", "trpo"]
GAME_ALGORITHMS = ["alphazero"]
BOX_ALGORITHMS = ["pg", "ppo", "trpo"]
CASES = [(a, "discrete") for a in ALGORITHMS] + [(a, "box") for a in BOX_ALGORITHMS]


def build(tmp_path, algorithm, seed=0, action_kind="discrete", **algo):
    env_id = register(action_kind)
    text = yaml.safe_dump({
        "algorithm": algorithm, "seed": seed,
        "env": {"id": env_id, "num_envs": 3},
        "rollout": {"num_actors": 0, "fragment_length": 8},
        "learner": {"num_epochs": 2, "minibatch_size": 8, "gns_microbatches": 2},
        "algo": {"hidden_sizes": [16], **algo},
    })
    path = tmp_path / f"{algorithm}-{action_kind}-{seed}.yaml"
    path.write_text(text)
    exp = load_experiment(path)
    spaces = check_spaces(exp)
    return exp, spaces


def assert_same_seed_same_run(run):
    """``run(seed) -> (initial params, fragments, params after an update)``: seed 0 twice gives
    identical weights and fragments, seed 1 other weights and other actions."""
    init0, frags0, after0 = run(0)
    init0b, frags0b, after0b = run(0)
    init1, frags1, _ = run(1)
    assert all(torch.equal(init0[k], init0b[k]) for k in init0)
    assert all(torch.equal(after0[k], after0b[k]) for k in after0)
    for a, b in zip(frags0, frags0b):
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(a.obs, b.obs)
    assert not all(torch.equal(init0[k], init1[k]) for k in init0)
    assert not np.array_equal(frags0[0].action, frags1[0].action)


def saved_and_restored(tmp_path, exp, spaces, learner) -> Learner:
    """A new learner loaded from a checkpoint of ``learner`` written to and read from disk."""
    checkpoint.save(tmp_path / "run", 48, learner.state_tensors(), {
        "algorithm": exp.plugin.name, "spaces": spaces.to_json(), "learner": learner.meta()})
    _, meta, tensors = checkpoint.load_latest(tmp_path / "run", exp.plugin.name, spaces.to_json(),
                                              torch.device("cpu"))
    restored = Learner(exp, spaces, torch.device("cpu"))
    restored.load_state_tensors(tensors)
    restored.load_meta(meta["learner"])
    return restored


def params(learner):
    return {f"{k}.{n}": p.detach().clone() for k, m in learner.modules.items()
            for n, p in m.state_dict().items()}


@pytest.mark.parametrize("algorithm,action_kind", CASES)
def test_two_updates_then_save_restore_gives_identical_next_update(tmp_path, algorithm, action_kind):
    exp, spaces = build(tmp_path, algorithm, action_kind=action_kind)
    pool = rollout_pool(exp, spaces)
    learner = Learner(exp, spaces, torch.device("cpu"))
    before = params(learner)
    for i in range(2):
        frags = pool.sample(learner.weights(), learner.version)
        assert frags[0].policy_version == learner.version
        metrics = learner.update(frags, progress=0.1 * i)
        assert np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
    assert learner.version == 2
    assert any(not torch.equal(before[k], v) for k, v in params(learner).items())

    restored = saved_and_restored(tmp_path, exp, spaces, learner)

    frags = pool.sample(learner.weights(), learner.version)
    m1 = learner.update(frags, progress=0.3)
    m2 = restored.update(frags, progress=0.3)
    p1, p2 = params(learner), params(restored)
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    assert m1 == m2


@pytest.mark.parametrize("algorithm,action_kind", CASES)
def test_same_seed_same_run_other_seed_other_run(tmp_path, algorithm, action_kind):
    def run(seed):
        exp, spaces = build(tmp_path, algorithm, seed=seed, action_kind=action_kind)
        pool = rollout_pool(exp, spaces)
        learner = Learner(exp, spaces, torch.device("cpu"))
        init = params(learner)
        frags = [pool.sample(learner.weights(), learner.version)[0] for _ in range(2)]
        learner.update(frags[:1], 0.0)
        return init, frags, params(learner)

    assert_same_seed_same_run(run)


@pytest.mark.parametrize("algorithm,action_kind", CASES)
def test_fragments_keep_terminated_and_truncated_apart(tmp_path, algorithm, action_kind):
    exp, spaces = build(tmp_path, algorithm, action_kind=action_kind)
    pool = rollout_pool(exp, spaces)
    frag = pool.sample(None, 0)[0]
    for _ in range(3):
        more = pool.sample(None, 0)[0]
        frag.terminated |= more.terminated
        frag.truncated |= more.truncated
    assert frag.terminated.any() and frag.truncated.any()
    assert not (frag.terminated & frag.truncated).any()


def test_truncated_final_obs_is_recorded_for_bootstrapping(tmp_path):
    exp, spaces = build(tmp_path, "ppo")
    pool = rollout_pool(exp, spaces)
    for _ in range(5):
        frag = pool.sample(None, 0)[0]
        assert len(frag.final_obs) == frag.truncated.sum() == len(frag.final_idx)
        for i, (t, n) in enumerate(frag.final_idx):
            assert frag.truncated[t, n] and not frag.terminated[t, n]
            # the episode's true last observation, not the reset observation that follows it
            if t + 1 < frag.obs.shape[0]:
                assert not np.array_equal(frag.obs[t + 1, n], frag.final_obs[i])


def test_episode_returns_and_lengths_span_fragments(tmp_path):
    exp, spaces = build(tmp_path, "pg")
    pool = rollout_pool(exp, spaces)
    frags = [pool.sample(None, 0)[0] for _ in range(6)]
    reward = np.concatenate([f.reward for f in frags])
    done = np.concatenate([f.terminated | f.truncated for f in frags])
    expected = []
    for n in range(reward.shape[1]):
        ret, length = 0.0, 0
        for t in range(reward.shape[0]):
            ret, length = ret + reward[t, n], length + 1
            if done[t, n]:
                expected.append((ret, length))
                ret, length = 0.0, 0
    got = [(r, l) for f in frags for r, l in zip(f.episode_returns, f.episode_lengths)]
    assert len(got) > 10 and sorted(got) == sorted(expected)


@pytest.mark.parametrize("algorithm", BOX_ALGORITHMS)
@pytest.mark.parametrize("squash", [False, True])
def test_box_fragments_hold_float_actions_and_their_log_probs(tmp_path, algorithm, squash):
    exp, spaces = build(tmp_path, algorithm, action_kind="box", squash=squash)
    pool = rollout_pool(exp, spaces)
    learner = Learner(exp, spaces, torch.device("cpu"))
    frag = pool.sample(learner.weights(), learner.version)[0]  # FakeBoxEnv raises out of bounds
    assert frag.action.shape == (8, 3, 2) and frag.action.dtype == np.float32
    assert frag.log_prob.shape == (8, 3) and frag.log_prob.dtype == np.float32
    net = learner.modules["ac"]
    with torch.no_grad():
        dist = net.distribution(net.logits(torch.as_tensor(frag.obs)))
        np.testing.assert_allclose(dist.log_prob(torch.as_tensor(frag.action)).numpy(),
                                   frag.log_prob, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- transition regime
# Off-policy plugins run the same contract through the replay driver's parts: fragments from
# the inline transition pool go into replay, updates sample from it.

TRANSITION_CASES = [("dqn", "discrete"), ("c51", "discrete"), ("qrdqn", "discrete"),
                    ("ddpg", "box"), ("td3", "box"), ("sac", "box")]


def build_replay_trainer(tmp_path, algorithm, action_kind, seed=0, run="run", resume=False, **algo):
    from rlcore.run.lifecycle import Run

    env_id = register(action_kind)
    path = tmp_path / f"{algorithm}-{action_kind}-{seed}.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": algorithm, "seed": seed,
        "env": {"id": env_id, "num_envs": 3},
        "rollout": {"num_actors": 0, "fragment_length": 4},
        "learner": {"torch_threads": 1},
        "algo": {"hidden_sizes": [16], "batch_size": 8, "learning_starts": 0,
                 "buffer_size": 300, **algo},
    }))
    return Run(load_experiment(path), tmp_path / run, resume=resume)


def replay_params(trainer):
    return params(trainer.learner)


def collect(run, version=None, env_steps=None):
    """Publish the learner's weights and take one fragment into replay (as a round does)."""
    run.publish()
    steps = run.env_steps if env_steps is None else env_steps
    for frag in run.pool.stream(lambda slot: {"env_steps": steps, "num_actors": 1}):
        run.regime.add_fragment(frag)


@pytest.mark.parametrize("algorithm,action_kind", TRANSITION_CASES)
def test_transition_updates_then_save_restore_gives_identical_next_update(tmp_path, algorithm,
                                                                          action_kind):
    trainer = build_replay_trainer(tmp_path, algorithm, action_kind, n_step=2)
    try:
        before = replay_params(trainer)
        for _ in range(3):
            collect(trainer)
        assert len(trainer.regime.buffer) == 36
        for _ in range(2):
            metrics = trainer.regime.train_step(0.1)
            assert np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
        assert trainer.learner.version == 2
        assert any(not torch.equal(before[k], v) for k, v in replay_params(trainer).items())
        trainer.save_checkpoint()
    finally:
        trainer.pool.close()
    restored = build_replay_trainer(tmp_path, algorithm, action_kind, n_step=2, resume=True)
    restored.pool.close()
    assert restored.env_steps == trainer.env_steps and restored.learner.version == 2
    sample = trainer.regime.buffer.sample(8)
    m1 = trainer.learner.update(sample, 0.3)
    m2 = restored.learner.update(sample, 0.3)
    p1, p2 = replay_params(trainer), replay_params(restored)
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    td1, td2 = m1.pop("td_abs", None), m2.pop("td_abs", None)
    assert m1 == m2 and (td1 is None) == (td2 is None)
    if td1 is not None:
        np.testing.assert_array_equal(td1, td2)


# ---------------------------------------------------------------- the game regime


def test_every_builtin_plugin_of_these_regimes_is_under_contract():
    from rlcore import registry

    lists = {"trajectory": ALGORITHMS, "game": GAME_ALGORITHMS}
    for name in registry.BUILTIN_ALGORITHMS:
        regime = registry.get_algorithm(name).data_spec.regime
        if regime in lists and name != "tabular":  # tabular: exact solvers, tests/test_tabular.py
            assert name in lists[regime], f"{name} ({regime}) is not in this file's lists"


def build_game(tmp_path, algorithm, seed=0):
    text = yaml.safe_dump({
        "algorithm": algorithm, "seed": seed, "env": {"id": "rlcore/TicTacToe-v0"},
        "learner": {"gns_microbatches": 2},
        "algo": {"channels": 4, "blocks": 1, "value_hidden": 4, "num_simulations": 4,
                 "parallel_games": 2, "games_per_round": 2, "batch_size": 8},
    })
    path = tmp_path / f"{algorithm}-game-{seed}.yaml"
    path.write_text(text)
    exp = load_experiment(path)
    assert exp.plugin.data_spec.regime == "game"
    return exp, check_spaces(exp)


def game_batch(exp, spaces, learner, seed=0):
    from rlcore.buffers.games import GameStore
    from rlcore.plugins.alphazero.selfplay import SelfPlayWorker

    from rlcore.envs.games import make_game

    worker = SelfPlayWorker(exp.plugin, exp.algo, spaces, lambda: make_game("tictactoe"), seed, 0)
    worker.set_weights(learner.weights(), learner.version)
    games = worker.play(exp.algo.games_per_round)
    store = GameStore(10)
    store.add(games)
    return games, store.sample(exp.algo.batch_size, np.random.default_rng(seed))


@pytest.mark.parametrize("algorithm", GAME_ALGORITHMS)
def test_game_regime_two_updates_then_save_restore_gives_identical_next_update(tmp_path, algorithm):
    exp, spaces = build_game(tmp_path, algorithm)
    learner = Learner(exp, spaces, torch.device("cpu"))
    before = params(learner)
    for i in range(2):
        games, sample = game_batch(exp, spaces, learner, seed=i)
        assert all(g.policy_version == learner.version for g in games)
        metrics = learner.update([sample], progress=0.1 * i)
        assert np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
    assert learner.version == 2
    assert any(not torch.equal(before[k], v) for k, v in params(learner).items())
    restored = saved_and_restored(tmp_path, exp, spaces, learner)
    _, sample = game_batch(exp, spaces, learner, seed=5)
    m1, m2 = learner.update([sample], 0.3), restored.update([sample], 0.3)
    p1, p2 = params(learner), params(restored)
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    assert m1 == m2


@pytest.mark.parametrize("algorithm,action_kind", TRANSITION_CASES)
def test_transition_same_seed_same_run_other_seed_other_run(tmp_path, algorithm, action_kind):
    def run(seed):
        trainer = build_replay_trainer(tmp_path, algorithm, action_kind, seed=seed, run=f"r{seed}")
        try:
            init = replay_params(trainer)
            frags = []
            for _ in range(2):
                trainer.publish()
                frags += trainer.pool.stream(lambda slot: {"env_steps": trainer.env_steps,
                                                           "num_actors": 1})
            for f in frags:
                trainer.regime.add_fragment(f)
            trainer.regime.train_step(0.0)
            return init, frags, replay_params(trainer)
        finally:
            trainer.pool.close()

    assert_same_seed_same_run(run)


@pytest.mark.parametrize("algorithm,action_kind", TRANSITION_CASES)
def test_transition_replay_keeps_terminated_and_truncated_apart(tmp_path, algorithm, action_kind):
    trainer = build_replay_trainer(tmp_path, algorithm, action_kind)
    try:
        for _ in range(6):
            collect(trainer, env_steps=0)
    finally:
        trainer.pool.close()
    buf = trainer.regime.buffer
    assert buf.terminated.any() and buf.truncated.any()
    assert not (buf.terminated & buf.truncated).any()
    # every episode's last observation has a slot that starts no transition (for an episode
    # still running: the observation its next step will start from)
    ended = int((buf.terminated | buf.truncated).sum())
    assert len(buf) == 72 and int(buf.count.sum()) == 72 + ended + int((buf.pending >= 0).sum())


@pytest.mark.parametrize("algorithm", GAME_ALGORITHMS)
def test_game_regime_same_seed_same_games_other_seed_other_games(tmp_path, algorithm):
    def run(seed):
        exp, spaces = build_game(tmp_path, algorithm, seed=seed)
        learner = Learner(exp, spaces, torch.device("cpu"))
        games, _ = game_batch(exp, spaces, learner, seed=seed)
        return params(learner), games

    init0, games0 = run(0)
    init0b, games0b = run(0)
    init1, games1 = run(1)
    assert all(torch.equal(init0[k], init0b[k]) for k in init0)
    for a, b in zip(games0, games0b):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.pi, b.pi)
    assert not all(torch.equal(init0[k], init1[k]) for k in init0)
    assert not all(np.array_equal(a.pi, b.pi) for a, b in zip(games0, games1))
