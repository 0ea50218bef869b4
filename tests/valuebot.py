"""A second game-playing plugin, for tests: no search, a small value network and one-ply
lookahead. It is written against the public contract only (``rlcore.plugin.GameHooks``,
``GameConfig``, ``GameRecord``), so the game regime is shown to need nothing of alphazero."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from rlcore.buffers.games import GameRecord
from rlcore.learner.batches import concat_samples, to_batch
from rlcore.plugin import AlgorithmPlugin, DataSpec, GameHooks
from rlcore.regimes.game_config import GameConfig
from rlcore.types import ActionOut


class ValueBotConfig(GameConfig):
    hidden: int = Field(16, ge=1, description="hidden units of the value MLP")
    epsilon: float = Field(0.3, ge=0, le=1, description="self-play: random move probability")


def make_modules(cfg, spaces) -> dict:
    size = int(np.prod(spaces.obs_shape))
    return {"net": nn.Sequential(nn.Flatten(), nn.Linear(size, cfg.hidden), nn.Tanh(),
                                 nn.Linear(cfg.hidden, 1), nn.Tanh())}


class RandomPolicy:
    """What a Gymnasium view of the game (``rlcore eval``) gets: uniform actions."""

    def __init__(self, n: int):
        self.n = n

    def act(self, obs, rng):
        return ActionOut(rng.integers(0, self.n, len(obs)))


def make_policy(modules, cfg, spaces, explore: bool):
    return RandomPolicy(spaces.num_actions)


def prepare_batch(modules, samples, cfg, state, rng=None):
    device = next(modules["net"].parameters()).device
    return to_batch(concat_samples(samples, ("obs", "z")), device,
                    dtypes={"obs": torch.float32, "z": torch.float32})


def loss(modules, batch, cfg, state, rng=None):
    value = modules["net"](batch.obs).squeeze(-1)
    return {"value": (value - batch.z).pow(2).mean()}, {}


class Greedy:
    """One-ply lookahead: the move after which the opponent's position is worst for them."""

    def __init__(self, net, epsilon: float = 0.0, seed: int = 0):
        self.net, self.epsilon = net, epsilon
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, game) -> int:
        legal = game.legal_actions()
        if self.rng.random() < self.epsilon:
            return int(self.rng.choice(legal))
        scores = []
        for a in legal:
            nxt = game.clone()
            nxt.apply(a)
            if nxt.is_terminal():
                scores.append(-nxt.terminal_value(nxt.current_player()))
            else:
                obs = torch.as_tensor(nxt.observation()[None], dtype=torch.float32)
                scores.append(-float(self.net(obs)))
        return int(legal[int(np.argmax(scores))])

    def describe(self) -> str:
        return "looks one move ahead"


class Worker:
    def __init__(self, plugin, algo_cfg, spaces, make_game, seed: int, actor_id: int):
        self.modules = make_modules(algo_cfg, spaces)
        self.player = Greedy(self.modules["net"], algo_cfg.epsilon, seed * 1000 + actor_id)
        self.make_game, self.actor_id, self.policy_version = make_game, actor_id, -1

    def set_weights(self, weights, version: int) -> None:
        from rlcore.learner.core import load_numpy_weights

        load_numpy_weights(self.modules, weights)
        self.policy_version = version

    def work(self, num_games: int) -> list:
        out = []
        for _ in range(num_games):
            game, obs, legal, player = self.make_game(), [], [], []
            while not game.is_terminal():
                obs.append(game.observation())
                legal.append(game.legal_mask())
                player.append(game.current_player())
                game.apply(self.player.act(game))
            pi = np.stack(legal).astype(np.float32)
            pi /= pi.sum(1, keepdims=True)
            out.append(GameRecord.from_moves(obs, legal, pi, player, game.terminal_value(0),
                                             self.policy_version, self.actor_id))
        return out

    def close(self) -> None:
        pass


def evaluate(modules, algo, make_game, game_name, episodes, seed) -> dict:
    bot, rng, results = Greedy(modules["net"]), np.random.default_rng(seed), []
    for i in range(episodes):
        game, seat = make_game(), i % 2
        while not game.is_terminal():
            mover = game.current_player()
            game.apply(bot.act(game) if mover == seat else int(rng.choice(game.legal_actions())))
        results.append(game.terminal_value(seat))
    r = np.array(results)
    return {"random": {"win": float((r > 0).mean()), "draw": float((r == 0).mean()),
                       "loss": float((r < 0).mean()), "score": float(r.mean()),
                       "games": len(r)}}


PLUGIN = AlgorithmPlugin(
    name="valuebot", description="test plugin: value network with one-ply lookahead",
    config_cls=ValueBotConfig, data_spec=DataSpec(regime="game", needs_log_prob=False),
    make_modules=make_modules, make_policy=make_policy, loss=loss, prepare_batch=prepare_batch,
    learner_defaults={"num_epochs": 1, "minibatch_size": 0, "torch_threads": 1},
    game=GameHooks(make_worker=Worker, evaluate=evaluate,
                   player=lambda modules, algo, simulations=None: Greedy(modules["net"])),
)
