"""``rlcore sweep``: its arguments, examples and handler (``rlcore.cli`` adds them to its
parser), and ``rlcore validate`` on a sweep file."""

from __future__ import annotations

import time
from pathlib import Path

from rlcore.errors import INTERRUPTED, RUN_FAILED, ConfigError

EXAMPLES = {
    "sweep": ["rlcore sweep experiments/sweeps/ppo_cartpole.yaml",
              "rlcore sweep experiments/ppo_cartpole.yaml --seeds 0-4 "
              "--set learner.lr='grid(1e-4,3e-4)' --set rollout.num_actors=0",
              "rlcore sweep experiments/sweeps/ppo_cartpole.yaml --set algo.ent_coef="
              "'loguniform(1e-4,1e-2)' --num-samples 4 --sweep-dir runs/ent",
              "rlcore sweep --resume runs/ent",
              "rlcore sweep experiments/ppo_cartpole.yaml --set learner.lr='loguniform(1e-4,3e-3)'"
              " --seeds 0-2 --search optuna --num-samples 10"],
}


def add_sweep_commands(command) -> None:
    """``command(name, help)`` makes a subparser with the examples and ``--debug``."""
    s = command("sweep", "run every trial of a sweep (grid_search/choice/uniform values, seeds) "
                         "on Ray Tune; a table of the results at the end")
    s.add_argument("file", nargs="?", help="experiment file with sweep values or seeds:")
    s.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a key; grid(a,b), choice(a,b), uniform(lo,hi) and "
                        "loguniform(lo,hi) sweep it")
    s.add_argument("--seeds", help="seeds of every setting, e.g. 0-4, 0,1,2 or 0-2,7 "
                                   "(replaces the file's seeds:)")
    s.add_argument("--num-samples", type=int, help="settings drawn from the choice/uniform/"
                                                   "loguniform values (default 1)")
    s.add_argument("--sweep-dir", help="the sweep folder (default: logging.root/"
                                       "sweep_FILE_TIME); the same sweep again continues it")
    s.add_argument("--resume", metavar="SWEEP_DIR",
                   help="rerun the failed and unfinished trials of a sweep folder")
    s.add_argument("--cpus-per-trial", type=int, default=1,
                   help="CPUs of each trial's run and learner, besides its rollout actors "
                        "(default %(default)s)")
    s.add_argument("--search", metavar="NAME", help="let a search algorithm of Ray Tune "
                   "suggest the settings from the choice/uniform/loguniform values (optuna); "
                   "--num-samples settings, each run with every seed")
    s.add_argument("--max-concurrent", type=int,
                   help="at most N trials at once (default: as many as the cluster holds)")
    s.set_defaults(fn=cmd_sweep)


def validate_sweep(args) -> int | None:
    """``rlcore validate`` on a sweep: every trial checked, all problems at once, each with the
    trials it concerns; None when the file and overrides hold no sweep values."""
    from rlcore.config.expand import read_sweep
    from rlcore.sweep.plan import check_trials

    if not _has_sweep_values(args.file, args.set):
        return None
    sweep = read_sweep(args.file, args.set)
    exps = check_trials(sweep.trials, sweep.source, sweep.marks, env=not args.no_env)
    print(f"{args.file}: ok ({_count(sweep)} of {exps[0].plugin.name} on "
          f"{exps[0].config.env.id}); run them with: rlcore sweep {args.file}")
    return 0


def _has_sweep_values(path: str, overrides) -> bool:
    from rlcore.config.expand import _CALL, is_sweep
    from rlcore.config.yamlio import _parse, read_file

    if any(_CALL.match(item.partition("=")[2]) for item in overrides):
        return True
    try:
        data = _parse(read_file(path, path), path)[0]
    except ConfigError:
        return False  # load_experiment reports it
    return is_sweep(data)


def _count(sweep) -> str:
    settings = len({t.setting for t in sweep.trials})
    seeds = len(sweep.seeds)
    return (f"{len(sweep.trials)} trial{'s' * (len(sweep.trials) > 1)}: {settings} setting"
            f"{'s' * (settings > 1)} x {seeds} seed{'s' * (seeds > 1)}")


def _plan(args):
    """The sweep's plan and its trials' experiments, every trial checked; nothing started."""
    from rlcore.config.expand import read_sweep
    from rlcore.sweep.plan import check_trials, load_plan, new_plan

    if args.cpus_per_trial < 1 or (args.max_concurrent is not None and args.max_concurrent < 1):
        raise ConfigError(["--cpus-per-trial and --max-concurrent take a number >= 1"])
    if args.resume:
        if args.file or args.set or args.seeds or args.num_samples or args.sweep_dir or \
                args.search:
            raise ConfigError([f"--resume {args.resume}: reruns that sweep as it was planned; "
                               "give either --resume SWEEP_DIR or a FILE with its options"])
        plan = load_plan(args.resume)
        plan.cpus_per_trial = args.cpus_per_trial
        exps = check_trials(plan.trials, plan.source, {}, env=False)
        return plan, exps, f"{len(plan.trials)} trials", None
    if not args.file:
        raise ConfigError(["rlcore sweep: give an experiment FILE, or --resume SWEEP_DIR"])
    sweep = read_sweep(args.file, args.set, args.seeds, args.num_samples)
    if args.search:  # the trials are suggested as it runs: check each value at its bounds
        from rlcore.config.expand import corner_trials
        from rlcore.sweep.search import check_search

        check_search(args.search, sweep)
        exps = check_trials(corner_trials(sweep), sweep.source, sweep.marks)
        count = (f"{sweep.num_samples} setting{'s' * (sweep.num_samples > 1)} suggested by "
                 f"{args.search} x {len(sweep.seeds)} seed{'s' * (len(sweep.seeds) > 1)}")
    else:
        exps, count = check_trials(sweep.trials, sweep.source, sweep.marks), _count(sweep)
    plan = new_plan(sweep, args.sweep_dir, exps[0].config.logging.root, args.cpus_per_trial,
                    args.search)
    return plan, exps, count, sweep


def cmd_sweep(args) -> int:
    from rlcore.sweep.plan import read_failures, trial_state, write_failures
    from rlcore.sweep.summary import draw_curves, markdown

    plan, exps, count, sweep = _plan(args)
    failures = read_failures(plan)
    todo = [t for t in plan.trials if trial_state(plan, t, failures).status != "done"]
    plan.write()
    total = sweep.num_samples * len(sweep.seeds) if args.search else len(todo)
    print(f"rlcore: sweep of {count} from {plan.source} on Ray Tune, sweep dir {plan.sweep_dir}; "
          f"{total} to run", flush=True)
    t0, interrupted, errors = time.monotonic(), False, {}
    try:
        if args.search:
            from rlcore.sweep.search import run_search

            errors = run_search(plan, sweep, args.search, exps, args.max_concurrent)
            todo = list(plan.trials)  # as recorded when they started
        elif todo:
            from rlcore.sweep.tuner import run_trials

            by_name = dict(zip([t.name for t in plan.trials], exps))
            errors = run_trials(plan, todo, by_name, args.max_concurrent)
    except KeyboardInterrupt:
        interrupted = True
    failures = write_failures(plan, todo, errors)
    states = [trial_state(plan, t, failures) for t in plan.trials]
    text = markdown(plan, states, time.monotonic() - t0)
    (plan.sweep_dir / "summary.md").write_text(text)
    print(f"\n{text}\n{draw_curves(plan, states)}\nwrote {Path(plan.sweep_dir) / 'summary.md'}",
          flush=True)
    # Tune stops on Ctrl-C by itself and returns: trials it ran that neither finished nor
    # failed were stopped
    ran = {t.name for t in todo}
    if interrupted or any(s.status in ("new", "unfinished") for s in states if s.trial.name in ran):
        return INTERRUPTED
    return RUN_FAILED if any(s.status != "done" for s in states) else 0
