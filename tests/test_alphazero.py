"""AlphaZero: the search's formulas on hand-built trees, visit-count targets, the sign of value
backups, batching and tree reuse, illegal moves, the game store, the loss, self-play records,
the trainer, ``rlcore play``, and (slow) learning perfect tic-tac-toe."""

import math

import numpy as np
import pytest
import torch
import yaml

from rlcore.buffers.games import GameRecord, GameStore
from rlcore.envs.games import IllegalMoveError
from rlcore.envs.games.tictactoe import TicTacToe
from rlcore.errors import ConfigError
from rlcore.plugins.alphazero.mcts import (MCTS, Node, advance, backup, choose, puct_scores,
                                           select_action, visit_policy)

torch.set_num_threads(1)


def uniform_evaluator(value=0.0):
    def evaluate(obs, legal):
        return legal / legal.sum(-1, keepdims=True), np.full(len(obs), value)
    return evaluate


def hand_node(P, N, W, legal=None):
    node = Node(TicTacToe())
    node.expand(np.asarray(P, float))
    if legal is not None:
        node.legal = np.asarray(legal)
        node.Q = np.where(node.legal, 0.0, -np.inf)
    for a, (n, w) in enumerate(zip(N, W)):
        if n:
            node.update(a, float(n), float(w))
    return node


# ---------------------------------------------------------------- PUCT


def test_puct_scores_follow_the_formula_on_a_hand_built_node():
    # P = (.5, .3, .2, 0...), N = (2, 1, 0), W = (1, -.5, 0), c = 1.5, sum N = 3
    P = [0.5, 0.3, 0.2] + [0.0] * 6
    node = hand_node(P, [2, 1, 0], [1.0, -0.5, 0.0])
    s3 = math.sqrt(3)
    expected = [0.5 + 1.5 * 0.5 * s3 / 3, -0.5 + 1.5 * 0.3 * s3 / 2, 0.0 + 1.5 * 0.2 * s3 / 1]
    np.testing.assert_allclose(puct_scores(node, 1.5)[:3], expected)  # .933, -.110, .520
    np.testing.assert_allclose(puct_scores(node, 1.5)[3:], 0.0)  # legal, no prior, unvisited
    assert select_action(node, 1.5) == 0
    # a larger c_puct favours the unvisited move: c = 10 gives 0.5 + 2.887 = 3.387 for move 0
    # and 3.464 for move 2
    assert select_action(node, 10.0) == 2
    np.testing.assert_allclose(puct_scores(node, 10.0)[[0, 2]], [0.5 + 10 * .5 * s3 / 3, 10 * .2 * s3])


def test_select_action_matches_puct_scores_and_never_picks_an_illegal_move():
    rng = np.random.default_rng(0)
    for _ in range(200):
        legal = rng.random(9) < 0.6
        legal[rng.integers(9)] = True
        P = rng.dirichlet(np.ones(9))  # prior mass on illegal moves too (masked by expand)
        node = Node(TicTacToe())
        node.expand(P)
        node.legal, node.P = legal, np.where(legal, P, 0) / np.where(legal, P, 0).sum()
        node.Q = np.where(legal, 0.0, -np.inf)
        for a in np.flatnonzero(legal):
            n = int(rng.integers(0, 5))
            if n:
                node.update(a, n, float(rng.uniform(-n, n)))
        scores = puct_scores(node, 1.3)
        assert select_action(node, 1.3) == int(np.argmax(scores))
        assert legal[select_action(node, 1.3)]


# ---------------------------------------------------------------- visit-count targets


def test_visit_policy_temperatures():
    counts = np.array([3, 5, 5, 0, 1])
    np.testing.assert_allclose(visit_policy(counts, 1.0), [3 / 14, 5 / 14, 5 / 14, 0, 1 / 14])
    np.testing.assert_allclose(visit_policy(counts, 0.0), [0, 0.5, 0.5, 0, 0])  # tau -> 0
    np.testing.assert_allclose(visit_policy(counts, 0.5), np.array([9, 25, 25, 0, 1]) / 60)
    # small tau approaches the limit without overflowing (401^10000 is not a float)
    np.testing.assert_allclose(visit_policy(np.array([400, 401, 0]), 1e-3),
                               np.array([1, np.exp(1000 * np.log(401 / 400)), 0]) /
                               (1 + np.exp(1000 * np.log(401 / 400))))
    np.testing.assert_allclose(visit_policy(np.array([400, 401, 0]), 1e-4), [0, 1, 0], atol=1e-9)


def test_visit_policy_rejects_visits_on_illegal_moves_and_empty_counts():
    legal = np.array([True, False, True])
    with pytest.raises(IllegalMoveError, match=r"search visited illegal moves \[1\]; legal "
                                               r"moves: \[0, 2\]"):
        visit_policy(np.array([1, 2, 0]), 1.0, legal)
    with pytest.raises(IllegalMoveError, match="no move was visited"):
        visit_policy(np.zeros(3), 1.0)


# ---------------------------------------------------------------- backups


def test_value_backup_sign_alternates_between_players():
    game = TicTacToe()
    nodes = []
    for a in (0, 1, 2):  # players 0, 1, 0 move
        node = Node(game.clone())
        node.expand(np.ones(9))
        nodes.append((node, a))
        game.apply(a)
    leaf_player = game.current_player()  # player 1 to move at the leaf
    assert [n.player for n, _ in nodes] == [0, 1, 0] and leaf_player == 1
    backup(nodes, leaf_player, 0.8)
    assert [n.W[a] for n, a in nodes] == [-0.8, 0.8, -0.8]
    assert [n.N[a] for n, a in nodes] == [1, 1, 1]
    assert [n.Q[a] for n, a in nodes] == [-0.8, 0.8, -0.8]


def test_search_finds_the_winning_move_and_scores_it_from_the_movers_view():
    game = TicTacToe()
    for a in (0, 3, 1, 4):  # X to move wins with 2 (and must, O threatens 5)
        game.apply(a)
    root = Node(game)
    MCTS(uniform_evaluator(0.0), c_puct=1.5, num_simulations=200).search([root])
    assert choose(root, 0.0, None) == 2
    assert root.Q[2] == 1.0  # a terminal win, every time, from X's view
    assert root.N.sum() == 200


def test_virtual_loss_batches_leave_consistent_statistics():
    root = Node(TicTacToe())
    search = MCTS(uniform_evaluator(0.1), num_simulations=64, leaves_per_tree=8)
    search.search([root])
    assert root.N.sum() == 64
    assert search.forward_passes < 64  # several leaves per forward pass

    def check(node):  # every edge's visits = its child's visits + 1 (its own expansion)
        if not node.expanded:
            return
        for a, child in node.children.items():
            if child.expanded and not child.is_terminal:
                assert node.N[a] == child.N.sum() + 1
                check(child)
            np.testing.assert_allclose(node.Q[a], node.W[a] / node.N[a])
    check(root)


def test_batching_across_games_gives_the_same_trees_as_searching_one_by_one():
    def evaluate(obs, legal):  # deterministic, position-dependent
        v = np.tanh(obs[:, 0].sum((1, 2)) - obs[:, 1].sum((1, 2)) + obs[:, 0, 0, 0] * 0.3)
        p = legal * (1.0 + obs[:, 1].reshape(len(obs), -1))
        return p / p.sum(-1, keepdims=True), v

    games = []
    for moves in ([], [4], [0, 8], [1, 4, 7]):
        g = TicTacToe()
        for a in moves:
            g.apply(a)
        games.append(g)
    batched = [Node(g.clone()) for g in games]
    search = MCTS(evaluate, num_simulations=40)
    search.search(batched)
    assert search.forward_passes == 40 + 1  # the roots, then one pass per simulation round
    for g, b in zip(games, batched):
        alone = Node(g.clone())
        MCTS(evaluate, num_simulations=40).search([alone])
        np.testing.assert_array_equal(alone.N, b.N)
        np.testing.assert_allclose(alone.W, b.W)


def test_tree_reuse_keeps_the_subtree_and_adds_new_simulations():
    game = TicTacToe()
    root = Node(game)
    search = MCTS(uniform_evaluator(0.0), num_simulations=50)
    search.search([root])
    a = choose(root, 0.0, None)
    kept = root.children[a].N.sum()
    game.apply(a)
    child = advance(root, a, game)
    assert child is root.children[a] and child.N.sum() == kept > 0
    search.search([child])
    assert child.N.sum() == kept + 50
    fresh = advance(root, 99, game)  # never expanded: a fresh root
    assert fresh is not child and not fresh.expanded


def test_dirichlet_noise_only_on_legal_root_moves():
    game = TicTacToe()
    game.apply(4)
    root = Node(game)
    search = MCTS(uniform_evaluator(0.0), num_simulations=1, dirichlet_alpha=0.3,
                  dirichlet_eps=0.25)
    search.search([root], np.random.default_rng(0), noise=True)
    assert root.P[4] == 0 and abs(root.P.sum() - 1) < 1e-12
    assert not np.allclose(root.P, root.P_clean)
    np.testing.assert_allclose(root.P_clean[root.legal], 1 / 8)
    assert (root.P[root.legal] >= 0.75 / 8 - 1e-12).all()  # (1 - eps) p + eps noise


# ---------------------------------------------------------------- illegal moves


def test_an_illegal_move_from_search_raises():
    root = Node(TicTacToe())
    MCTS(uniform_evaluator(), num_simulations=10).search([root])
    root.game.apply(0)  # the position changed under the tree: its move 0 is now illegal
    root.N[:] = 0
    root.N[0] = 5
    with pytest.raises(IllegalMoveError, match="search returned illegal move 0"):
        choose(root, 0.0, None)
    root2 = Node(TicTacToe())
    root2.expand(np.ones(9))
    root2.legal[3] = False
    root2.N[3] = 2
    with pytest.raises(IllegalMoveError, match=r"search visited illegal moves \[3\]"):
        choose(root2, 1.0, np.random.default_rng(0))
    with pytest.raises(IllegalMoveError, match="search chose illegal move 3"):
        root2.child(3)


def test_priors_on_illegal_moves_are_masked_out():
    game = TicTacToe()
    for a in (0, 1, 2):
        game.apply(a)

    def all_on_taken(obs, legal):
        p = np.zeros(legal.shape)
        p[:, 0] = 1.0  # the network insists on the taken corner
        return p, np.zeros(len(obs))

    root = Node(game)
    MCTS(all_on_taken, num_simulations=30).search([root])
    assert root.N[[0, 1, 2]].sum() == 0 and root.N.sum() == 30
    np.testing.assert_allclose(root.P_clean[root.legal], 1 / 6)  # no legal mass: uniform


# ---------------------------------------------------------------- records and store


def test_game_record_backfills_the_outcome_for_each_mover():
    rec = GameRecord.from_moves(np.zeros((5, 2, 3, 3)), np.ones((5, 9), bool),
                                np.full((5, 9), 1 / 9), [0, 1, 0, 1, 0], 1.0, 3, 1)
    np.testing.assert_array_equal(rec.z, [1, -1, 1, -1, 1])
    assert rec.winner == 0 and rec.length == 5 and rec.policy_version == 3
    rec = GameRecord.from_moves(np.zeros((4, 2, 3, 3)), np.ones((4, 9), bool),
                                np.full((4, 9), 1 / 9), [0, 1, 0, 1], -1.0, 0, 0)
    np.testing.assert_array_equal(rec.z, [-1, 1, -1, 1])
    assert rec.winner == 1
    draw = GameRecord.from_moves(np.zeros((2, 2, 3, 3)), np.ones((2, 9), bool),
                                 np.full((2, 9), 1 / 9), [0, 1], 0.0, 0, 0)
    np.testing.assert_array_equal(draw.z, [0, 0])
    assert draw.winner == -1


def record(tag: float, length: int) -> GameRecord:
    return GameRecord.from_moves(np.full((length, 2, 3, 3), tag), np.ones((length, 9), bool),
                                 np.full((length, 9), 1 / 9), np.arange(length) % 2, 1.0, 0, 0)


def test_game_store_keeps_the_last_n_games_and_samples_positions_uniformly():
    store = GameStore(3)
    store.add([record(i, length=1 + i) for i in range(5)])  # games of 1..5 positions
    assert len(store) == 3 and store.total_games == 5 and store.num_positions == 3 + 4 + 5
    batch = store.sample(12_000, np.random.default_rng(0))
    tags = batch["obs"][:, 0, 0, 0]
    assert set(np.unique(tags)) == {2.0, 3.0, 4.0}  # never the evicted games 0 and 1
    freq = np.array([(tags == t).mean() for t in (2.0, 3.0, 4.0)])
    np.testing.assert_allclose(freq, np.array([3, 4, 5]) / 12, atol=0.015)  # by positions
    assert batch["pi"].shape == (12_000, 9) and batch["z"].shape == (12_000,)


def test_game_store_file_round_trip_keeps_the_window_and_refuses_another_game(tmp_path):
    store = GameStore(3)
    store.add([record(i, length=1 + i) for i in range(5)])
    store.save(tmp_path / "games.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["games.npz"]  # no temporary left
    back = GameStore(3)
    back.load(tmp_path / "games.npz", (2, 3, 3), 9)
    assert back.total_games == 5 and [g.length for g in back.games] == [3, 4, 5]
    assert [float(g.obs[0, 0, 0, 0]) for g in back.games] == [2.0, 3.0, 4.0]
    smaller = GameStore(2)  # a smaller window keeps the newest games
    smaller.load(tmp_path / "games.npz", (2, 3, 3), 9)
    assert [g.length for g in smaller.games] == [4, 5]
    with pytest.raises(ValueError, match=r"positions of shape \(2, 3, 3\) with 9 moves, "
                                         r"this game has \(3, 6, 7\) and 7"):
        GameStore(3).load(tmp_path / "games.npz", (3, 6, 7), 7)
    empty = GameStore(3)
    empty.save(tmp_path / "empty.npz")
    GameStore(3).load(tmp_path / "empty.npz", (2, 3, 3), 9)


def test_game_store_symmetries_move_policy_and_legal_moves_with_the_board():
    game = TicTacToe()
    game.apply(0)
    pi = np.zeros(9, np.float32)
    pi[1] = 1
    rec = GameRecord.from_moves(game.observation()[None], game.legal_mask()[None], pi[None],
                                [1], 0.0, 0, 0)
    store = GameStore(1)
    store.add([rec])
    batch = store.sample(200, np.random.default_rng(0), TicTacToe.symmetry, 8)
    for obs, p, legal in zip(batch["obs"], batch["pi"], batch["legal"]):
        corner = np.flatnonzero(obs[1].ravel())  # the opponent's X, moved by the symmetry
        assert len(corner) == 1 and corner[0] in (0, 2, 6, 8)
        assert not legal[corner[0]] and legal.sum() == 8
        assert p.sum() == 1 and np.flatnonzero(p)[0] in (1, 3, 5, 7)  # an edge stays an edge
    assert len({o.tobytes() for o in batch["obs"]}) == 4  # a corner mark has 4 images


# ---------------------------------------------------------------- loss


def test_loss_is_value_error_plus_cross_entropy_plus_l2():
    from rlcore.learner.batches import Batch
    from rlcore.plugins.alphazero.config import AlphaZeroConfig
    from rlcore.plugins.alphazero.loss import loss
    from rlcore.plugins.alphazero.networks import AlphaZeroNet

    torch.manual_seed(0)
    net = AlphaZeroNet((2, 3, 3), 9, channels=4, blocks=1, value_hidden=4).eval()
    cfg = AlphaZeroConfig(weight_decay=0.01)
    obs = torch.rand(3, 2, 3, 3)
    legal = torch.ones(3, 9, dtype=torch.bool)
    legal[0, :4] = False
    pi = torch.zeros(3, 9)
    pi[0, 4], pi[1, [0, 1]], pi[2, 8] = 1.0, 0.5, 1.0
    z = torch.tensor([1.0, -1.0, 0.0])
    losses, metrics = loss({"net": net}, Batch(obs=obs, pi=pi, z=z, legal=legal), cfg, {})
    with torch.no_grad():
        logits, v = net(obs)
        ce = []
        for i in range(3):
            lg = logits[i][legal[i]]
            logp = lg - torch.logsumexp(lg, 0)
            ce.append(-(pi[i][legal[i]] * logp).sum())
        l2 = sum((p ** 2).sum() for p in net.parameters() if p.dim() > 1)
    torch.testing.assert_close(losses["value"], ((z - v) ** 2).mean())
    torch.testing.assert_close(losses["policy"], torch.stack(ce).mean())
    torch.testing.assert_close(losses["l2"], 0.01 * l2)


# ---------------------------------------------------------------- self-play and the trainer


def write_experiment(tmp_path, **over):
    data = {
        "algorithm": "alphazero", "seed": 0, "env": {"id": "rlcore/TicTacToe-v0"},
        "rollout": {"num_actors": 0},
        "algo": {"channels": 8, "blocks": 1, "value_hidden": 8, "num_simulations": 8,
                 "parallel_games": 4, "games_per_round": 4, "updates_per_round": 2,
                 "batch_size": 16, "min_positions": 16, "eval_simulations": 8,
                 "eval_opponents": ["random"]},
        "stop": {"num_env_steps": 60}, "eval": {"episodes": 2},
        "logging": {"progress_every_s": 0},
    }
    for key, value in over.items():
        section, _, leaf = key.partition("__")
        data.setdefault(section, {})[leaf] = value
    path = tmp_path / "az.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_self_play_records_are_consistent_games(tmp_path):
    from rlcore.config import load_experiment
    from rlcore.run.checks import check_spaces
    from rlcore.plugins.alphazero.selfplay import SelfPlayWorker

    exp = load_experiment(write_experiment(tmp_path))
    worker = SelfPlayWorker(exp.plugin, exp.algo, check_spaces(exp), TicTacToe, 0, 7)
    games = worker.play(6)
    assert len(games) == 6
    for g in games:
        assert 5 <= g.length <= 9 and g.actor_id == 7
        np.testing.assert_array_equal(g.player, np.arange(g.length) % 2)
        np.testing.assert_allclose(g.pi.sum(1), 1, rtol=1e-6)
        assert (g.pi[~g.legal] == 0).all()
        assert (g.obs[:, 0].sum((1, 2)) <= g.obs[:, 1].sum((1, 2))).all()  # mover has <= marks
        expected = 0.0 if g.winner < 0 else (1.0 if g.winner == 0 else -1.0)
        np.testing.assert_array_equal(g.z, np.where(g.player == 0, expected, -expected))
        # replaying the most likely moves is not possible (moves are sampled), but each
        # position has exactly one more mark than the one before
        marks = g.obs.sum((1, 2, 3))
        np.testing.assert_array_equal(marks, np.arange(g.length))
    again = SelfPlayWorker(exp.plugin, exp.algo, check_spaces(exp), TicTacToe, 0, 7).play(6)
    assert all(np.array_equal(a.pi, b.pi) for a, b in zip(games, again))  # seeded


def test_trainer_runs_evaluates_checkpoints_and_resumes(tmp_path):
    from rlcore.config import load_experiment
    from rlcore.run.logging import RunLogger
    from rlcore.run.lifecycle import make_run
    from rlcore.regimes.game import GameRegime

    exp = load_experiment(write_experiment(tmp_path))
    run = tmp_path / "run"
    trainer = make_run(exp, run)
    assert isinstance(trainer.regime, GameRegime)
    logger = RunLogger(run, 0, 0)
    seen = []
    summary = trainer.run(logger, on_eval=seen.append)
    logger.close()
    assert summary["env_steps"] >= 60 and summary["updates"] > 0 and summary["games_played"] >= 8
    assert seen and set(seen[-1]["opponents"]["random"]) >= {"win", "draw", "loss"}
    assert (run / "summary.json").is_file() and trainer.resumed_from is None
    exp2 = load_experiment(write_experiment(tmp_path, stop__num_env_steps=120))
    again = make_run(exp2, run, resume=True)
    assert again.env_steps == summary["env_steps"] and again.resumed_from is not None
    assert again.learner.updates == summary["updates"]
    # the game store came back with the checkpoint: the same games, position for position
    store, again_store = trainer.regime.store, again.regime.store
    assert len(again_store) == len(store) > 0
    assert again_store.total_games == store.total_games
    for a, b in zip(again_store.games, store.games):
        for k in ("obs", "legal", "pi", "player", "z"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
            assert getattr(a, k).dtype == getattr(b, k).dtype
        assert (a.winner, a.policy_version, a.actor_id) == (b.winner, b.policy_version, b.actor_id)
    again.pool.close()


def test_eval_tags_are_logged_under_eval(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.run.lifecycle import train_experiment

    path = write_experiment(tmp_path, algo__eval_opponents=["random", "mcts:5", "minimax"])
    summary, _ = train_experiment(path, tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for opp in ("random", "mcts5", "minimax"):
        assert {f"eval/{opp}_win", f"eval/{opp}_draw", f"eval/{opp}_loss"} <= tags
    mm = summary["eval_opponents"]["minimax"]
    assert mm["win"] == 0 and mm["games"] > 9  # every opening; nobody beats minimax
    assert summary["eval_return_mean"] == mm["score"]


def test_config_errors_name_the_key_and_the_fix(tmp_path):
    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import make_run

    with pytest.raises(ConfigError, match=r"unknown opponent\(s\) \['stockfish'\]: use random, "
                                          "minimax or mcts:N"):
        load_experiment(write_experiment(tmp_path, algo__eval_opponents=["stockfish"]))
    exp = load_experiment(write_experiment(tmp_path, algo__eval_opponents=["minimax"],
                                           env__id="rlcore/ConnectFour-v0"))
    with pytest.raises(ConfigError, match="minimax solves the whole game and is only offered for "
                                          "tic-tac-toe, not 'connect_four'; use random or mcts:N"):
        make_run(exp, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_non_game_env_is_refused(tmp_path):
    from rlcore.config import load_experiment
    from rlcore.errors import IncompatibleEnvError
    from rlcore.run.lifecycle import make_run

    exp = load_experiment(write_experiment(tmp_path, env__id="rlcore/GridWorld-v0"))
    with pytest.raises(IncompatibleEnvError, match="alphazero plays two-player games; "
                                                   "'rlcore/GridWorld-v0' is not one"):
        make_run(exp, tmp_path / "run")


def test_validate_refuses_envs_that_are_not_games_and_bad_seats(tmp_path, capsys):
    from rlcore.cli import main

    path = write_experiment(tmp_path, env__id="CartPole-v1")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "alphazero plays two-player games; 'CartPole-v1' is not one" in err
    path = write_experiment(tmp_path, env__kwargs={"seat": 3})
    assert main(["validate", str(path)]) == 2
    assert "env.kwargs.seat must be 0 (the agent moves first) or 1, got 3" in capsys.readouterr().err


def test_experiment_files_validate(capsys):
    from rlcore.cli import main

    for name in ("alphazero_tictactoe", "alphazero_connect4"):
        assert main(["validate", f"experiments/{name}.yaml"]) == 0
        assert "ok (alphazero on rlcore/" in capsys.readouterr().out


# ---------------------------------------------------------------- rlcore play


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from rlcore.cli import main

    tmp = tmp_path_factory.mktemp("play")
    assert main(["run", str(write_experiment(tmp)), "--run-dir", str(tmp / "run")]) == 0
    return tmp / "run"


def test_play_reprompts_on_garbled_and_illegal_moves(trained_run):
    import io

    from rlcore.regimes.game_play import play_interactive

    run = trained_run
    answers = iter(["hello", "", "9", "-1", "4"] + [str(a) for a in range(9)] * 3)
    asked = []

    def input_fn(prompt):
        asked.append(prompt)
        return next(answers)

    out = io.StringIO()
    result = play_interactive(run, human_first=True, input_fn=input_fn, out=out)
    text = out.getvalue()
    assert "'hello' is not a move: type one of [0, 1, 2, 3, 4, 5, 6, 7, 8]" in text
    assert "'' is not a move" in text
    assert "9 is not a legal move here: type one of [0, 1, 2, 3, 4, 5, 6, 7, 8]" in text
    assert "-1 is not a legal move here" in text
    assert asked[:5] == ["your move [0, 1, 2, 3, 4, 5, 6, 7, 8]: "] * 5  # asked again each time
    assert "network plays" in text and result in (-1.0, 0.0, 1.0)
    assert text.strip().splitlines()[-1] in ("you win", "draw", "the network wins")


def test_play_cli_errors(trained_run, tmp_path, capsys):
    from rlcore.cli import main

    run = trained_run
    assert main(["play", str(tmp_path / "nothing")]) == 2
    assert "neither a run folder (with config.yaml) nor a checkpoint folder" in capsys.readouterr().err
    assert main(["play", str(run), "--simulations", "0"]) == 2
    assert "--simulations 0: must be at least 1" in capsys.readouterr().err
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    (tmp_path / "in.txt").write_text("q\n")
    import sys
    old = sys.stdin
    with open(tmp_path / "in.txt") as f:
        sys.stdin = f
        try:
            assert main(["play", str(ckpt), "--second"]) == 0
        finally:
            sys.stdin = old
    out = capsys.readouterr().out
    assert "you are O, moving second" in out and "network plays" in out and "you resigned" in out


# ---------------------------------------------------------------- learning


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tictactoe_learns_to_never_lose_to_minimax(tmp_path):
    """experiments/alphazero_tictactoe.yaml (seed 0, 2 shared cores: about a minute) trains until
    its evaluation finds perfect play, then the check is repeated here independently.

    "All openings" (players.all_openings): with minimax moving first, each of its 9 first moves,
    and afterwards every optimal minimax reply at each of its turns; with the network first, every
    optimal minimax reply at each of its turns. The network moves with search (eval_simulations,
    no noise, most visited move), so it is deterministic and every line is one game. It must lose
    none; the same search over the untrained network does lose some, so the check can fail."""
    from rlcore.learner.core import load_numpy_weights
    from rlcore.run.lifecycle import train_experiment
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import MinimaxPlayer, SearchPlayer, all_openings

    summary, trainer = train_experiment("experiments/alphazero_tictactoe.yaml", tmp_path / "run")
    assert summary["stop_reason"] == "eval_return", summary["evals"][-1]
    net, algo = trainer.eval_modules["net"], trainer.exp.algo
    minimax = MinimaxPlayer(seed=None)

    def lines():
        player = SearchPlayer(NetworkEvaluator(net, 0), algo.eval_simulations, algo.c_puct)
        return all_openings(TicTacToe, player, minimax)

    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)  # an untrained network of the same shape
    untrained = lines()
    assert sum(r < 0 for _, _, r in untrained) > 0
    load_numpy_weights(trainer.eval_modules, trainer.learner.weights())
    trained = lines()
    assert {seat for seat, _, _ in trained} == {0, 1}
    assert len({tuple(m[:1]) for seat, m, _ in trained if seat == 1}) == 9  # all 9 openings
    lost = [moves for _, moves, r in trained if r < 0]
    assert lost == [], f"loses {len(lost)} of {len(trained)} lines, e.g. {lost[:3]}"


def test_greedy_policy_for_rlcore_eval_plays_only_legal_moves():
    from rlcore.envs.games.connect_four import ConnectFour
    from rlcore.plugins.alphazero.networks import AlphaZeroNet, GreedyPolicy

    rng = np.random.default_rng(0)
    for cls in (TicTacToe, ConnectFour):
        torch.manual_seed(0)
        net = AlphaZeroNet(cls.obs_shape, cls.num_actions, 4, 1, 4)
        games = []
        for _ in range(64):
            g = cls()
            for _ in range(int(rng.integers(0, 7))):
                g.apply(int(rng.choice(g.legal_actions())))
            if not g.is_terminal():
                games.append(g)
        obs = np.stack([g.observation() for g in games])
        for explore in (False, True):
            actions = GreedyPolicy(net, explore).act(obs, rng).action
            assert all(g.legal_mask()[a] for g, a in zip(games, actions))


def test_rlcore_eval_on_a_game_run(trained_run, capsys):
    import json

    from rlcore.cli import main

    assert main(["eval", str(trained_run), "--episodes", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eval_episodes"] == 10 and -1 <= out["eval_return_mean"] <= 1


def test_search_and_players_work_on_a_pettingzoo_game():
    from rlcore.envs.games import make_game
    from rlcore.plugins.alphazero.players import RandomPlayer, RolloutMCTSPlayer, play_game

    game = make_game("pettingzoo:pettingzoo.classic.tictactoe_v3")
    for a in (0, 3, 1, 4):
        game.apply(a)
    root = Node(game)
    MCTS(uniform_evaluator(0.0), num_simulations=60).search([root])
    assert choose(root, 0.0, None) == 2 and root.Q[2] == 1.0
    result = play_game(make_game("pettingzoo:pettingzoo.classic.connect_four_v3"),
                       [RolloutMCTSPlayer(20, seed=0), RandomPlayer(0)])
    assert result in (-1.0, 0.0, 1.0)


def test_interrupt_writes_a_checkpoint(tmp_path):
    from rlcore.config import load_experiment
    from rlcore.run.logging import RunLogger
    from rlcore.run.lifecycle import make_run

    exp = load_experiment(write_experiment(tmp_path, stop__num_env_steps=10_000))
    trainer = make_run(exp, tmp_path / "run")
    play, calls = trainer.pool.round, []

    def interrupted(requests):
        calls.append(requests)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return play(requests)

    trainer.pool.round = interrupted
    logger = RunLogger(tmp_path / "run", 0, 0)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(logger)
    logger.close()
    ckpts = list((tmp_path / "run" / "checkpoints").iterdir())
    assert len(ckpts) == 1 and ckpts[0].name == f"step_{trainer.env_steps:012d}"
    assert 0 < trainer.env_steps < 10_000
