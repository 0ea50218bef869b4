"""``rlcore plot``: learning curves from run folders. The seeds of one setting are drawn as one
line, their mean, with a band (standard error by default); one panel per task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlcore.analysis.runs import EVAL_TAG, Group, find_runs, group_runs, need_extra, read_scalar
from rlcore.errors import ConfigError

BANDS = {"se": "mean ± standard error over seeds", "std": "mean ± standard deviation over seeds",
         "minmax": "mean over seeds, band from min to max"}
X_LABELS = {"steps": "environment steps", "wall": "wall time (s)"}
Y_LABELS = {EVAL_TAG: "evaluation return (mean over episodes)",
            "rollout/episode_return": "training episode return"}


@dataclass
class Curve:
    """What is drawn for one group: the mean over seeds and the band, at x."""

    group: Group
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    note: str = ""


def group_curve(group: Group, metric: str = EVAL_TAG, x_axis: str = "steps",
                band: str = "se") -> Curve:
    """Each seed's curve is put on the x values of all seeds together (linear interpolation)
    over the range every seed covers. A seed that stopped early because its evaluation reached
    ``stop.eval_return`` keeps its last evaluation to the end of the longest seed."""
    series = [read_scalar(run, metric) for run in group.runs]
    xs = [s.step if x_axis == "steps" else s.wall_s for s in series]
    ys = [s.value for s in series]
    end = max(x[-1] for x in xs)
    for i, run in enumerate(group.runs):
        reached = (run.summary or {}).get("stop_reason") == "eval_return"
        if metric == EVAL_TAG and reached and xs[i][-1] < end:
            xs[i], ys[i] = np.append(xs[i], end), np.append(ys[i], ys[i][-1])
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    grid = np.unique(np.concatenate(xs))
    grid = grid[(grid >= lo) & (grid <= hi)]
    if grid.size == 0:
        raise ConfigError([f"{group.task} {group.label}: the seeds' {metric} curves share no "
                           f"range of {X_LABELS[x_axis]}; plot the runs one at a time"])
    values = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys)])
    mean = values.mean(axis=0)
    n = len(values)
    if band == "minmax":
        low, high = values.min(axis=0), values.max(axis=0)
    else:
        spread = values.std(axis=0, ddof=1) if n > 1 else np.zeros_like(mean)
        if band == "se":
            spread = spread / np.sqrt(n)
        low, high = mean - spread, mean + spread
    note = ""
    if hi < end:
        note = (f"; seeds end between {hi:,.0f} and {end:,.0f} {X_LABELS[x_axis]}, the line stops "
                "where the shortest ends")
    return Curve(group, grid, mean, low, high, note)


def describe(curve: Curve, metric: str, x_axis: str) -> str:
    n = len(curve.group.runs)
    return (f"{curve.group.task} {curve.group.label}: {n} seed{'s' * (n > 1)}, {metric} "
            f"{curve.mean[-1]:.4g} (band {curve.low[-1]:.4g} to {curve.high[-1]:.4g}) at "
            f"{curve.x[-1]:,.0f} {X_LABELS[x_axis]}{curve.note}")


def draw(curves: list[Curve], metric: str, x_axis: str, band: str):
    """A matplotlib Figure, one panel per task; no pyplot, so no global backend state."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    tasks = list(dict.fromkeys(c.group.task for c in curves))
    fig = Figure(figsize=(6.4 * len(tasks), 4.4), layout="constrained")
    for ax, task in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks):
        mine = [c for c in curves if c.group.task == task]
        for c in mine:
            n = len(c.group.runs)
            (line,) = ax.plot(c.x, c.mean, label=f"{c.group.label} ({n} seed{'s' * (n > 1)})")
            if n > 1:
                ax.fill_between(c.x, c.low, c.high, color=line.get_color(), alpha=0.2,
                                linewidth=0)
        ax.set_title(f"{task} · {', '.join(dict.fromkeys(c.group.algorithm for c in mine))}")
        ax.set_xlabel(X_LABELS[x_axis])
        ax.set_ylabel(Y_LABELS.get(metric, metric))
        if x_axis == "steps":
            ax.xaxis.set_major_formatter(EngFormatter())
        ax.grid(alpha=0.3)
        ax.legend(title=BANDS[band], fontsize="small", title_fontsize="small")
    return fig


def plot_runs(paths, out: str, metric: str = EVAL_TAG, x_axis: str = "steps",
              band: str = "se") -> tuple[list[Curve], object]:
    """Read the runs, draw their curves into ``out``; returns the curves and the Figure."""
    need_extra("matplotlib", "plot")
    curves = [group_curve(g, metric, x_axis, band) for g in group_runs(find_runs(paths))]
    fig = draw(curves, metric, x_axis, band)
    try:
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:
        raise ConfigError([f"-o {out}: cannot write the figure ({exc}); give a writable path "
                           "ending in .png, .pdf or .svg"]) from None
    return curves, fig
