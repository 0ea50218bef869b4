"""The ``rlcore`` command: list, schema, validate, run, resume, eval, play, plot, report, sweep."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

from rlcore.analysis.commands import EXAMPLES as ANALYSIS_EXAMPLES, add_analysis_commands
from rlcore.errors import ConfigError, IncompatibleEnvError, RLCoreError
from rlcore.sweep.commands import EXAMPLES as SWEEP_EXAMPLES, add_sweep_commands, validate_sweep


def _print_err(exc: Exception) -> None:
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        print(f"error: {len(exc.problems)} problems in the experiment:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)


def cmd_list(args) -> int:
    from rlcore import registry

    broken = 0
    for title, group in (("algorithms", registry.ALGORITHM_GROUP), ("environments", registry.ENV_GROUP)):
        print(f"{title}:")
        for item in registry.list_plugins(group):
            if item.error:
                broken += 1
                print(f"  {item.name:<12} BROKEN ({item.target}): {item.error}")
            else:
                extra = ""
                if group == registry.ENV_GROUP:
                    plugin = registry._load_target(item.target)
                    extra = f" [{', '.join(plugin.ids[:4])}{', ...' if len(plugin.ids) > 4 else ''}]"
                print(f"  {item.name:<12} {item.description}{extra}")
    print("  (and every Gymnasium id, e.g. CartPole-v1)")
    if broken:
        print(f"{broken} plugin{'s' if broken > 1 else ''} failed to load (BROKEN above): fix or "
              "reinstall the package that provides each, or uninstall it")
    return 0


def cmd_schema(args) -> int:
    from rlcore import config, registry

    names = [args.algorithm] if args.algorithm else registry.algorithm_names()
    plugins = {}
    for name in names:
        try:
            plugins[name] = registry.get_algorithm(name)
        except RLCoreError as exc:
            if args.algorithm:
                raise
            plugins[name] = exc
    if args.json:
        from rlcore.config.jsonschema import experiment_json_schema

        usable = {n: p for n, p in plugins.items() if not isinstance(p, Exception)}
        print(json.dumps(experiment_json_schema(usable), indent=1))
        return 0
    if args.algorithm and not isinstance(plugins[args.algorithm], Exception):
        own = plugins[args.algorithm].learner_defaults  # this plugin's learner defaults
        print("\n".join(config.schema_lines(defaults={f"learner.{k}": v for k, v in own.items()})))
    else:
        print("\n".join(config.schema_lines()))
    for name, plugin in plugins.items():
        if isinstance(plugin, Exception):
            print(f"algo:  # when algorithm: {name} -- not shown: {plugin}")
            continue
        print(f"algo:  # when algorithm: {name}")
        print("\n".join(config.schema_lines(plugin.config_cls, "algo.")))
    return 0


def cmd_validate(args) -> int:
    from rlcore.config import load_experiment

    if (code := validate_sweep(args)) is not None:  # a sweep: each of its trials
        return code
    exp = load_experiment(args.file, args.set)
    if not args.no_env:
        from rlcore.run import warm_start
        from rlcore.run.checks import check_spaces

        with _env_errors_located(exp):
            spaces = check_spaces(exp)
        warm_start.read(exp, spaces)  # learner.init_from: the checkpoint a run would start from
    regime = exp.plugin.data_spec.regime
    batch = (f"batch {exp.config.batch_size}" if regime == "trajectory" else
             f"replay batch {exp.algo.batch_size}" if regime == "transition" else
             f"{exp.algo.games_per_round} games per round, batch {exp.algo.batch_size} positions")
    print(f"{args.file}: ok ({exp.plugin.name} on {exp.config.env.id}, "
          f"{exp.config.stop.num_env_steps:,} env steps, {batch})")
    return 0


@contextlib.contextmanager
def _env_errors_located(exp):
    """Prefix env/algorithm mismatches with where ``env.id`` was given (file:line)."""
    try:
        yield
    except IncompatibleEnvError as exc:
        raise IncompatibleEnvError(f"{exp.where('env', 'id')}: {exc}") from exc


def new_run_dir(exp, requested: str | None) -> Path:
    if requested:
        path = Path(requested)
        if path.exists() and not path.is_dir():
            raise ConfigError([f"--run-dir {path}: exists and is not a folder; give a new folder"])
        if path.exists() and any(path.iterdir()):
            raise ConfigError([f"--run-dir {path}: exists and is not empty; rlcore never overwrites "
                               f"a run. Choose a new folder, or continue it: rlcore resume {path}"])
        _check_creatable(path, "--run-dir")
        return path
    cfg = exp.config
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.env.id)
    base = Path(cfg.logging.root) / f"{exp.plugin.name}_{env}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    _check_creatable(path, f"logging.root ({exp.where('logging', 'root')})")
    return path


def _check_creatable(path: Path, knob: str) -> None:
    """Refuse early (before the env and learner are built) a run folder that cannot be made."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        why = "is not a folder" if not parent.is_dir() else "is not writable"
        raise ConfigError([f"cannot create the run folder {path}: {parent} {why}; "
                           f"choose another with {knob}"])


def _open_run(trainer, exp, run_dir: Path, resume: bool):
    """Create the run folder, record the config, announce the run; returns its logger."""
    from rlcore.run.logging import RunLogger, record_config

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError([f"{run_dir}: cannot create the run folder ({exc.strerror or exc}); "
                           "choose another with --run-dir or logging.root"]) from None
    if not resume:
        record_config(run_dir, exp)
    n = exp.config.rollout.num_actors
    print(f"rlcore: {exp.plugin.name} on {exp.config.env.id}, rollouts "
          f"{f'{n} Ray actors' if n else 'inline'}, learner on {trainer.learner_location()} "
          f"(learner.device={exp.config.learner.device}), run dir {run_dir}", flush=True)
    if trainer.resumed_from:
        _warn_skipped(trainer.resumed_from["skipped"], trainer.resumed_from["set_aside"])
        print(f"resuming from {trainer.resumed_from['checkpoint']} at {trainer.env_steps:,} "
              f"env steps", flush=True)
    return RunLogger(run_dir, trainer.env_steps, exp.config.logging.progress_every_s)


def _warn_skipped(skipped: list[str], set_aside: list[str] = (), using=None) -> None:
    """Name on stderr each checkpoint a command skipped for an older one, and why."""
    for reason in skipped:
        print(f"rlcore: WARNING: skipped checkpoint {reason}", file=sys.stderr, flush=True)
    if skipped and using is not None:
        print(f"rlcore: using the older checkpoint {using}", file=sys.stderr, flush=True)
    if set_aside:
        print(f"rlcore: the skipped checkpoints were moved aside ({', '.join(set_aside)}): "
              "never loaded again, not counted toward checkpoint.keep; inspect or delete them",
              file=sys.stderr, flush=True)


def _train(exp, run_dir: Path, resume: bool) -> int:
    from rlcore.run.lifecycle import make_run

    with _env_errors_located(exp):
        trainer = make_run(exp, run_dir, resume=resume)
    try:
        logger = _open_run(trainer, exp, run_dir, resume)
    except BaseException:  # trainer.run() has not taken over the rollout pool yet
        pool = getattr(trainer, "pool", None)
        if pool is not None:
            pool.close()
        raise
    try:
        summary = trainer.run(logger)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written; continue with: rlcore resume {run_dir}",
              file=sys.stderr)
        return 130
    finally:
        logger.close()
    print(f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f} s "
          f"({summary['stop_reason']})")
    if summary["eval_return_mean"] is not None:
        print(f"evaluation return: {summary['eval_return_mean']:.4g} ± "
              f"{summary['eval_return_std']:.3g} over {summary['eval_episodes']} episodes")
    print(f"gradient noise scale: {summary['grad_noise_verdict']}")
    print(f"inspect: tensorboard --logdir {run_dir}")
    return 0


def cmd_run(args) -> int:
    from rlcore.config import load_experiment

    exp = load_experiment(args.file, args.set)
    return _train(exp, new_run_dir(exp, args.run_dir), resume=False)


def _load_run(run_dir: str, overrides=()) :
    from rlcore.config import load_experiment

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError([f"{run_dir}: not a run directory (no config.yaml); give the folder "
                           "`rlcore run` printed"])
    return load_experiment(path, overrides)


def cmd_resume(args) -> int:
    from rlcore.run.checks import check_writable

    exp = _load_run(args.run_dir, args.set)
    check_writable(Path(args.run_dir))
    return _train(exp, Path(args.run_dir), resume=True)


def cmd_eval(args) -> int:
    from rlcore.run.offline import evaluate_run

    exp = _load_run(args.run_dir)
    result = evaluate_run(exp, Path(args.run_dir), args.episodes, args.seed, args.stochastic,
                          args.checkpoint, Path(args.video) if args.video else None)
    _warn_skipped(result["skipped"], using=result["checkpoint"])
    print(json.dumps(result))
    return 0


def cmd_play(args) -> int:
    from rlcore.regimes.game_play import play_interactive

    if args.simulations is not None and args.simulations < 1:
        raise ConfigError([f"--simulations {args.simulations}: must be at least 1"])
    try:
        play_interactive(args.path, human_first=not args.second, simulations=args.simulations)
    except (EOFError, KeyboardInterrupt):
        print("\nbye", file=sys.stderr)
    return 0


def cmd_check_plugin(args) -> int:
    from rlcore import registry
    from rlcore.testing.contract import check_plugin

    plugin = registry.get_algorithm(args.algorithm)  # an unknown name: a RegistryError, exit 2
    if args.action_kind and args.action_kind not in plugin.action_spaces:
        raise ConfigError([f"--action-kind {args.action_kind}: {plugin.name} takes "
                           f"{' or '.join(plugin.action_spaces)} actions"])
    kinds = [args.action_kind] if args.action_kind else (
        ["discrete"] if plugin.data_spec.regime == "game" else list(plugin.action_spaces))
    failed = 0
    for kind in kinds:
        for check in check_plugin(args.algorithm, kind, ray=args.ray):
            failed += not check.ok
            detail = f": {check.detail}" if check.detail else ""
            print(f"{'ok  ' if check.ok else 'FAIL'} {plugin.name} ({kind}) {check.name}{detail}")
    print(f"{plugin.name}: {'all checks passed' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0


EXAMPLES = {
    "list": ["rlcore list"],
    "schema": ["rlcore schema ppo", "rlcore schema --json > rlcore-schema.json"],
    "validate": ["rlcore validate experiments/ppo_cartpole.yaml",
                 "rlcore validate experiments/dqn_cartpole.yaml --set algo.double_q=true"],
    "run": ["rlcore run experiments/ppo_cartpole.yaml",
            "rlcore run experiments/ppo_cartpole.yaml --set seed=1 --run-dir runs/ppo_s1"],
    "resume": ["rlcore resume runs/ppo_s1",
               "rlcore resume runs/ppo_s1 --set stop.num_env_steps=200000"],
    "eval": ["rlcore eval runs/ppo_s1", "rlcore eval runs/ppo_s1 --episodes 100 --seed 7",
             "rlcore eval runs/ppo_s1 --checkpoint best --episodes 3 --video videos/ppo_s1"],
    "check-plugin": ["rlcore check-plugin ppo", "rlcore check-plugin my_plugin --ray"],
    "play": ["rlcore run experiments/alphazero_tictactoe.yaml --run-dir runs/ttt",
             "rlcore play runs/ttt --second --simulations 200"],
    **ANALYSIS_EXAMPLES,
    **SWEEP_EXAMPLES,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlcore", description="Reinforcement-learning experiments.",
                                epilog="examples:\n" + "\n".join(
                                    f"  {e[0]}" for e in EXAMPLES.values()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str):
        s = sub.add_parser(name, help=help, description=help,
                           epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name]),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        # --debug after the command too; absent there, the one before it (or False) holds
        s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show Python tracebacks")
        return s

    command("list", "installed algorithms and environments").set_defaults(fn=cmd_list)
    s = command("schema", "every experiment key with type, default, bounds")
    s.add_argument("algorithm", nargs="?")
    s.add_argument("--json", action="store_true",
                   help="print a JSON Schema for editors (YAML language server) instead")
    s.set_defaults(fn=cmd_schema)
    sets = dict(action="append", default=[], metavar="KEY.PATH=VALUE", help="override a key")
    s = command("validate", "check an experiment file; starts nothing")
    s.add_argument("file")
    s.add_argument("--set", **sets)
    s.add_argument("--no-env", action="store_true",
                   help="check only the file, do not make the env to check its spaces")
    s.set_defaults(fn=cmd_validate)
    s = command("run", "run an experiment")
    s.add_argument("file")
    s.add_argument("--set", **sets)
    s.add_argument("--run-dir", help="where to write the run (must not exist or be empty)")
    s.set_defaults(fn=cmd_run)
    s = command("resume", "continue a run from its latest checkpoint that fits")
    s.add_argument("run_dir")
    s.add_argument("--set", **sets)
    s.set_defaults(fn=cmd_resume)
    s = command("eval", "evaluate a run's checkpoint (the latest that fits, the best, or a "
                        "step); prints one JSON object")
    s.add_argument("run_dir")
    s.add_argument("--episodes", type=int, default=10)
    s.add_argument("--seed", type=int, default=12345)
    s.add_argument("--stochastic", action="store_true", help="sample actions instead of greedy")
    s.add_argument("--checkpoint", default="latest", metavar="latest|best|STEP",
                   help="which checkpoint (default: the latest that fits)")
    s.add_argument("--video", metavar="DIR", help="record the episodes as MP4 files in DIR (new "
                   "or empty); needs the video extra")
    s.set_defaults(fn=cmd_eval)
    s = command("check-plugin", "run the plugin contract checks on an algorithm")
    s.add_argument("algorithm")
    s.add_argument("--action-kind", choices=["discrete", "box"],
                   help="check only this action kind (default: every kind the plugin declares)")
    s.add_argument("--ray", action="store_true",
                   help="also check that one Ray actor gives the inline worker's data (starts a "
                        "local Ray)")
    s.set_defaults(fn=cmd_check_plugin)
    s = command("play", "play a trained game network (alphazero) in the terminal")
    s.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT")
    s.add_argument("--second", action="store_true", help="let the network move first")
    s.add_argument("--simulations", type=int, default=None,
                   help="search simulations per network move (default: algo.eval_simulations)")
    s.set_defaults(fn=cmd_play)
    add_analysis_commands(command)
    add_sweep_commands(command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except RLCoreError as exc:
        if args.debug:
            traceback.print_exc()
        _print_err(exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
