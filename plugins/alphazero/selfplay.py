"""Self-play: a worker plays ``parallel_games`` games at once with one batched search over all
their trees, and returns finished ``GameRecord``s. The core's actor layer runs it inline
(``num_actors: 0``) or in N Ray actors (``GameHooks.make_worker``).

Move selection: the first ``temperature_moves`` moves of a game are drawn from pi ∝ N (tau = 1),
later ones are the most visited move (tau -> 0); the training target is always the tau = 1
visit distribution. Dirichlet noise is mixed into every root's prior; trees are reused.
"""

from __future__ import annotations

import numpy as np

from rlcore import seeding
from rlcore.buffers.games import GameRecord
from rlcore.plugins.alphazero.mcts import MCTS, Node, advance, choose, visit_policy
from rlcore.plugins.alphazero.networks import NetworkEvaluator

SELFPLAY_STREAM = 11  # seeding stream of the self-play actors


class _Slot:
    """One game in progress and what it has recorded."""

    def __init__(self, game):
        self.game, self.root = game, Node(game)
        self.obs, self.legal, self.pi, self.player = [], [], [], []


class SelfPlayWorker:
    def __init__(self, plugin, algo_cfg, spaces, make_game, seed: int, actor_id: int):
        self.cfg, self.actor_id, self.policy_version = algo_cfg, actor_id, -1
        self.make_game = make_game
        with seeding.seeded_torch(0):
            self.modules = plugin.make_modules(algo_cfg, spaces)
        for m in self.modules.values():
            m.eval()
        self.evaluator = NetworkEvaluator(self.modules["net"], algo_cfg.cache_size)
        self.mcts = MCTS(self.evaluator, algo_cfg.c_puct, algo_cfg.num_simulations,
                         algo_cfg.leaves_per_game, algo_cfg.virtual_loss,
                         algo_cfg.dirichlet_alpha, algo_cfg.dirichlet_eps)
        self.rng = np.random.default_rng(seeding.derive(seed, SELFPLAY_STREAM, actor_id))

    def set_weights(self, weights: dict, version: int) -> None:
        from rlcore.learner.core import load_numpy_weights

        if version == self.policy_version:
            return
        load_numpy_weights(self.modules, weights)
        for m in self.modules.values():
            m.eval()
        self.evaluator.clear()
        self.policy_version = version

    def work(self, num_games: int) -> list[GameRecord]:
        return self.play(num_games)

    def close(self) -> None:
        pass

    def play(self, num_games: int) -> list[GameRecord]:
        cfg, done = self.cfg, []
        started = min(cfg.parallel_games, num_games)
        slots = [_Slot(self.make_game()) for _ in range(started)]
        while slots:
            self.mcts.search([s.root for s in slots], self.rng, noise=cfg.dirichlet_eps > 0)
            keep = []
            for s in slots:
                root = s.root
                tau = 1.0 if len(s.obs) < cfg.temperature_moves else 0.0
                s.obs.append(s.game.observation())
                s.legal.append(root.legal.copy())
                s.pi.append(visit_policy(root.N, 1.0, root.legal))
                s.player.append(s.game.current_player())
                a = choose(root, tau, self.rng)
                s.game.apply(a)
                s.root = advance(root, a, s.game)
                s.root.game = s.game  # the reused subtree's state is the same position
                if s.game.is_terminal():
                    done.append(GameRecord.from_moves(
                        s.obs, s.legal, s.pi, s.player, s.game.terminal_value(0), self.policy_version,
                        self.actor_id))
                    if started < num_games:
                        keep.append(_Slot(self.make_game()))
                        started += 1
                else:
                    keep.append(s)
            slots = keep
        return done

    def stats(self) -> dict:
        m, e = self.mcts, self.evaluator
        return {"forward_passes": m.forward_passes, "positions_evaluated": m.positions_evaluated,
                "cache_hits": e.hits, "cache_misses": e.misses}
