"""The game regime: self-play workers play whole games with the latest weights, a game store
keeps the last N, the learner samples positions from it, and the plugin's evaluation plays the
network against fixed opponents.

One round: ``algo.games_per_round`` games in all, split over the workers -> the store ->
``updates_per_round`` learner steps on ``batch_size`` positions each (once the store holds
``min_positions``) -> new weights for the next round. Environment steps are moves played in
self-play. The games come from the environment plugin that declares the env id a game
(``registry.find_game``); the self-play worker, the evaluation and ``rlcore play``'s opponent
from the algorithm plugin's ``GameHooks``: the core knows neither.
"""

from __future__ import annotations

import collections
import zipfile
from pathlib import Path

import numpy as np

from rlcore import registry, seeding
from rlcore.actors.slots import WorkerSpec, incarnation_seed, split
from rlcore.buffers.games import GameStore
from rlcore.errors import CheckpointError, ConfigError, IncompatibleEnvError

RECENT_GAMES = 200  # the self-play games the progress line's length and result average over


def game_for(exp) -> tuple[str, object]:
    """(game name, factory of fresh games) of an experiment's env, or a clear error for envs
    that are not games or plugins that do not play them."""
    name, found = registry.find_game(exp.config.env.id, exp.config.env.kwargs)
    if name is None:
        raise IncompatibleEnvError(
            f"{exp.plugin.name} plays two-player games; '{exp.config.env.id}' is not one. Use "
            f"{', '.join(found) or 'an env of a games plugin'}")
    if exp.plugin.game is None:
        raise IncompatibleEnvError(f"{exp.plugin.name} declares the game regime but no game "
                                   "hooks (AlgorithmPlugin.game); its package must set them")
    return name, found


def selfplay_worker(plugin, **kwargs):
    """The plugin's self-play worker (the factory a Ray actor imports by name)."""
    plugin = registry.get_algorithm(plugin) if isinstance(plugin, str) else plugin
    _, make_game = registry.find_game(kwargs.pop("env_id"), kwargs.pop("env_kwargs"))
    return plugin.game.make_worker(plugin, make_game=make_game, **kwargs)


def selfplay_worker_spec(exp, spaces) -> WorkerSpec:
    """The plugin's self-play workers; a replacement (incarnation > 0) gets fresh seeds."""
    cfg = exp.config

    def kwargs(slot: int, incarnation: int, in_ray: bool) -> dict:
        return dict(plugin=exp.plugin_target if in_ray else exp.plugin, env_id=cfg.env.id,
                    env_kwargs=cfg.env.kwargs, algo_cfg=exp.algo, spaces=spaces,
                    seed=incarnation_seed(cfg.seed, slot, incarnation), actor_id=slot)

    return WorkerSpec("rlcore.regimes.game:selfplay_worker", kwargs, what="self-play")


class GameRegime:
    name, one_step = "game", False

    @staticmethod
    def check(exp, spaces) -> None:
        from rlcore.regimes.game_config import GameConfig

        if not isinstance(exp.algo, GameConfig):
            raise IncompatibleEnvError(
                f"{exp.plugin.name} declares the game regime, but its config "
                f"({type(exp.algo).__name__}) does not extend "
                "rlcore.regimes.game_config.GameConfig, whose knobs the regime reads; its "
                "package must derive its config from it")
        name, _ = game_for(exp)
        problems = exp.plugin.game.check(exp, name) if exp.plugin.game.check else []
        if problems:
            raise ConfigError(problems)

    def __init__(self, run):
        self.run, self.algo = run, run.exp.algo
        self.game_name, self.make_game = game_for(run.exp)
        game = self.make_game()
        self.symmetry = getattr(type(game), "symmetry", None) if self.algo.augment else None
        self.num_symmetries = getattr(type(game), "num_symmetries", 1)
        self.store = GameStore(self.algo.window_games)
        self.rng = np.random.default_rng(seeding.derive(run.cfg.seed, seeding.LEARNER_STREAM, 1))
        self.lengths: collections.deque = collections.deque(maxlen=RECENT_GAMES)
        # the first player's result; its mean is the progress line's figure
        self.outcomes: collections.deque = collections.deque(maxlen=RECENT_GAMES)
        self.games_played = 0

    def worker_spec(self) -> WorkerSpec:
        return selfplay_worker_spec(self.run.exp, self.run.spaces)

    # ------------------------------------------------------------------ state

    def restore(self, path: Path, meta: dict) -> None:
        self.games_played = meta.get("games_played", 0)
        games = path / "games.npz"
        if games.is_file():  # else (checkpoint_games off): training waits for min_positions
            spaces = self.run.spaces
            try:
                self.store.load(games, spaces.obs_shape, spaces.num_actions)
            except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                raise CheckpointError(f"{games}: {exc}; delete it to resume with an empty game "
                                      "store") from None

    def check_files(self, path: Path, meta: dict) -> None:
        """Refuses a checkpoint whose game store file does not fit this game (read from its
        headers, before any state is restored)."""
        games = path / "games.npz"
        spaces = self.run.spaces
        problems = (self.store.check_file(games, spaces.obs_shape, spaces.num_actions)
                    if games.is_file() else [])
        if problems:
            raise CheckpointError(f"{path.name}/games.npz: {'; '.join(problems[:3])}; delete it "
                                  "to resume with an empty game store")

    def save(self, path: Path) -> None:
        if self.algo.checkpoint_games:
            self.store.save(path / "games.npz")

    def meta(self) -> dict:
        return {"game": self.game_name, "games_played": self.games_played}

    # ------------------------------------------------------------------ loop

    def round(self) -> tuple[dict, str]:
        """Finished self-play games from every worker, then ``updates_per_round`` updates on
        positions sampled from the last games."""
        run, algo = self.run, self.algo
        t = run.clock()
        run.publish()
        shares = split(algo.games_per_round, max(1, run.pool.num_actors))
        games = [g for batch in run.pool.round(shares) for g in batch]
        t_play = run.clock() - t
        scalars = self._take(games)
        t = run.clock()
        metrics: dict = {}
        if self.store.num_positions >= algo.min_positions:
            progress = run.progress()
            for _ in range(algo.updates_per_round):
                sample = self.store.sample(algo.batch_size, self.rng, self.symmetry,
                                           self.num_symmetries)
                metrics = run.learner.update([sample], progress)
            scalars["learner"] = metrics
        scalars["time"] = {"selfplay_s": t_play, "update_s": run.clock() - t}
        parts = [f"games {self.games_played:,}"]
        if self.lengths:
            parts.append(f"length {np.mean(self.lengths):.1f}")
        parts += [f"{k} {metrics[k]:.3g}" for k in ("policy_loss", "value_loss") if k in metrics]
        return scalars, "  ".join(parts)

    def _take(self, games: list) -> dict:
        run = self.run
        self.store.add(games)
        self.games_played += len(games)
        run.add_steps(sum(g.length for g in games), [])
        self.lengths.extend(g.length for g in games)
        self.outcomes.extend(1.0 if g.winner == 0 else -1.0 if g.winner == 1 else 0.0
                             for g in games)
        scalars = {}
        if games:
            res = np.array([g.winner for g in games])
            scalars["rollout"] = {
                "game_length": np.mean([g.length for g in games]),
                "first_player_win": float((res == 0).mean()),
                "second_player_win": float((res == 1).mean()),
                "draw": float((res == -1).mean())}
        lag = np.mean([run.learner.version - g.policy_version for g in games]) if games else 0.0
        scalars["buffer"] = {"games": len(self.store), "positions": self.store.num_positions}
        scalars["actors"] = {"policy_lag": lag}
        return scalars

    return_label = f"p1 result({RECENT_GAMES})"  # how the progress line names mean_return

    def mean_return(self) -> float | None:
        """Mean self-play result for the first player (+1/0/-1) over recent games."""
        return float(np.mean(self.outcomes)) if self.outcomes else None

    def evaluate(self, modules: dict, index: int) -> dict:
        """The plugin's evaluation against its opponents; ``eval/<opponent>_{win,draw,loss}``.
        The evaluation return is the mean score (+1/0/-1) against the last opponent."""
        cfg, algo = self.run.cfg, self.algo
        seed = seeding.derive(cfg.seed, seeding.EVAL_STREAM, index)
        results = self.run.exp.plugin.game.evaluate(modules, algo, self.make_game, self.game_name,
                                                     cfg.eval.episodes, seed)
        scalars = {f"{spec.replace(':', '')}_{k}": r[k]
                   for spec, r in results.items() for k in ("win", "draw", "loss")}
        last = results[list(results)[-1]]
        scalars["return_mean"] = last["score"]
        text = "  ".join(f"{s}: W {r['win']:.2f} D {r['draw']:.2f} L {r['loss']:.2f} "
                         f"({r['games']} games)" for s, r in results.items())
        return {"mean": last["score"], "std": 0.0, "episodes": last["games"],
                "scalars": scalars, "text": f"eval {text}", "record": {"opponents": results}}

    def summary(self) -> dict:
        last = self.run.evals[-1] if self.run.evals else {}
        gns = self.run.learner.gns
        return {"game": self.game_name, "games_played": self.games_played,
                "eval_opponents": last.get("opponents"), "minibatch_size": self.algo.batch_size,
                "batch_size": self.algo.batch_size,
                "grad_noise_verdict": gns.verdict(self.algo.batch_size)}
