"""The native games against PettingZoo's, the PettingZoo adapter, the single-agent env, and the
exact minimax player."""

import numpy as np
import pytest

from rlcore.envs.games import IllegalMoveError, make_game
from rlcore.envs.games.connect_four import ConnectFour
from rlcore.envs.games.tictactoe import TicTacToe
from rlcore.plugins.alphazero.players import MinimaxPlayer, RandomPlayer, play_game

import pettingzoo.classic as pettingzoo_classic  # the games extra (make install)

CASES = [(TicTacToe, "tictactoe_v3"), (ConnectFour, "connect_four_v3")]


@pytest.mark.parametrize("cls,pz_name", CASES)
def test_native_game_replays_random_pettingzoo_games_exactly(cls, pz_name):
    """300 random games played move for move in both: same player to move, legal moves,
    observation (PettingZoo's HWC planes = ours CHW) and final rewards."""
    module = getattr(pettingzoo_classic, pz_name)
    rng = np.random.default_rng(0)
    outcomes = set()
    for seed in range(300):
        env = module.env()
        env.reset(seed=seed)
        game = cls()
        while True:
            obs, _, term, trunc, _ = env.last()
            if term or trunc:
                break
            assert not game.is_terminal()
            assert env.possible_agents.index(env.agent_selection) == game.current_player()
            np.testing.assert_array_equal(obs["action_mask"].astype(bool), game.legal_mask())
            np.testing.assert_array_equal(np.moveaxis(obs["observation"], -1, 0),
                                          game.observation())
            a = int(rng.choice(np.flatnonzero(obs["action_mask"])))
            env.step(a)
            game.apply(a)
        assert game.is_terminal() and game.legal_actions() == []
        for p, agent in enumerate(env.possible_agents):
            assert env.rewards[agent] == game.terminal_value(p)
        outcomes.add(game.terminal_value(0))
    assert outcomes == {1.0, -1.0, 0.0} or (cls is ConnectFour and outcomes == {1.0, -1.0})


@pytest.mark.parametrize("cls,pz_name", CASES)
def test_pettingzoo_adapter_plays_the_same_games_as_the_native_one(cls, pz_name):
    rng = np.random.default_rng(1)
    for _ in range(20):
        native, adapted = cls(), make_game(f"pettingzoo:pettingzoo.classic.{pz_name}")
        assert adapted.num_actions == native.num_actions and adapted.obs_shape == native.obs_shape
        while not native.is_terminal():
            assert not adapted.is_terminal()
            assert adapted.current_player() == native.current_player()
            np.testing.assert_array_equal(adapted.legal_mask(), native.legal_mask())
            np.testing.assert_array_equal(adapted.observation(), native.observation())
            a = int(rng.choice(native.legal_actions()))
            if rng.random() < 0.2:  # a clone plays on independently
                branch = adapted.clone()
                branch.apply(a)
                assert branch.is_terminal() or branch.current_player() != adapted.current_player()
                assert branch.observation().sum() == adapted.observation().sum() + 1 or \
                    branch.is_terminal()
            native.apply(a)
            adapted.apply(a)
        assert adapted.is_terminal()
        assert [adapted.terminal_value(p) for p in (0, 1)] == [native.terminal_value(p)
                                                                for p in (0, 1)]


@pytest.mark.parametrize("cls", [TicTacToe, ConnectFour])
def test_illegal_moves_raise_with_the_legal_moves(cls):
    game = cls()
    game.apply(0)
    if cls is TicTacToe:
        with pytest.raises(IllegalMoveError, match=r"move 0 is illegal here; legal moves: "
                                                   r"\[1, 2, 3, 4, 5, 6, 7, 8\]"):
            game.apply(0)
    else:
        for _ in range(5):
            game.apply(0)
        with pytest.raises(IllegalMoveError, match=r"move 0 is illegal here; legal moves: "
                                                   r"\[1, 2, 3, 4, 5, 6\]"):
            game.apply(0)
    with pytest.raises(IllegalMoveError, match="move 99 is illegal"):
        game.apply(99)
    with pytest.raises(IllegalMoveError, match="not an integer action"):
        game.apply(1.5)


def test_no_move_after_the_game_ended():
    game = TicTacToe()
    for a in (0, 3, 1, 4, 2):  # X completes the top row
        game.apply(a)
    assert game.is_terminal() and game.terminal_value(0) == 1 and game.terminal_value(1) == -1
    with pytest.raises(IllegalMoveError, match="after the game ended"):
        game.apply(5)


@pytest.mark.parametrize("cls", [TicTacToe, ConnectFour])
def test_clone_is_independent(cls):
    game = cls()
    game.apply(1)
    copy = game.clone()
    copy.apply(2)
    assert game.current_player() == 1 and copy.current_player() == 0
    assert game.legal_mask()[2] and game.observation().sum() == 1 and copy.observation().sum() == 2


@pytest.mark.parametrize("cls", [TicTacToe, ConnectFour])
def test_symmetries_map_moves_and_observations_alike(cls):
    """For each symmetry k: the transformed position after move a is the transformed position
    before it with a stone on the transformed move."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        game = cls()
        for _ in range(int(rng.integers(0, 4))):
            game.apply(int(rng.choice(game.legal_actions())))
        a = int(rng.choice(game.legal_actions()))
        after = game.clone()
        after.apply(a)
        for k in range(cls.num_symmetries):
            onehot = np.eye(cls.num_actions, dtype=np.float32)[a]
            obs_k, pi_k = cls.symmetry(game.observation(), onehot, k)
            b = int(np.argmax(pi_k))
            assert pi_k.sum() == 1 and pi_k[b] == 1
            after_k, _ = cls.symmetry(after.observation(), onehot, k)
            np.testing.assert_array_equal(after_k[0], obs_k[1])  # the opponent's stones
            added = after_k[1] - obs_k[0]  # the mover's stones gained exactly one
            assert added.sum() == 1 and added.min() == 0
            legal_k = cls.symmetry(game.observation(), game.legal_mask(), k)[1]
            assert legal_k[b]


def test_tictactoe_symmetries_are_the_eight_of_the_square():
    obs = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    images = {TicTacToe.symmetry(obs, np.arange(9.0), k)[0].tobytes() for k in range(8)}
    assert len(images) == 8
    _, pi = TicTacToe.symmetry(obs, np.arange(9.0), 1)  # a quarter turn counter-clockwise
    np.testing.assert_array_equal(pi, [2, 5, 8, 1, 4, 7, 0, 3, 6])


def test_game_env_is_a_single_agent_view_against_a_random_opponent():
    import gymnasium as gym

    from rlcore.registry import ensure_env_registered

    ensure_env_registered("rlcore/TicTacToe-v0")
    env = gym.make("rlcore/TicTacToe-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 3, 3) and obs.sum() == 0 and info["action_mask"].all()
    obs, r, term, trunc, info = env.step(4)
    assert obs[0, 1, 1] == 1 and obs[1].sum() == 1 and r == 0 and not term  # opponent replied
    taken = int(np.flatnonzero(obs[1].ravel())[0])
    obs, r, term, trunc, info = env.step(taken)
    assert r == -1 and term and info["illegal_move"]
    env2 = gym.make("rlcore/ConnectFour-v0", seat=1)
    obs, info = env2.reset(seed=0)
    assert obs[1].sum() == 1 and obs[0].sum() == 0  # the opponent opened


# ---------------------------------------------------------------- minimax


def position(moves):
    game = TicTacToe()
    for a in moves:
        game.apply(a)
    return game


def test_minimax_values_of_known_positions():
    mm = MinimaxPlayer()
    assert mm.value(TicTacToe()) == 0  # tic-tac-toe is a draw
    # X: 0, 1; O: 3, 4; X to move wins at once by 2
    assert mm.value(position([0, 3, 1, 4])) == 1
    assert mm.best_actions(position([0, 3, 1, 4])) == [2]
    # X: 0, 4 (O: 8 2 after 0 4 ... ) -- X holds opposite corners' fork: X 0, O 1, X 4, O 8?
    # X 0, O 1 (an edge next to the corner): X forces a win
    assert mm.value(position([0, 1])) == 1
    # after X center, O on an edge loses; O in a corner draws
    values = mm.action_values(position([4]))
    assert {a: values[a] for a in (1, 3, 5, 7)} == {1: -1, 3: -1, 5: -1, 7: -1}
    assert {a: values[a] for a in (0, 2, 6, 8)} == {0: 0, 2: 0, 6: 0, 8: 0}
    # every first move draws
    assert mm.action_values(TicTacToe()) == {a: 0 for a in range(9)}


def test_minimax_agrees_with_plain_search_on_every_reachable_position():
    """Alpha-beta with its table against a plain negamax without pruning or memory."""
    def negamax(game):
        if game.is_terminal():
            return game.terminal_value(game.current_player())
        best = -2
        for a in game.legal_actions():
            child = game.clone()
            child.apply(a)
            best = max(best, -negamax(child))
        return best

    mm, rng = MinimaxPlayer(), np.random.default_rng(3)
    for _ in range(40):
        game = TicTacToe()
        for _ in range(int(rng.integers(1, 6))):
            if game.is_terminal():
                break
            game.apply(int(rng.choice(game.legal_actions())))
        if not game.is_terminal():
            assert mm.value(game) == negamax(game)


def test_minimax_never_loses_and_draws_itself():
    mm = MinimaxPlayer(seed=0)
    assert play_game(TicTacToe(), [mm, MinimaxPlayer(seed=1)]) == 0
    rnd = RandomPlayer(seed=0)
    for i in range(30):
        players = [mm, rnd] if i % 2 == 0 else [rnd, mm]
        r = play_game(TicTacToe(), players)
        assert (r if i % 2 == 0 else -r) >= 0


@pytest.mark.parametrize("cls", [TicTacToe, ConnectFour])
def test_legal_moves_read_off_observations(cls):
    from rlcore.envs.games import legal_from_observation

    rng = np.random.default_rng(4)
    obs, legal = [], []
    for _ in range(100):
        game = cls()
        for _ in range(int(rng.integers(0, 30))):
            if game.is_terminal():
                break
            game.apply(int(rng.choice(game.legal_actions())))
        if not game.is_terminal():
            obs.append(game.observation())
            legal.append(game.legal_mask())
    np.testing.assert_array_equal(legal_from_observation(np.stack(obs)), np.stack(legal))
    assert legal_from_observation(np.zeros((4, 3, 5, 5))) is None


def random_position(cls, rng, max_moves: int):
    g = cls()
    for _ in range(int(rng.integers(0, max_moves))):
        if g.is_terminal():
            break
        g.apply(int(rng.choice(g.legal_actions())))
    return g


def test_connect_fours_fast_playout_draws_what_the_generic_one_draws():
    """ConnectFour.playout_value (local bitboards) and random_playout_value (clone and apply)
    make the same moves from the same random.Random and so reach the same result, without
    changing the game."""
    import random

    from rlcore.envs.games.base import random_playout_value

    rng = np.random.default_rng(0)
    results = []
    for i in range(300):
        g = random_position(ConnectFour, rng, 40)
        before = (g.boards[:], g.heights[:], g.player, g.moves, g.winner)
        fast = g.playout_value(random.Random(i))
        assert fast == random_playout_value(g, random.Random(i))
        assert (g.boards, g.heights, g.player, g.moves, g.winner) == before
        results.append(fast)
    assert {-1.0, 1.0} <= set(results)
    # a draw: replay random games until one fills the board, then play out its last move
    for i in range(20_000):
        g, moves = ConnectFour(), []
        while not g.is_terminal():
            moves.append(int(rng.choice(g.legal_actions())))
            g.apply(moves[-1])
        if g.winner < 0:
            break
    assert g.moves == 42 and g.winner < 0
    g = ConnectFour()
    for a in moves[:-1]:
        g.apply(a)
    assert len(g.legal_actions()) == 1
    assert g.playout_value(random.Random(0)) == random_playout_value(g, random.Random(0)) == 0.0


def test_playout_values_by_hand():
    import random

    # X to move can only fill the last cell of column 6 ...
    g = ConnectFour()
    for a in [0, 1, 0, 1, 0, 1]:  # X stacks column 0, O column 1: X threatens to win
        g.apply(a)
    assert g.playout_value(random.Random(0)) in (-1.0, 0.0, 1.0)
    g.apply(0)  # X wins: the value is the finished game's, from the mover's (O's) view
    assert g.is_terminal()
    assert g.playout_value(random.Random(0)) == -1.0
    # tic-tac-toe with one empty cell: the only move decides
    t = TicTacToe()
    for a in [0, 1, 2, 4, 3, 5, 7, 6]:  # X O X / X O O / O X .  : X to move, takes 8
        t.apply(a)
    assert t.legal_actions() == [8] and t.playout_value(random.Random(1)) == 0.0


def test_pure_mcts_finds_the_immediate_win():
    from rlcore.plugins.alphazero.players import RolloutMCTSPlayer

    g = ConnectFour()
    for a in [3, 0, 3, 0, 3, 6]:  # X has three in column 3 and moves
        g.apply(a)
    assert RolloutMCTSPlayer(200, seed=0).act(g) == 3
