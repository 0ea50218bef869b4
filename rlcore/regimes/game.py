"""The training driver for the game regime (DESIGN.md, "Data regimes"): self-play actors play
whole games with the latest weights, a game store keeps the last N, the learner samples
positions from it, and an evaluator plays the network with search against fixed opponents.

One round: every actor plays ``algo.games_per_round`` games -> the store -> ``updates_per_round``
learner steps on ``batch_size`` positions each (once the store holds ``min_positions``) ->
new weights for the next round. Environment steps are moves played in self-play. The interface
is ``rlcore.loops.Trainer``'s: ``run(logger, on_eval) -> summary``, ``save_checkpoint``, ``pool``,
``device``, ``env_steps``, ``resumed_from``; Ctrl-C writes a checkpoint.
"""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.run import checkpoint
from rlcore.buffers.games import GameStore
from rlcore.errors import CheckpointError, ConfigError, IncompatibleEnvError
from rlcore.learner.core import load_numpy_weights
from rlcore.run.lifecycle import Trainer, check_spaces, versions


def game_for(exp) -> str:
    """The game an experiment's env plays, or a clear error for envs that are not games."""
    from rlcore.envs.games import IDS, game_name_for

    name = game_name_for(exp.config.env.id, exp.config.env.kwargs)
    if name is None:
        raise IncompatibleEnvError(
            f"{exp.plugin.name} plays two-player games; '{exp.config.env.id}' is not one. Use "
            f"{', '.join(IDS)}")
    return name


def check_game(exp) -> str:
    """The experiment's game, after checking that its env is one and the opponents fit it
    (``check_spaces`` calls this for game-regime plugins, so ``rlcore validate`` does too)."""
    name = game_for(exp)
    check_opponents(exp, name)
    return name


def check_opponents(exp, game_name: str) -> None:
    if "minimax" in exp.algo.eval_opponents and game_name != "tictactoe":
        raise ConfigError([f"{exp.where('algo', 'eval_opponents')}: algo.eval_opponents: minimax "
                           f"solves the whole game and is only offered for tic-tac-toe, not "
                           f"'{game_name}'; use random or mcts:N"])


class SelfPlayTrainer(Trainer):
    """The game regime's driver: ``Trainer.run``'s loop with self-play rounds."""

    def __init__(self, exp, run_dir: Path, resume: bool = False, clock=time.monotonic):
        from rlcore.envs.games import make_game
        from rlcore.plugins.alphazero.selfplay import make_selfplay_pool

        self._init_run(exp, run_dir, clock)  # check_spaces checks the game too (check_game)
        self.algo = exp.algo
        self.game_name = game_for(exp)
        self.make_game = lambda: make_game(self.game_name)
        game = self.make_game()
        self.symmetry = getattr(type(game), "symmetry", None) if self.algo.augment else None
        self.num_symmetries = getattr(type(game), "num_symmetries", 1)
        self.store = GameStore(self.algo.window_games)
        self.rng = np.random.default_rng(seeding.derive(self.cfg.seed, seeding.LEARNER_STREAM, 1))
        self.lengths = collections.deque(maxlen=200)
        self.outcomes = collections.deque(maxlen=200)  # result for the first player
        self.games_played = 0
        self._start(resume, lambda: make_selfplay_pool(exp, self.spaces, self.game_name))
        with seeding.seeded_torch(0):
            self.eval_modules = exp.plugin.make_modules(self.algo, self.spaces)

    # ------------------------------------------------------------------ state

    def _restore(self, loaded: tuple) -> dict:
        meta = super()._restore(loaded)
        self.games_played = meta.get("games_played", 0)
        games = Path(self.resumed_from["checkpoint"]) / "games.npz"
        if games.is_file():  # else (checkpoint_games off): training waits for min_positions
            try:
                self.store.load(games, self.spaces.obs_shape, self.spaces.num_actions)
            except (ValueError, OSError, KeyError) as exc:
                raise CheckpointError(f"{exc}; delete {games} to resume with an empty game "
                                      "store") from None
        return meta

    def save_checkpoint(self) -> Path:
        meta = {"algorithm": self.exp.plugin.name, "env": self.cfg.env.id, "game": self.game_name,
                "spaces": self.spaces.to_json(), "env_steps": self.env_steps,
                "wall_s": self.wall_s(), "learner": self.learner.meta(), "evals": self.evals,
                "games_played": self.games_played, "versions": versions()}
        path = checkpoint.save(self.run_dir, self.env_steps, self.learner.state_tensors(), meta,
                               keep=self.cfg.checkpoint.keep)
        if self.algo.checkpoint_games:
            self.store.save(path / "games.npz")
        return path

    # ------------------------------------------------------------------ loop

    def round(self, logger) -> None:
        """Finished self-play games from every actor, then ``updates_per_round`` updates on
        positions sampled from the last games, logs."""
        cfg, algo, learner, pool = self.cfg, self.algo, self.learner, self.pool
        t = self.clock()
        weights = learner.weights() if self.published != learner.version else None
        games = pool.play(weights, learner.version)
        self.published = learner.version
        t_play = self.clock() - t
        self._log_games(games, logger)
        t = self.clock()
        metrics: dict = {}
        if self.store.num_positions >= algo.min_positions:
            progress = min(1.0, self.env_steps / cfg.stop.num_env_steps)
            for _ in range(algo.updates_per_round):
                sample = self.store.sample(algo.batch_size, self.rng, self.symmetry,
                                           self.num_symmetries)
                metrics = learner.update([sample], progress)
            logger.scalars("learner", metrics, self.env_steps)
        sps = self.steps_per_s()
        logger.scalars("time", {"env_steps_per_s": sps, "selfplay_s": t_play,
                                "update_s": self.clock() - t}, self.env_steps)
        logger.progress(self.wall_s(), self.env_steps, cfg.stop.num_env_steps, sps,
                        self.mean_return(), self._progress_extra(metrics))

    def _log_games(self, games, logger) -> None:
        self.store.add(games)
        self.games_played += len(games)
        self.env_steps += sum(g.length for g in games)
        self.lengths.extend(g.length for g in games)
        self.outcomes.extend(1.0 if g.winner == 0 else -1.0 if g.winner == 1 else 0.0
                             for g in games)
        if games:
            res = np.array([g.winner for g in games])
            logger.scalars("rollout", {
                "game_length": np.mean([g.length for g in games]),
                "first_player_win": float((res == 0).mean()),
                "second_player_win": float((res == 1).mean()),
                "draw": float((res == -1).mean())}, self.env_steps)
        lag = np.mean([self.learner.version - g.policy_version for g in games]) if games else 0.0
        logger.scalars("buffer", {"games": len(self.store), "positions": self.store.num_positions},
                       self.env_steps)
        logger.scalars("actors", {**self.pool.health(), "num_actors": self.pool.num_actors,
                                  "policy_lag": lag}, self.env_steps)

    def _progress_extra(self, metrics: dict) -> str:
        parts = [f"games {self.games_played:,}"]
        if self.lengths:
            parts.append(f"length {np.mean(self.lengths):.1f}")
        parts += [f"{k} {metrics[k]:.3g}" for k in ("policy_loss", "value_loss") if k in metrics]
        if self.pool.num_actors:
            h = self.pool.health()
            parts.append(f"actors {h['healthy']}/{self.pool.num_actors}")
        return "  ".join(parts)

    def mean_return(self) -> float | None:
        """Mean self-play result for the first player (+1/0/-1) over recent games."""
        return float(np.mean(self.outcomes)) if self.outcomes else None

    def evaluate(self, logger, on_eval=None) -> float:
        """Play the network with search against each opponent (``eval.episodes`` games each,
        half from each seat; against minimax every opening instead, see ``players.match``); log
        ``eval/<opponent>_{win,draw,loss}``. The evaluation return is the mean score (+1/0/-1)
        against the last, strongest, opponent: with minimax last, 0 means perfect play."""
        from rlcore.plugins.alphazero.networks import NetworkEvaluator
        from rlcore.plugins.alphazero.players import SearchPlayer, make_opponent, match

        cfg, algo = self.cfg, self.algo
        load_numpy_weights(self.eval_modules, self.learner.weights())
        player = SearchPlayer(NetworkEvaluator(self.eval_modules["net"], algo.cache_size),
                              algo.eval_simulations, algo.c_puct, algo.leaves_per_game)
        seed = seeding.derive(cfg.seed, seeding.EVAL_STREAM, len(self.evals))
        results = {}
        for spec in algo.eval_opponents:
            results[spec] = match(self.make_game, player, make_opponent(spec, seed),
                                  cfg.eval.episodes)
            tag = spec.replace(":", "")
            logger.scalars("eval", {f"{tag}_{k}": results[spec][k]
                                    for k in ("win", "draw", "loss")}, self.env_steps)
        last = results[algo.eval_opponents[-1]]
        rec = {"env_steps": self.env_steps, "wall_s": round(self.wall_s(), 3),
               "mean": last["score"], "std": 0.0, "episodes": last["games"],
               "opponents": results}
        self.evals.append(rec)
        logger.scalars("eval", {"return_mean": rec["mean"]}, self.env_steps)
        text = "  ".join(f"{s}: W {r['win']:.2f} D {r['draw']:.2f} L {r['loss']:.2f} "
                         f"({r['games']} games)" for s, r in results.items())
        logger.event(self.wall_s(), self.env_steps, f"eval {text}")
        if on_eval is not None:
            on_eval(rec)
        return rec["mean"]

    def summary(self, stop_reason: str, ckpt: Path) -> dict:
        cfg, gns = self.cfg, self.learner.gns
        last = self.evals[-1] if self.evals else {}
        return {
            "algorithm": self.exp.plugin.name, "env": cfg.env.id, "game": self.game_name,
            "seed": cfg.seed, "env_steps": self.env_steps, "games_played": self.games_played,
            "wall_s": round(self.wall_s(), 3),
            "eval_return_mean": last.get("mean"), "eval_return_std": last.get("std"),
            "eval_episodes": last.get("episodes"), "eval_opponents": last.get("opponents"),
            "grad_noise_scale": gns.value, "minibatch_size": self.algo.batch_size,
            "batch_size": self.algo.batch_size,
            "grad_noise_verdict": gns.verdict(self.algo.batch_size),
            "updates": self.learner.updates, "skipped_updates": self.learner.skipped_updates,
            "stop_reason": stop_reason, "device": str(self.learner.device),
            "learner_node": getattr(self.learner, "node", None),
            "num_actors": cfg.rollout.num_actors, "checkpoint": str(ckpt) if ckpt else None,
            "evals": self.evals, "resumed_from": self.resumed_from, "versions": versions(),
        }


# ---------------------------------------------------------------------- rlcore play


def _load_for_play(path: Path):
    """(experiment, spaces, net) from a run folder (latest checkpoint) or one checkpoint folder."""
    import torch

    from rlcore.config import load_experiment

    path = Path(path)
    if (path / checkpoint.WEIGHTS).is_file() and (path / checkpoint.META).is_file():
        run_dir, ckpt = path.parent.parent, path
    else:
        run_dir, ckpt = path, None
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError([f"{path}: neither a run folder (with config.yaml) nor a checkpoint "
                           "folder of one (RUN_DIR/checkpoints/step_*); give what `rlcore run` "
                           "printed"])
    exp = load_experiment(run_dir / "config.yaml")
    if exp.plugin.data_spec.regime != "game":
        raise IncompatibleEnvError(f"{run_dir}: a run of '{exp.plugin.name}', which does not play "
                                   "two-player games; rlcore play needs a game-regime run "
                                   "(algorithm: alphazero)")
    spaces = check_spaces(exp)
    if ckpt is None:
        _, meta, tensors = checkpoint.load_latest(run_dir, exp.plugin.name, spaces.to_json(),
                                                  torch.device("cpu"))
    else:
        try:
            meta = json.loads((ckpt / checkpoint.META).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise checkpoint.CheckpointError(f"{ckpt}: unreadable checkpoint ({exc})") from None
        checkpoint.check_compatible(meta, exp.plugin.name, spaces.to_json(), ckpt)
        try:
            tensors = torch.load(ckpt / checkpoint.WEIGHTS, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise checkpoint.CheckpointError(f"{ckpt}: unreadable weights ({type(exc).__name__}: "
                                             f"{exc}); pick another checkpoint") from None
    modules = exp.plugin.make_modules(exp.algo, spaces)
    for name, m in modules.items():
        m.load_state_dict(tensors["modules"][name])
        m.eval()
    return exp, modules["net"], meta


def play_interactive(path, human_first: bool = True, simulations: int | None = None,
                     input_fn=input, out=None) -> float:
    """Play a trained network (with search) in the terminal; returns the human's result
    (+1/0/-1). Moves are typed as action numbers; anything else is explained and asked again;
    ``q`` quits (the game counts as lost)."""
    import sys

    from rlcore.envs.games import make_game
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import SearchPlayer

    out = out or sys.stdout
    exp, net, meta = _load_for_play(path)
    game = make_game(game_for(exp))
    sims = simulations or exp.algo.eval_simulations
    bot = SearchPlayer(NetworkEvaluator(net, exp.algo.cache_size), sims, exp.algo.c_puct)
    human = 0 if human_first else 1
    print(f"{game.name}: you are {'X, moving first' if human == 0 else 'O, moving second'}; the "
          f"network ({meta['env_steps']:,} training moves) searches {sims} simulations per move. "
          "Type a move number, or q to quit.", file=out)
    while not game.is_terminal():
        if game.current_player() != human:
            a = bot.act(game)
            print(f"network plays {a}", file=out)
            game.apply(a)
            continue
        print(game.render(), file=out)
        legal = game.legal_actions()
        text = input_fn(f"your move {legal}: ").strip()
        if text.lower() in ("q", "quit", "exit"):
            print("you resigned", file=out)
            return -1.0
        if not text.lstrip("-").isdigit():
            print(f"'{text}' is not a move: type one of {legal}", file=out)
            continue
        if int(text) not in legal:
            print(f"{text} is not a legal move here: type one of {legal}", file=out)
            continue
        game.apply(int(text))
    print(game.render(), file=out)
    result = game.terminal_value(human)
    print({1.0: "you win", 0.0: "draw", -1.0: "the network wins"}[result], file=out)
    return result
