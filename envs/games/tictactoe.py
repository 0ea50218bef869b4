"""Tic-tac-toe on two 9-bit boards (one per player).

Actions and observations follow PettingZoo's ``tictactoe_v3`` exactly (tests replay random games
in both): action ``a`` marks the observation cell at row ``a // 3``, column ``a % 3``, and the
observation's plane 0 holds the marks of the player to move, plane 1
the opponent's (here channels-first, [2, 3, 3]).
"""

from __future__ import annotations

import numpy as np

from rlcore.envs.games.base import IllegalMoveError, check_action

_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
WIN_MASKS = tuple(sum(1 << c for c in line) for line in _LINES)
FULL = (1 << 9) - 1
# the observation cell (row, col) of each action
CELLS = tuple((a // 3, a % 3) for a in range(9))


def _wins(bits: int) -> bool:
    for m in WIN_MASKS:
        if bits & m == m:
            return True
    return False


class TicTacToe:
    name = "tictactoe"
    num_actions = 9
    obs_shape = (2, 3, 3)
    __slots__ = ("boards", "player", "winner", "moves")

    def __init__(self):
        self.boards = [0, 0]
        self.player = 0
        self.winner = -1  # -1: none (yet or draw); else the winning player
        self.moves = 0

    def clone(self) -> "TicTacToe":
        g = TicTacToe.__new__(TicTacToe)
        g.boards, g.player, g.winner, g.moves = [self.boards[0], self.boards[1]], self.player, \
            self.winner, self.moves
        return g

    def current_player(self) -> int:
        return self.player

    def is_terminal(self) -> bool:
        return self.winner >= 0 or self.moves == 9

    def legal_actions(self) -> list[int]:
        if self.is_terminal():
            return []
        occupied = self.boards[0] | self.boards[1]
        return [a for a in range(9) if not occupied >> a & 1]

    def legal_mask(self) -> np.ndarray:
        mask = np.zeros(9, bool)
        mask[self.legal_actions()] = True
        return mask

    def apply(self, action: int) -> None:
        if action.__class__ is not int:  # numpy ints and garbage: checked in full
            action = check_action(self, action)
        occupied = self.boards[0] | self.boards[1]
        if self.winner >= 0 or not (0 <= action < 9) or occupied >> action & 1:
            check_action(self, action)  # raises with the reason
            raise IllegalMoveError(f"tictactoe: move {action!r} is illegal here")
        p = self.player
        self.boards[p] |= 1 << action
        self.moves += 1
        if _wins(self.boards[p]):
            self.winner = p
        self.player = 1 - p

    def terminal_value(self, player: int) -> float:
        if self.winner < 0:
            return 0.0
        return 1.0 if self.winner == player else -1.0

    def observation(self) -> np.ndarray:
        obs = np.zeros(self.obs_shape, np.float32)
        me, them = self.boards[self.player], self.boards[1 - self.player]
        for a, (r, c) in enumerate(CELLS):
            if me >> a & 1:
                obs[0, r, c] = 1.0
            elif them >> a & 1:
                obs[1, r, c] = 1.0
        return obs

    def key(self):
        return (self.boards[0], self.boards[1])

    def render(self) -> str:
        marks = {0: "X", 1: "O"}
        rows = []
        for r in range(3):
            cells = []
            for c in range(3):
                a = r * 3 + c
                who = 0 if self.boards[0] >> a & 1 else 1 if self.boards[1] >> a & 1 else -1
                cells.append(marks[who] if who >= 0 else str(a))
            rows.append(" " + " | ".join(cells))
        return "\n---+---+---\n".join(rows)

    num_symmetries = 8

    @staticmethod
    def legal_from_observation(obs: np.ndarray) -> np.ndarray:
        """Legal moves of observations [..., 2, 3, 3]: the empty cells."""
        return (obs.sum(-3) == 0).reshape(*obs.shape[:-3], 9)

    @staticmethod
    def symmetry(obs: np.ndarray, pi: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Board symmetry ``k`` (0..7: a rotation by k % 4 quarter turns, mirrored when k >= 4)
        applied to observations [..., 2, 3, 3] and policies [..., 9] alike."""
        board = pi.reshape(*pi.shape[:-1], 3, 3)  # [..., row, col] like the observation
        obs, board = np.rot90(obs, k % 4, axes=(-2, -1)), np.rot90(board, k % 4, axes=(-2, -1))
        if k >= 4:
            obs, board = obs[..., ::-1], board[..., ::-1]
        pi = board.reshape(*pi.shape)
        return np.ascontiguousarray(obs), np.ascontiguousarray(pi)
