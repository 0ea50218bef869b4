"""The ``Game`` protocol that tree search needs, and what every two-player game shares.

A game state is a small mutable object: ``apply`` changes it in place and ``clone`` copies it
(cheaply: the native games keep their boards as a few Python ints). Players are 0 (moves first)
and 1. Values are from one player's view: +1 a win, -1 a loss, 0 a draw.
"""

from __future__ import annotations

from typing import Hashable, Protocol

import numpy as np

from rlcore.errors import EnvRuntimeError


class IllegalMoveError(EnvRuntimeError):
    """A move that is not legal in the current position (a bug in whatever chose it)."""


class Game(Protocol):
    name: str
    num_actions: int
    obs_shape: tuple[int, ...]  # canonical observation [C, H, W], float32

    def current_player(self) -> int: ...  # 0 or 1: who moves next
    def legal_mask(self) -> np.ndarray: ...  # bool [num_actions]
    def legal_actions(self) -> list[int]: ...
    def apply(self, action: int) -> None: ...  # raises IllegalMoveError
    def clone(self) -> "Game": ...
    def is_terminal(self) -> bool: ...
    def terminal_value(self, player: int) -> float: ...  # +1/-1/0 from ``player``'s view
    def observation(self) -> np.ndarray: ...  # from the view of the player to move
    def key(self) -> Hashable: ...  # equal for equal positions (transposition tables)
    def render(self) -> str: ...


def check_action(game, action) -> int:
    """``action`` as an int if it is legal in ``game``, else IllegalMoveError saying why."""
    try:
        a = int(action)
    except (TypeError, ValueError):
        raise IllegalMoveError(f"{game.name}: move {action!r} is not an integer action") from None
    if a != action:
        raise IllegalMoveError(f"{game.name}: move {action!r} is not an integer action")
    if game.is_terminal():
        raise IllegalMoveError(f"{game.name}: move {a} played after the game ended")
    if not 0 <= a < game.num_actions or not game.legal_mask()[a]:
        raise IllegalMoveError(f"{game.name}: move {a} is illegal here; legal moves: "
                               f"{game.legal_actions()}")
    return a


class BitboardGame:
    """What the native games share: each player's stones as one Python int (``boards``), the
    player to move, the winner (-1 while there is none, and after a draw) and the move count.

    A subclass sets ``name``, ``num_actions``, ``obs_shape``, ``max_moves`` and a static
    ``_wins(bits) -> bool``, and places a stone with ``_place(bit)``: the stone, the win check
    and the turn in one call."""

    __slots__ = ("boards", "player", "winner", "moves")
    num_actions: int
    max_moves: int

    def __init__(self):
        self.boards = [0, 0]
        self.player = 0
        self.winner = -1
        self.moves = 0

    def _copy_to(self, g: "BitboardGame") -> "BitboardGame":
        g.boards, g.player, g.winner, g.moves = [self.boards[0], self.boards[1]], self.player, \
            self.winner, self.moves
        return g

    def _place(self, bit: int) -> None:
        p = self.player
        self.boards[p] |= bit
        self.moves += 1
        if self._wins(self.boards[p]):
            self.winner = p
        self.player = 1 - p

    def current_player(self) -> int:
        return self.player

    def is_terminal(self) -> bool:
        return self.winner >= 0 or self.moves == self.max_moves

    def legal_mask(self) -> np.ndarray:
        mask = np.zeros(self.num_actions, bool)
        mask[self.legal_actions()] = True
        return mask

    def terminal_value(self, player: int) -> float:
        if self.winner < 0:
            return 0.0
        return 1.0 if self.winner == player else -1.0

    def key(self):
        return (self.boards[0], self.boards[1])

    def playout_value(self, rng) -> float:
        return random_playout_value(self, rng)


def random_playout_value(game, rng) -> float:
    """The result of uniformly random moves from ``game`` to the end, from the view of the
    player to move now (+1, -1, 0); ``game`` itself is left unchanged. Any ``Game`` (a game
    class may offer a faster ``playout_value(rng)`` with the same draws). ``rng`` is a
    ``random.Random``: one C call per move, where numpy's Generator.choice costs several
    microseconds of Python (the rollout evaluator's playouts are its whole cost)."""
    me, g = game.current_player(), game.clone()
    while not g.is_terminal():
        legal = g.legal_actions()
        g.apply(legal[int(rng.random() * len(legal))])
    return g.terminal_value(me)
