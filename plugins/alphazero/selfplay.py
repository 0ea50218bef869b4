"""Self-play: an actor plays ``parallel_games`` games at once with one batched search over all
their trees, and returns finished ``GameRecord``s. ``SelfPlayPool`` runs one worker inline
(``num_actors: 0``) or N Ray actors; both expose ``play(weights, version) -> list[GameRecord]``.

Move selection: the first ``temperature_moves`` moves of a game are drawn from pi ∝ N (tau = 1),
later ones are the most visited move (tau -> 0); the training target is always the tau = 1
visit distribution. Dirichlet noise is mixed into every root's prior; trees are reused.
"""

from __future__ import annotations

import numpy as np

from rlcore import seeding
from rlcore.buffers.games import GameRecord
from rlcore.errors import ClusterError, RLCoreError
from rlcore.plugins.alphazero.mcts import MCTS, Node, advance, choose, visit_policy
from rlcore.plugins.alphazero.networks import NetworkEvaluator

SELFPLAY_STREAM = 11  # seeding stream of the self-play actors


class _Slot:
    """One game in progress and what it has recorded."""

    def __init__(self, game):
        self.game, self.root = game, Node(game)
        self.obs, self.legal, self.pi, self.player = [], [], [], []


class SelfPlayWorker:
    def __init__(self, plugin, algo_cfg, spaces, game_name: str, seed: int, actor_id: int):
        from rlcore.envs.games import make_game

        self.cfg, self.actor_id, self.version = algo_cfg, actor_id, 0
        self.game_name = game_name
        self.make_game = lambda: make_game(game_name)
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

        load_numpy_weights(self.modules, weights)
        for m in self.modules.values():
            m.eval()
        self.evaluator.clear()
        self.version = version

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
                        s.obs, s.legal, s.pi, s.player, s.game.terminal_value(0), self.version,
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


class SelfPlayActor:
    """The body of a Ray self-play actor (``ray.remote`` is applied at placement time)."""

    def __init__(self, plugin_target: str, kwargs: dict):
        import torch

        from rlcore.registry import get_algorithm

        torch.set_num_threads(1)
        self.worker = SelfPlayWorker(get_algorithm(plugin_target), **kwargs)

    def play(self, weights, version, num_games):
        if weights is not None:
            self.worker.set_weights(weights, version)
        return self.worker.play(num_games)


def _kwargs(exp, spaces, game_name: str, actor_id: int) -> dict:
    return dict(algo_cfg=exp.algo, spaces=spaces, game_name=game_name, seed=exp.config.seed,
                actor_id=actor_id)


class InlineSelfPlay:
    num_actors = 0

    def __init__(self, exp, spaces, game_name: str):
        self.worker = SelfPlayWorker(exp.plugin, **_kwargs(exp, spaces, game_name, 0))
        self.games_per_round = exp.algo.games_per_round

    def play(self, weights, version) -> list[GameRecord]:
        if weights is not None:
            self.worker.set_weights(weights, version)
        return self.worker.play(self.games_per_round)

    def health(self) -> dict:
        return {"healthy": 1, "restarts": 0}

    def close(self) -> None:
        pass


class RaySelfPlay:
    """N Ray actors, each playing ``games_per_round`` games per round with the latest weights."""

    def __init__(self, exp, spaces, game_name: str):
        import ray

        from rlcore.actors.ray_setup import init_ray

        cfg = exp.config
        self.num_actors = cfg.rollout.num_actors
        self.timeout = cfg.rollout.sample_timeout_s
        self.games_per_round = exp.algo.games_per_round
        init_ray(cfg.ray, self.num_actors * cfg.rollout.num_cpus_per_actor)
        remote_cls = ray.remote(num_cpus=cfg.rollout.num_cpus_per_actor)(SelfPlayActor)
        self.actors = [remote_cls.remote(exp.plugin_target, _kwargs(exp, spaces, game_name, i))
                       for i in range(self.num_actors)]
        self._ref, self._version = None, None

    def play(self, weights, version) -> list[GameRecord]:
        import ray

        if weights is not None and version != self._version:
            self._ref, self._version = ray.put(weights), version
        refs = [a.play.remote(self._ref, self._version, self.games_per_round)
                for a in self.actors]
        try:
            return [g for games in ray.get(refs, timeout=self.timeout) for g in games]
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, RLCoreError):
                raise exc.cause from None
            raise
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"no games from the self-play actors within "
                               f"rollout.sample_timeout_s={self.timeout:g} s") from None

    def health(self) -> dict:
        return {"healthy": len(self.actors), "restarts": 0}

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []


def make_selfplay_pool(exp, spaces, game_name: str):
    cls = RaySelfPlay if exp.config.rollout.num_actors > 0 else InlineSelfPlay
    return cls(exp, spaces, game_name)
