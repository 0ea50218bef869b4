"""Tic-tac-toe on two 9-bit boards (one per player).

Actions and observations follow PettingZoo's ``tictactoe_v3`` exactly (tests replay random games
in both): action ``a`` marks the observation cell at row ``a // 3``, column ``a % 3``, and the
observation's plane 0 holds the marks of the player to move, plane 1
the opponent's (here channels-first, [2, 3, 3]).
"""

from __future__ import annotations

import numpy as np

from rlcore.envs.games.base import BitboardGame, IllegalMoveError, check_action

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


class TicTacToe(BitboardGame):
    name = "tictactoe"
    num_actions = 9
    max_moves = 9
    obs_shape = (2, 3, 3)
    __slots__ = ()
    _wins = staticmethod(_wins)

    def clone(self) -> "TicTacToe":
        return self._copy_to(TicTacToe.__new__(TicTacToe))

    def legal_actions(self) -> list[int]:
        if self.is_terminal():
            return []
        occupied = self.boards[0] | self.boards[1]
        return [a for a in range(9) if not occupied >> a & 1]

    def apply(self, action: int) -> None:
        if action.__class__ is not int:  # numpy ints and garbage: checked in full
            action = check_action(self, action)
        occupied = self.boards[0] | self.boards[1]
        if self.winner >= 0 or not (0 <= action < 9) or occupied >> action & 1:
            check_action(self, action)  # raises with the reason
            raise IllegalMoveError(f"tictactoe: move {action!r} is illegal here")
        self._place(1 << action)

    def observation(self) -> np.ndarray:
        obs = np.zeros(self.obs_shape, np.float32)
        me, them = self.boards[self.player], self.boards[1 - self.player]
        for a, (r, c) in enumerate(CELLS):
            if me >> a & 1:
                obs[0, r, c] = 1.0
            elif them >> a & 1:
                obs[1, r, c] = 1.0
        return obs

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
