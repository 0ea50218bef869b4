"""Connect four (6 rows x 7 columns) on bitboards.

Each player's stones are one Python int with 7 bits per column (6 cells from the bottom up and
an empty sentinel bit), so a win is four shifted ANDs and ``clone`` copies two ints. Actions and
observations follow PettingZoo's ``connect_four_v3`` exactly (tests replay random games in
both): action = column 0..6; observation plane 0 holds the stones of the player to move, plane 1
the opponent's, row 0 at the top (here channels-first, [2, 6, 7]).
"""

from __future__ import annotations

import numpy as np

from rlcore.envs.games.base import BitboardGame, IllegalMoveError, check_action

ROWS, COLS, H1 = 6, 7, 7  # H1: bits per column
TOP = tuple(1 << (c * H1 + ROWS - 1) for c in range(COLS))  # the top cell of each column
BOTTOM = tuple(1 << (c * H1) for c in range(COLS))


def _wins(b: int) -> bool:
    for shift in (1, H1, H1 - 1, H1 + 1):  # vertical, horizontal, two diagonals
        m = b & (b >> shift)
        if m & (m >> (2 * shift)):
            return True
    return False


class ConnectFour(BitboardGame):
    name = "connect_four"
    num_actions = COLS
    max_moves = ROWS * COLS
    obs_shape = (2, ROWS, COLS)
    num_symmetries = 2
    __slots__ = ("heights",)
    _wins = staticmethod(_wins)

    def __init__(self):
        super().__init__()
        self.heights = [0] * COLS  # stones in each column

    def clone(self) -> "ConnectFour":
        g = self._copy_to(ConnectFour.__new__(ConnectFour))
        g.heights = self.heights[:]
        return g

    def playout_value(self, rng) -> float:
        """``random_playout_value`` (the same draws, the same result) on local copies of the
        bitboards and heights, the open columns kept in a list: several times faster than
        cloning and applying."""
        me = self.player
        if self.is_terminal():
            return self.terminal_value(me)
        boards, heights, p, moves = self.boards[:], self.heights[:], me, self.moves
        open_cols = [c for c in range(COLS) if heights[c] < ROWS]
        uniform = rng.random  # int(u * n): uniform over n columns up to 2^-53
        while True:
            c = open_cols[int(uniform() * len(open_cols))]
            h = heights[c]
            b = boards[p] | 1 << (c * H1 + h)
            boards[p] = b
            moves += 1
            if _wins(b):
                return 1.0 if p == me else -1.0
            if moves == ROWS * COLS:
                return 0.0
            heights[c] = h + 1
            if h + 1 == ROWS:
                open_cols.remove(c)
            p = 1 - p

    def legal_actions(self) -> list[int]:
        if self.is_terminal():
            return []
        return [c for c in range(COLS) if self.heights[c] < ROWS]

    def apply(self, action: int) -> None:
        if action.__class__ is not int:  # numpy ints and garbage: checked in full
            action = check_action(self, action)
        if self.winner >= 0 or not (0 <= action < COLS) or self.heights[action] >= ROWS:
            check_action(self, action)
            raise IllegalMoveError(f"connect_four: move {action!r} is illegal here")
        self.heights[action] += 1
        self._place(1 << (action * H1 + self.heights[action] - 1))

    def _plane(self, bits: int) -> np.ndarray:
        plane = np.zeros((ROWS, COLS), np.float32)
        for c in range(COLS):
            col = bits >> (c * H1)
            for h in range(self.heights[c]):
                if col >> h & 1:
                    plane[ROWS - 1 - h, c] = 1.0
        return plane

    def observation(self) -> np.ndarray:
        return np.stack([self._plane(self.boards[self.player]),
                         self._plane(self.boards[1 - self.player])])

    def render(self) -> str:
        obs = np.stack([self._plane(self.boards[0]), self._plane(self.boards[1])])
        rows = [" ".join("X" if obs[0, r, c] else "O" if obs[1, r, c] else "."
                         for c in range(COLS)) for r in range(ROWS)]
        return "\n".join(rows + [" ".join(str(c) for c in range(COLS))])

    @staticmethod
    def legal_from_observation(obs: np.ndarray) -> np.ndarray:
        """Legal moves of observations [..., 2, 6, 7]: the columns whose top cell is empty."""
        return obs[..., 0, :].sum(-2) == 0

    @staticmethod
    def symmetry(obs: np.ndarray, pi: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Symmetry ``k``: 0 the identity, 1 the left-right mirror, for observations
        [..., 2, 6, 7] and policies [..., 7] alike."""
        if k % 2 == 0:
            return obs, pi
        return np.ascontiguousarray(obs[..., ::-1]), np.ascontiguousarray(pi[..., ::-1])
