"""Two-player board games for the game regime (rlcore/README.md, "The three regimes").

``Game`` (base.py) is what search needs; ``TicTacToe`` and ``ConnectFour`` are native and fast
(bitboards, cheap ``clone``) and are checked move for move against PettingZoo's
``tictactoe_v3`` / ``connect_four_v3``; ``PettingZooGame`` plays any PettingZoo AEC game with an
action mask. ``make_game(name)`` builds one by name.

For Gymnasium (``rlcore validate``, ``rlcore eval``) each game is also registered as a
single-agent env in which the agent plays one seat against a uniformly random opponent:
``rlcore/TicTacToe-v0``, ``rlcore/ConnectFour-v0`` and ``rlcore/PettingZooGame-v0`` (kwarg
``game: pettingzoo:MODULE``). The AlphaZero trainer reads the ``game`` kwarg and plays the
game itself.
"""

from __future__ import annotations

from rlcore.envs.games.base import Game, IllegalMoveError, check_action
from rlcore.plugin import EnvPlugin

NATIVE = {
    "tictactoe": "rlcore.envs.games.tictactoe:TicTacToe",
    "connect_four": "rlcore.envs.games.connect_four:ConnectFour",
}
IDS = {
    "rlcore/TicTacToe-v0": {"game": "tictactoe"},
    "rlcore/ConnectFour-v0": {"game": "connect_four"},
    "rlcore/PettingZooGame-v0": {"game": "pettingzoo:pettingzoo.classic.tictactoe_v3"},
}

__all__ = ["Game", "IllegalMoveError", "check_action", "make_game", "game_name_for", "PLUGIN"]


def make_game(name: str):
    """A fresh game (start position) by name: ``tictactoe``, ``connect_four`` or
    ``pettingzoo:MODULE``."""
    import importlib

    from rlcore.errors import IncompatibleEnvError

    if name.startswith("pettingzoo:"):
        from rlcore.envs.games.pettingzoo_adapter import PettingZooGame

        return PettingZooGame(name.partition(":")[2])
    if name not in NATIVE:
        raise IncompatibleEnvError(f"unknown game '{name}'; known: {', '.join(NATIVE)} or "
                                   "pettingzoo:MODULE (e.g. pettingzoo:pettingzoo.classic.go_v5)")
    module, _, cls = NATIVE[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def legal_from_observation(obs):
    """Legal moves read off a batch of native-game observations (the game is known by the
    observation's shape), or None for other shapes."""
    import importlib

    for target in NATIVE.values():
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if tuple(obs.shape[-3:]) == cls.obs_shape:
            return cls.legal_from_observation(obs)
    return None


def game_name_for(env_id: str, kwargs: dict | None = None) -> str | None:
    """The ``game`` an env id plays (its registered kwargs, overridden by ``kwargs``), or None
    for envs that are not two-player games."""
    import gymnasium as gym

    from rlcore.registry import ensure_env_registered

    ensure_env_registered(env_id)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return None
    if spec.entry_point != ENTRY:
        return None
    return {**spec.kwargs, **(kwargs or {})}.get("game")


ENTRY = "rlcore.envs.games.env:GameEnv"


def register() -> None:
    import gymnasium as gym

    for env_id, kwargs in IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=ENTRY, kwargs=kwargs)


PLUGIN = EnvPlugin(
    name="games",
    description="two-player board games for self-play: tic-tac-toe, connect four, PettingZoo AEC",
    register=register,
    ids=tuple(IDS),
    game_name_for=game_name_for,
    make_game=make_game,
)
