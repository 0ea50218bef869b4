"""What alphazero gives the core's game regime (``rlcore.plugin.GameHooks``): its self-play
worker, its evaluation against fixed opponents and the player of ``rlcore play``."""

from __future__ import annotations

from rlcore.plugins.alphazero.networks import NetworkEvaluator
from rlcore.plugins.alphazero.players import SearchPlayer, make_opponent, match
from rlcore.plugins.alphazero.selfplay import SelfPlayWorker


def make_worker(plugin, algo_cfg, spaces, make_game, seed: int, actor_id: int) -> SelfPlayWorker:
    return SelfPlayWorker(plugin, algo_cfg, spaces, make_game, seed, actor_id)


def evaluate(modules: dict, algo, make_game, game_name: str, episodes: int, seed: int) -> dict:
    """The network with search against each of ``algo.eval_opponents`` (``episodes`` games
    each, half from each seat; against minimax every opening instead, see ``players.match``)."""
    player = SearchPlayer(NetworkEvaluator(modules["net"], algo.cache_size),
                          algo.eval_simulations, algo.c_puct, algo.leaves_per_game)
    return {spec: match(make_game, player, make_opponent(spec, seed), episodes)
            for spec in algo.eval_opponents}


class _Bot:
    def __init__(self, modules: dict, algo, simulations: int | None):
        self.simulations = simulations or algo.eval_simulations
        self.player = SearchPlayer(NetworkEvaluator(modules["net"], algo.cache_size),
                                   self.simulations, algo.c_puct)

    def act(self, game) -> int:
        return self.player.act(game)

    def describe(self) -> str:
        return f"searches {self.simulations} simulations per move"


def player(modules: dict, algo, simulations: int | None = None) -> _Bot:
    return _Bot(modules, algo, simulations)


def check(exp, game_name: str) -> list[str]:
    """minimax solves the whole game, so it is offered for tic-tac-toe only."""
    if "minimax" in exp.algo.eval_opponents and game_name != "tictactoe":
        return [f"{exp.where('algo', 'eval_opponents')}: algo.eval_opponents: minimax solves the "
                f"whole game and is only offered for tic-tac-toe, not '{game_name}'; use random "
                "or mcts:N"]
    return []
