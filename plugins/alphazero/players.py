"""Players for evaluation and for people: ``act(game) -> action``.

- ``RandomPlayer``: a uniformly random legal move.
- ``MinimaxPlayer``: exact negamax with alpha-beta pruning and a table of solved positions; for
  games small enough to solve (tic-tac-toe: 5,478 positions). Among equally good moves it picks
  at random (``rng``) or the lowest.
- ``RolloutMCTSPlayer``: pure MCTS, no network: the same PUCT search with uniform priors and the
  leaf value taken from one uniformly random playout to the end.
- ``SearchPlayer``: the network with search, no noise, the most visited move (deterministic).
"""

from __future__ import annotations

import random

import numpy as np

from rlcore.envs.games.base import random_playout_value
from rlcore.plugins.alphazero.mcts import MCTS, Node, choose


class RandomPlayer:
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act(self, game) -> int:
        return int(self.rng.choice(game.legal_actions()))


class MinimaxPlayer:
    name = "minimax"

    def __init__(self, seed: int | None = 0):
        self.rng = np.random.default_rng(seed) if seed is not None else None
        self.table: dict = {}  # (key, player) -> exact value for the player to move

    def value(self, game) -> float:
        """The exact value of ``game`` for the player to move (+1 win, 0 draw, -1 loss)."""
        return self._negamax(game, -2.0, 2.0)

    def _negamax(self, game, alpha: float, beta: float) -> float:
        if game.is_terminal():
            return game.terminal_value(game.current_player())
        key = (game.key(), game.current_player())
        if key in self.table:
            return self.table[key]
        best, alpha0 = -2.0, alpha
        for a in game.legal_actions():
            child = game.clone()
            child.apply(a)
            sign = 1.0 if child.current_player() == game.current_player() else -1.0
            v = sign * (self._negamax(child, -beta, -alpha) if sign < 0
                        else self._negamax(child, alpha, beta))
            best = max(best, v)
            alpha = max(alpha, v)
            if alpha >= beta:
                break
        if alpha0 < best < beta:  # an exact value (not a bound from a cut-off): keep it
            self.table[key] = best
        return best

    def action_values(self, game) -> dict[int, float]:
        """Exact value of each legal move for the player to move."""
        out = {}
        for a in game.legal_actions():
            child = game.clone()
            child.apply(a)
            if child.is_terminal():
                out[a] = child.terminal_value(game.current_player())
            else:
                v = self.value(child)
                out[a] = v if child.current_player() == game.current_player() else -v
        return out

    def best_actions(self, game) -> list[int]:
        values = self.action_values(game)
        top = max(values.values())
        return [a for a, v in values.items() if v == top]

    def act(self, game) -> int:
        best = self.best_actions(game)
        return int(self.rng.choice(best)) if self.rng is not None else best[0]


class RolloutEvaluator:
    """Uniform priors; the value of a leaf is the result of one uniformly random playout from
    it (``game.playout_value``), drawn from a seeded ``random.Random``."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def values(self, games) -> list[float]:
        return [g.playout_value(self.rng) if hasattr(g, "playout_value")
                else random_playout_value(g, self.rng) for g in games]


class _RolloutMCTS(MCTS):
    """The search with uniform priors and playout values straight from the leaf games (no
    observations are built: a random playout needs none)."""

    def _expand(self, nodes):
        values = self.evaluate.values([n.game for n in nodes])
        self.forward_passes += 1
        self.positions_evaluated += len(nodes)
        for n in nodes:
            n.expand_uniform()
        return np.asarray(values, np.float64)


class RolloutMCTSPlayer:
    def __init__(self, num_simulations: int = 1000, c_puct: float = 2.0, seed: int = 0):
        self.name = f"mcts:{num_simulations}"
        self.search = _RolloutMCTS(RolloutEvaluator(seed=seed), c_puct, num_simulations,
                                   leaves_per_tree=1)

    def act(self, game) -> int:
        root = Node(game.clone())
        self.search.search([root])
        return choose(root, 0.0, None)


class SearchPlayer:
    """The network plus search, deterministic: no noise, the lowest most-visited move."""

    name = "alphazero"

    def __init__(self, evaluate, num_simulations: int, c_puct: float, leaves_per_tree: int = 1):
        self.search = MCTS(evaluate, c_puct, num_simulations, leaves_per_tree)

    def act(self, game) -> int:
        root = Node(game.clone())
        self.search.search([root])
        return choose(root, 0.0, None)


def make_opponent(spec: str, seed: int = 0):
    if spec == "random":
        return RandomPlayer(seed)
    if spec == "minimax":
        return MinimaxPlayer(seed)
    if spec.startswith("mcts:"):
        return RolloutMCTSPlayer(int(spec.partition(":")[2]), seed=seed)
    raise ValueError(f"unknown opponent {spec!r}: use random, minimax or mcts:N")


def play_game(game, players) -> float:
    """Play ``game`` to the end with ``players[p]`` moving for player p; the result for player 0."""
    while not game.is_terminal():
        game.apply(players[game.current_player()].act(game))
    return game.terminal_value(0)


def match(make_game, player, opponent, games: int) -> dict[str, float]:
    """``games`` games, ``player`` first in half of them (the first when odd); win/draw/loss
    rates and the mean score (+1/0/-1) of ``player``. Against a ``MinimaxPlayer`` the games are
    instead every line of ``all_openings`` (``games`` does not apply; ``player`` must be
    deterministic), so a score of 0 means it never loses to perfect play."""
    results = []
    if isinstance(opponent, MinimaxPlayer):
        results = [r for _, _, r in all_openings(make_game, player, opponent)]
    for i in range(0 if results else games):
        seat = i % 2
        players = [player, opponent] if seat == 0 else [opponent, player]
        r = play_game(make_game(), players)
        results.append(r if seat == 0 else -r)
    results = np.array(results)
    return {"win": float((results > 0).mean()), "draw": float((results == 0).mean()),
            "loss": float((results < 0).mean()), "score": float(results.mean()),
            "games": int(len(results))}


def all_openings(make_game, player, minimax: MinimaxPlayer) -> list[tuple[int, list[int], float]]:
    """Every game of ``player`` against perfect play over all openings, as (player's seat,
    moves, result for the player). Openings: with ``minimax`` moving first, every legal first
    move (not only the optimal ones) and afterwards every optimal minimax reply; with ``player``
    first, every optimal minimax reply at every minimax turn. ``player`` must be deterministic
    (each position is asked once)."""
    lines: list[tuple[int, list[int], float]] = []
    chosen: dict = {}  # the player's move per position

    def walk(game, seat: int, moves: list[int]) -> None:
        if game.is_terminal():
            lines.append((seat, moves, game.terminal_value(seat)))
            return
        if game.current_player() == seat:
            key = game.key()
            if key not in chosen:
                chosen[key] = player.act(game)
            options = [chosen[key]]
        elif not moves:  # minimax opens: every first move
            options = game.legal_actions()
        else:
            options = minimax.best_actions(game)
        for a in options:
            child = game.clone()
            child.apply(a)
            walk(child, seat, moves + [a])

    for seat in (0, 1):
        walk(make_game(), seat, [])
    return lines


def losing_lines(make_game, player, minimax: MinimaxPlayer) -> list[list[int]]:
    """The games of ``all_openings`` that ``player`` loses (empty: it never loses)."""
    return [moves for _, moves, result in all_openings(make_game, player, minimax) if result < 0]
