"""A sweep's results: one row per setting (its seeds collapsed) with the seeds that finished,
the mean ± std and the IQM (rliable, through ``rlcore.analysis.report``) of their final
evaluation returns and the wall time per trial; the trials that failed with their errors and
the ones not finished; and the learning curves (``rlcore.analysis.plot``)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from rlcore.errors import ConfigError
from rlcore.sweep.plan import Plan, TrialState

IQM_REPS = 2000  # bootstrap resamples of the IQM's interval (rliable)


@dataclass
class Row:
    setting: str
    trials: int
    scores: np.ndarray  # final eval returns of the finished trials
    wall_s: float  # mean over the finished trials
    iqm: float = float("nan")
    ci: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def mean(self) -> float:
        return float(self.scores.mean()) if len(self.scores) else float("nan")

    @property
    def std(self) -> float:
        return float(self.scores.std(ddof=1)) if len(self.scores) > 1 else float("nan")


def rows_of(states: list[TrialState]) -> list[Row]:
    from rlcore.analysis.report import bootstrap, iqm_of

    settings: dict[str, list[TrialState]] = {}
    for s in states:
        settings.setdefault(s.trial.setting, []).append(s)
    have_rliable = importlib.util.find_spec("rliable") is not None
    rows = []
    for setting, members in settings.items():
        done = [s.summary for s in members
                if s.status == "done" and s.summary.get("eval_return_mean") is not None]
        scores = np.array([d["eval_return_mean"] for d in done], dtype=float)
        row = Row(setting, len(members), scores,
                  float(np.mean([d["wall_s"] for d in done])) if done else float("nan"))
        if len(scores) and have_rliable:
            (row.iqm,), ci = bootstrap(scores[:, None], iqm_of, IQM_REPS, 0)
            row.ci = (float(ci[0, 0]), float(ci[1, 0]))
        rows.append(row)
    return rows


def _n(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.4g}"


def markdown(plan: Plan, states: list[TrialState], wall_s: float) -> str:
    rows = rows_of(states)
    failed = [s for s in states if s.status == "failed"]
    unfinished = [s for s in states if s.status in ("unfinished", "new")]
    done = sum(s.status == "done" for s in states)
    lines = [f"# Sweep {plan.sweep_dir}", "",
             f"{len(states)} trials of `{plan.source}`: {done} finished, {len(failed)} failed, "
             f"{len(unfinished)} not finished; {wall_s:.0f} s this time.", "",
             "Scores: each trial's final evaluation return (summary.json `eval_return_mean`); "
             "IQM: interquartile mean over seeds, 95% CI by stratified bootstrap "
             f"({IQM_REPS} resamples, seed 0, rliable).", "",
             "| config | seeds | mean ± std | IQM [95% CI] | wall s per trial |",
             "|---|--:|--:|--:|--:|"]
    lines += [f"| {r.setting or '(the file as it is)'} | {len(r.scores)}/{r.trials} | "
              f"{_n(r.mean)} ± {_n(r.std)} | {_n(r.iqm)} [{_n(r.ci[0])}, {_n(r.ci[1])}] | "
              f"{'–' if np.isnan(r.wall_s) else f'{r.wall_s:.1f}'} |" for r in rows]
    if importlib.util.find_spec("rliable") is None:
        lines += ["", "IQM: rliable is not installed (pip install 'rlcore[plots]')."]
    if failed:
        lines += ["", "Failed trials (each kept its run folder and last checkpoint):", ""]
        lines += [f"- `{s.trial.name}`: {(s.error or 'failed').splitlines()[0]}" for s in failed]
    if unfinished:
        lines += ["", f"Not finished: {', '.join(f'`{s.trial.name}`' for s in unfinished)}"]
    if failed or unfinished:
        lines += ["", f"Rerun only these (each from its last checkpoint when it has one): "
                  f"`rlcore sweep --resume {plan.sweep_dir}`"]
    lines += ["", f"Curves: `rlcore plot {plan.sweep_dir}`; statistics: `rlcore report "
              f"{plan.sweep_dir}`; TensorBoard: `tensorboard --logdir {plan.sweep_dir}`"]
    return "\n".join(lines) + "\n"


def draw_curves(plan: Plan, states: list[TrialState]) -> str:
    """``SWEEP_DIR/curves.png`` of the finished trials; what happened, in a line."""
    if importlib.util.find_spec("matplotlib") is None:
        return "curves: matplotlib is not installed (pip install 'rlcore[plots]')"
    from rlcore.analysis.plot import plot_runs

    done = [str(plan.run_dir(s.trial)) for s in states if s.status == "done"]
    if not done:
        return "curves: no trial finished"
    out = plan.sweep_dir / "curves.png"
    try:
        plot_runs(done, str(out))
    except ConfigError as exc:
        return f"curves: not drawn ({exc})"
    return f"curves: {out}"
