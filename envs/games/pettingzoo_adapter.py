"""Any PettingZoo AEC game with an action mask as a ``Game``: search and rlcore players can
then play it (``game: pettingzoo:pettingzoo.classic.connect_four_v3`` in env.kwargs).

PettingZoo environments pickle (and deep-copy) by re-running their constructor, which loses the
position, so ``clone`` makes a fresh env and replays the moves (the classic board games are
deterministic): fine for playing and for checking the native games, slow for search (use the
native games there).
"""

from __future__ import annotations

import importlib
import re

import numpy as np

from rlcore.envs.games.base import IllegalMoveError, check_action
from rlcore.errors import IncompatibleEnvError


# The module comes from env.kwargs, which is data: it may name PettingZoo's own environments
# and nothing else, so no value in an experiment file becomes an import of arbitrary code
# (a game of your own comes in as code, through an env plugin; README, "Security").
_PETTINGZOO_MODULE = re.compile(r"^pettingzoo(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


def make_aec_env(module: str, **kwargs):
    if not _PETTINGZOO_MODULE.match(module):
        raise IncompatibleEnvError(
            f"game 'pettingzoo:{module}' names a module outside PettingZoo; env.kwargs are data "
            "and import nothing but PettingZoo's own environments (e.g. "
            "pettingzoo:pettingzoo.classic.connect_four_v3). Bring a game of your own as code: "
            "an env plugin whose make_game builds it (README, 'Writing a plugin')")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise IncompatibleEnvError(
            f"PettingZoo game '{module}' cannot be imported ({exc}); install the games extra: "
            "pip install 'rlcore[games]', and name a module such as "
            "pettingzoo.classic.tictactoe_v3") from None
    if not hasattr(mod, "env"):
        raise IncompatibleEnvError(f"'{module}' has no env() constructor; name a PettingZoo "
                                   "environment module such as pettingzoo.classic.tictactoe_v3")
    return mod.env(**kwargs)


class PettingZooGame:
    """A two-player, turn-based PettingZoo AEC env whose observations are dicts with
    ``observation`` and ``action_mask``."""

    def __init__(self, module: str, seed: int | None = 0, env_kwargs: dict | None = None):
        self.module, self.seed, self.env_kwargs = module, seed, dict(env_kwargs or {})
        self.moves: list[int] = []
        self.name = module.rsplit(".", 1)[-1]
        self.env = make_aec_env(module, **(env_kwargs or {}))
        self.env.reset(seed=seed)
        self.agents = list(self.env.possible_agents)
        if len(self.agents) != 2:
            raise IncompatibleEnvError(f"{module}: has {len(self.agents)} agents; the game "
                                       "regime plays two-player games")
        first = self.env.observe(self.env.agent_selection)
        if not isinstance(first, dict) or "action_mask" not in first:
            raise IncompatibleEnvError(f"{module}: observations carry no action_mask; search "
                                       "needs the legal moves: make observe() return "
                                       "{'observation': ..., 'action_mask': ...} as PettingZoo's "
                                       "classic games do")
        self.num_actions = int(self.env.action_space(self.agents[0]).n)
        self.obs_shape = tuple(self._canonical(first["observation"]).shape)
        self._final = None  # rewards at the end of the game, by agent

    @staticmethod
    def _canonical(obs) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        return np.moveaxis(obs, -1, 0) if obs.ndim == 3 else obs  # HWC -> CHW

    def clone(self) -> "PettingZooGame":
        other = PettingZooGame(self.module, self.seed, self.env_kwargs)
        for a in self.moves:
            other.apply(a)
        return other

    def current_player(self) -> int:
        return self.agents.index(self.env.agent_selection)

    def is_terminal(self) -> bool:
        return self._final is not None

    def legal_mask(self) -> np.ndarray:
        if self.is_terminal():
            return np.zeros(self.num_actions, bool)
        return np.asarray(self.env.observe(self.env.agent_selection)["action_mask"], bool)

    def legal_actions(self) -> list[int]:
        return np.flatnonzero(self.legal_mask()).tolist()

    def apply(self, action: int) -> None:
        a = check_action(self, action)
        self.env.step(a)
        self.moves.append(a)
        env = self.env
        if any(env.terminations.values()) or any(env.truncations.values()):
            # classic games reward only the final move: +1 / -1, or 0 for both on a draw
            self._final = {ag: float(env.rewards.get(ag, 0.0)) for ag in self.agents}

    def terminal_value(self, player: int) -> float:
        if self._final is None:
            raise IllegalMoveError(f"{self.name}: the game is not over")
        return float(np.sign(self._final[self.agents[player]]))

    def observation(self) -> np.ndarray:
        return self._canonical(self.env.observe(self.env.agent_selection)["observation"])

    def key(self):
        return (self.current_player(), self.observation().tobytes())

    def render(self) -> str:
        obs = self.observation()
        if obs.ndim != 3:
            return str(obs)
        me, them = ("XO" if self.current_player() == 0 else "OX")
        return "\n".join(" ".join(me if obs[0, r, c] else them if obs[1, r, c] else "."
                                  for c in range(obs.shape[2])) for r in range(obs.shape[1]))
