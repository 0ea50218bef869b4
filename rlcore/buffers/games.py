"""Finished self-play games and the store the learner samples positions from (the game regime).

A ``GameRecord`` crosses Ray as numpy arrays: for each position the canonical observation, the
legal moves, the search's visit-count distribution pi, the mover and z, the game's outcome from
that mover's view (back-filled when the game ends). ``GameStore`` keeps the last N games and
samples positions uniformly from them.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class GameRecord:
    obs: np.ndarray  # [T, C, H, W] float32, from the view of the player to move
    legal: np.ndarray  # [T, A] bool
    pi: np.ndarray  # [T, A] float32: visit-count distribution of the search (tau = 1)
    player: np.ndarray  # [T] int8: who moved
    z: np.ndarray  # [T] float32: outcome for the mover (+1 win, 0 draw, -1 loss)
    winner: int  # -1 for a draw
    policy_version: int
    actor_id: int

    @property
    def length(self) -> int:
        return int(len(self.z))

    @classmethod
    def from_moves(cls, obs, legal, pi, player, result_for_player0: float, policy_version: int,
                   actor_id: int) -> "GameRecord":
        """Back-fill z from each mover's perspective from the result for player 0."""
        player = np.asarray(player, np.int8)
        z = np.where(player == 0, result_for_player0, -result_for_player0).astype(np.float32)
        winner = -1 if result_for_player0 == 0 else (0 if result_for_player0 > 0 else 1)
        return cls(np.asarray(obs, np.float32), np.asarray(legal, bool),
                   np.asarray(pi, np.float32), player, z, winner, policy_version, actor_id)


class GameStore:
    """The last ``max_games`` games; ``sample`` draws positions uniformly over all of them."""

    def __init__(self, max_games: int):
        if max_games < 1:
            raise ValueError("max_games must be >= 1")
        self.games: collections.deque[GameRecord] = collections.deque(maxlen=max_games)
        self.total_games = 0

    def add(self, games: list[GameRecord]) -> None:
        for g in games:
            if g.length:
                self.games.append(g)
                self.total_games += 1

    @property
    def num_positions(self) -> int:
        return sum(g.length for g in self.games)

    def __len__(self) -> int:
        return len(self.games)

    def sample(self, batch_size: int, rng: np.random.Generator, symmetry=None,
               num_symmetries: int = 1) -> dict[str, np.ndarray]:
        """``batch_size`` positions, uniform over the stored positions (with replacement).
        ``symmetry(obs, pi, k)`` applies board symmetry k (drawn uniformly from
        ``num_symmetries``) to each sampled position."""
        if not self.games:
            raise ValueError("the game store is empty")
        lengths = np.array([g.length for g in self.games])
        gi = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
        ti = (rng.random(batch_size) * lengths[gi]).astype(np.int64)
        games = self.games
        obs = np.stack([games[g].obs[t] for g, t in zip(gi, ti)])
        pi = np.stack([games[g].pi[t] for g, t in zip(gi, ti)])
        legal = np.stack([games[g].legal[t] for g, t in zip(gi, ti)])
        z = np.array([games[g].z[t] for g, t in zip(gi, ti)], np.float32)
        if symmetry is not None and num_symmetries > 1:
            ks = rng.integers(0, num_symmetries, batch_size)
            for k in np.unique(ks):
                sel = ks == k
                legal[sel] = symmetry(obs[sel], legal[sel], int(k))[1]  # moves like pi
                obs[sel], pi[sel] = symmetry(obs[sel], pi[sel], int(k))
        return {"obs": obs, "pi": pi, "legal": legal, "z": z}

    # ------------------------------------------------------------------ checkpoint

    _PER_POSITION = ("obs", "legal", "pi", "player", "z")
    _PER_GAME = ("winner", "policy_version", "actor_id")

    def save(self, path) -> None:
        """The stored games as one compressed ``.npz`` (no pickle), written to a temporary file
        and renamed into place: positions concatenated, with each game's length."""
        games = list(self.games)
        arrays = {k: np.concatenate([getattr(g, k) for g in games]) if games else np.zeros(0)
                  for k in self._PER_POSITION}
        arrays.update({k: np.array([getattr(g, k) for g in games], np.int64)
                       for k in self._PER_GAME})
        arrays["lengths"] = np.array([g.length for g in games], np.int64)
        arrays["totals"] = np.array([self.total_games, self.games.maxlen], np.int64)
        path = str(path)
        tmp = f"{path}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    def check_file(self, path, obs_shape: tuple, num_actions: int) -> list[str]:
        """What keeps ``load`` from reading ``save``'s file ``path`` for positions of
        ``obs_shape`` with ``num_actions`` moves, from the file's headers (and its small array of
        game lengths): missing arrays, other shapes, counts that disagree. Empty when it fits."""
        from rlcore.buffers.npzfile import npz_layout

        try:
            found = npz_layout(path)
        except ValueError as exc:
            return [str(exc)]
        names = (*self._PER_POSITION, *self._PER_GAME, "lengths", "totals")
        problems = [f"array '{k}': missing" for k in names if k not in found]
        problems += [f"array '{k}': expected numbers, found Python objects"
                     for k in names if k in found and found[k][1].hasobject]
        if problems:
            return problems
        games = found["lengths"][0]
        if found["totals"][0] != (2,):
            problems.append(f"array 'totals': expected shape (2,), found {found['totals'][0]}")
        problems += [f"array '{k}': expected shape {tuple(games)} (one per game), found "
                     f"{found[k][0]}" for k in self._PER_GAME if found[k][0] != tuple(games)]
        if len(games) != 1 or games[0] == 0:
            return problems
        try:
            with np.load(path, allow_pickle=False) as data:
                positions = int(np.sum(data["lengths"]))
        except Exception as exc:  # a damaged member: zipfile's CRC check, zlib
            return problems + [f"array 'lengths': unreadable ({type(exc).__name__}: {exc})"]
        expected = {"obs": (positions, *obs_shape), "pi": (positions, num_actions),
                    "legal": (positions, num_actions)}
        for k in self._PER_POSITION:
            want = expected.get(k)
            shape = found[k][0]
            if want is not None and shape != tuple(want):
                problems.append(f"array '{k}': expected shape {tuple(want)} (this game's "
                                f"positions), found {shape}")
            elif want is None and shape[:1] != (positions,):
                problems.append(f"array '{k}': expected {positions} positions (the sum of the "
                                f"game lengths), found shape {shape}")
        return problems

    def load(self, path, obs_shape: tuple, num_actions: int) -> None:
        """Replace the stored games with those of ``save``'s file; the newest ``max_games`` are
        kept if the file holds more. Raises ValueError when the file's positions do not have
        ``obs_shape`` and ``num_actions``."""
        with np.load(path, allow_pickle=False) as data:
            d = {k: data[k] for k in data.files}
        lengths = d["lengths"]
        if len(lengths) and (d["obs"].shape[1:] != tuple(obs_shape)
                             or d["pi"].shape[1:] != (num_actions,)):
            raise ValueError(f"game store file {path}: positions of shape {d['obs'].shape[1:]} "
                             f"with {d['pi'].shape[1]} moves, this game has {tuple(obs_shape)} "
                             f"and {num_actions}")
        ends = np.cumsum(lengths)
        self.games.clear()
        for i, (start, end) in enumerate(zip(ends - lengths, ends)):
            self.games.append(GameRecord(
                *(d[k][start:end] for k in self._PER_POSITION),
                *(int(d[k][i]) for k in self._PER_GAME)))
        self.total_games = int(d["totals"][0])
