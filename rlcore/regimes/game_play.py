"""``rlcore play``: a person plays a trained game-regime network in the terminal; the
network's side is the plugin's ``GameHooks.player``."""

from __future__ import annotations

import sys
from pathlib import Path

from rlcore.errors import CheckpointError, ConfigError, IncompatibleEnvError
from rlcore.regimes.game import game_for
from rlcore.run import checkpoint
from rlcore.run.checks import check_spaces
from rlcore.run.fit import EVAL_PARTS, RunFit

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
    fit = RunFit(exp, spaces, parts=EVAL_PARTS)  # meta.json, the modules (rlcore.run.fit)
    if ckpt is None:
        _, meta, tensors = checkpoint.load_latest(run_dir, exp.plugin.name, spaces.to_json(),
                                                  torch.device("cpu"), fit)
        for reason in meta["skipped"]:
            print(f"rlcore: WARNING: skipped checkpoint {reason}", file=sys.stderr, flush=True)
    else:  # the checkpoint asked for, or none: no fallback
        try:
            meta, tensors = checkpoint.load_one(ckpt, exp.plugin.name, spaces.to_json(),
                                                torch.device("cpu"), fit)
        except (checkpoint.OtherExperimentError, checkpoint.NewerFormatError):
            raise
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {ckpt} does not fit: {exc}; pick another "
                                  f"checkpoint, or give the run folder {run_dir} to use the "
                                  "newest one that fits") from None
    modules = exp.plugin.make_modules(exp.algo, spaces)
    for name, m in modules.items():
        m.load_state_dict(tensors["modules"][name])
        m.eval()
    return exp, modules, meta


def play_interactive(path, human_first: bool = True, simulations: int | None = None,
                     input_fn=input, out=None) -> float:
    """Play a trained network (with search) in the terminal; returns the human's result
    (+1/0/-1). Moves are typed as action numbers; anything else is explained and asked again;
    ``q`` quits (the game counts as lost)."""
    import sys

    out = out or sys.stdout
    exp, modules, meta = _load_for_play(path)
    _, make_game = game_for(exp)
    game = make_game()
    bot = exp.plugin.game.player(modules, exp.algo, simulations)
    human = 0 if human_first else 1
    print(f"{game.name}: you are {'X, moving first' if human == 0 else 'O, moving second'}; the "
          f"network ({meta['env_steps']:,} training moves) {bot.describe()}. "
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
