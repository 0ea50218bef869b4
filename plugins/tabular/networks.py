"""tabular's modules: a Q table (with visit counts and the current epsilon) and its behaviour
policies, epsilon-greedy or UCB, run by actors in numpy with the worker's seeded generator."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlcore.errors import IncompatibleEnvError
from rlcore.ops.actions import boltzmann_sample
from rlcore.types import ActionOut

MAX_MODEL_ENTRIES = 16_000_000  # N(s, a, s') counts of algo.bounds: 128 MB of int64


class QTable(nn.Module):
    """``q`` [max_states, num_actions] (float64) is a parameter without gradient (so the learner's optimizer
    has something to hold and checkpoints carry it); ``counts`` N(s, a) and ``epsilon`` are
    buffers. The ``update`` hook writes all three; actors receive them with the weights."""

    def __init__(self, num_states: int, num_actions: int, init_q: float, epsilon: float,
                 model: bool = False):
        super().__init__()
        S, A = num_states, num_actions
        self.q = nn.Parameter(torch.full((S, A), float(init_q), dtype=torch.float64),
                              requires_grad=False)
        self.register_buffer("counts", torch.zeros(S, A, dtype=torch.int64))
        self.register_buffer("epsilon", torch.tensor(float(epsilon)))
        if model:  # algo.bounds: the empirical model and the tightest bounds so far (bounds.py)
            self.register_buffer("next_counts", torch.zeros(S, A, S + 1, dtype=torch.int64))
            self.register_buffer("reward_sum", torch.zeros(S, A, dtype=torch.float64))
            self.register_buffer("lower", torch.full((S, A), -torch.inf, dtype=torch.float64))
            self.register_buffer("upper", torch.full((S, A), torch.inf, dtype=torch.float64))


def check_discrete_obs(spaces) -> None:
    if spaces.obs_shape != () or np.dtype(spaces.obs_dtype).kind not in "iu":
        raise IncompatibleEnvError(
            f"tabular needs a Discrete observation space (one integer state per step); the env "
            f"gives {spaces.obs_dtype} observations of shape {spaces.obs_shape}. For rlcore's "
            "gridworlds and bandits set env.kwargs.obs_mode: index; for other envs use pg/ppo")


def make_modules(cfg, spaces) -> dict:
    check_discrete_obs(spaces)
    rows = spaces.num_obs or cfg.max_states  # the env's own state count when it declares one
    model = cfg.bounds != "none"
    if model and rows * rows * spaces.num_actions > MAX_MODEL_ENTRIES:
        raise IncompatibleEnvError(
            f"tabular algo.bounds: {cfg.bounds} keeps transition counts for {rows} states x "
            f"{spaces.num_actions} actions x {rows} next states, over {MAX_MODEL_ENTRIES:,} "
            "entries; use bounds: none for this env (or a smaller algo.max_states)")
    return {"q": QTable(rows, spaces.num_actions, cfg.init_q, cfg.epsilon, model)}


def state_rows(obs: np.ndarray, num_rows: int, where: str) -> np.ndarray:
    s = np.asarray(obs, np.int64).reshape(-1)
    if s.size and (s.min() < 0 or s.max() >= num_rows):
        bad = int(s[(s < 0) | (s >= num_rows)][0])
        raise IncompatibleEnvError(f"tabular ({where}): observation {bad} is outside the Q table's "
                                   f"{num_rows} rows; raise algo.max_states above the env's "
                                   "number of states")
    return s


def _random_argmax(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Argmax per row with ties broken uniformly at random (a fresh table is all ties)."""
    ties = values >= values.max(axis=-1, keepdims=True)
    return np.argmax(ties * rng.random(values.shape), axis=-1)


class TabularPolicy:
    """Epsilon-greedy, UCB or Boltzmann over the table; greedy (lowest index among ties) when not
    exploring."""

    def __init__(self, table: QTable, cfg, explore: bool):
        self.table, self.cfg, self.explore = table, cfg, explore

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        q = self.table.q.detach().cpu().numpy()
        s = state_rows(obs, q.shape[0], "policy")
        values = q[s]
        if not self.explore:
            return ActionOut(values.argmax(axis=-1))
        if self.cfg.exploration == "ucb":
            return ActionOut(_random_argmax(self._ucb(values, s), rng))
        if self.cfg.exploration == "boltzmann":  # pi ~ exp(beta Q)
            return ActionOut(boltzmann_sample(values, self.cfg.beta, rng))
        greedy = _random_argmax(values, rng)
        random = rng.integers(q.shape[1], size=len(s))
        eps = float(self.table.epsilon)
        return ActionOut(np.where(rng.random(len(s)) < eps, random, greedy))

    def _ucb(self, values: np.ndarray, s: np.ndarray) -> np.ndarray:
        n = self.table.counts.cpu().numpy()[s].astype(np.float64)
        total = n.sum(axis=-1, keepdims=True)
        bonus = self.cfg.ucb_c * np.sqrt(np.log(np.maximum(total, 1.0)) / np.maximum(n, 1.0))
        return np.where(n > 0, values + bonus, np.inf)  # every arm is tried once first


def make_policy(modules: dict, cfg, spaces, explore: bool) -> TabularPolicy:
    return TabularPolicy(modules["q"], cfg, explore)
