"""``rlcore plot`` and ``rlcore report``: their arguments, examples and handlers (``rlcore.cli``
adds them to its parser)."""

from __future__ import annotations

EXAMPLES = {
    "plot": ["rlcore plot runs/ppo_s0 runs/ppo_s1 runs/ppo_s2 -o ppo.png",
             "rlcore plot runs/lr_sweep --metric rollout/episode_return --x wall"],
    "report": ["rlcore report runs/lr_sweep", "rlcore report runs/ppo_sweep --threshold 475",
               "rlcore report runs/ -o report.png "
               "--normalize CartPole-v1:random=22,max=500 --normalize Acrobot-v1:random=-500,max=0"],
}


def cmd_plot(args) -> int:
    from rlcore.analysis.plot import describe, plot_runs

    curves, _ = plot_runs(args.run_dirs, args.output, args.metric, args.x, args.band)
    print("\n".join(describe(c, args.metric, args.x) for c in curves) + f"\nwrote {args.output}")
    return 0


def cmd_report(args) -> int:
    from rlcore.analysis.report import report

    text = report(args.run_dirs, args.output, args.normalize, args.reps,
                  threshold=args.threshold).markdown
    print(text + (f"\n\nwrote {args.output}" if args.output else ""))
    return 0


def add_analysis_commands(command) -> None:
    """``command(name, help)`` makes a subparser with the examples and ``--debug``."""
    runs = dict(nargs="+", metavar="RUN_DIR", help="a run folder, or a folder of run folders")
    s = command("plot", "learning curves of runs; seeds of one setting as one line with a band")
    s.add_argument("run_dirs", **runs)
    s.add_argument("-o", "--output", default="curves.png", help="figure file (default: %(default)s)")
    s.add_argument("--metric", default="eval/return_mean", help="TensorBoard tag to plot")
    s.add_argument("--x", choices=["steps", "wall"], default="steps", help="env steps or wall time")
    s.add_argument("--band", choices=["se", "std", "minmax"], default="se",
                   help="over seeds: standard error (default), standard deviation, or min to max")
    s.set_defaults(fn=cmd_plot)
    s = command("report", "final scores across seeds and tasks: IQM, bootstrap CIs (rliable)")
    s.add_argument("run_dirs", **runs)
    s.add_argument("-o", "--output", help="also draw IQMs and the performance profile here")
    s.add_argument("--normalize", action="append", default=[], metavar="[TASK:]random=R,max=M",
                   help="score as (score - R) / (M - R); needed to aggregate several tasks")
    s.add_argument("--reps", type=int, default=5000, help="bootstrap resamples (seed 0)")
    s.add_argument("--threshold", type=float, metavar="T",
                   help="also each run's sustained result: the step from which every later "
                        "evaluation stays >= T, the first >= T, the final")
    s.set_defaults(fn=cmd_report)
