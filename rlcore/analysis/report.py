"""``rlcore report``: final evaluation scores aggregated across seeds and tasks with the statistics
of Agarwal et al. (2021), "Deep RL at the edge of the statistical precipice", as computed by their
library rliable: the interquartile mean (IQM), stratified-bootstrap 95% confidence intervals and
performance profiles. Prints a Markdown table; with ``-o``, draws the IQMs and the profile. With
``--threshold T``, also each run's sustained result: the evaluation from which every later one
stays at or above T ("holds from"), the first one at or above T, and the final one."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rlcore.analysis.runs import (EVAL_TAG, find_runs, final_score, group_runs, has_events,
                                  need_extra, read_scalar)
from rlcore.errors import ConfigError

PROFILE_REPS = 2000  # rliable's default for profiles: 101 thresholds per resample


@dataclass
class Row:
    """One line of the report: a group on one task, or (task "all") across every task."""

    task: str
    group: str
    scores: list[np.ndarray]  # per task, one score per run
    iqm: float
    ci: tuple[float, float]  # 95% CI of the IQM
    mean: float
    std: float  # over runs (ddof=1); nan for one run, and across tasks
    median: float
    extra_cis: dict | None = None  # across tasks: the CIs of the median and the mean


@dataclass
class Report:
    rows: list[Row]  # per task and group
    overall: list[Row]  # across tasks, when scores are normalized
    markdown: str


def bootstrap(scores, func, reps: int, seed: int):
    """rliable's point estimate and stratified-bootstrap 95% CI (percentile) of ``func``:
    ``scores`` is a (runs, tasks) matrix, or a list of per-task arrays when the numbers of runs
    differ. Each call starts from ``seed``, so each line is reproducible on its own."""
    from rliable import library as rly

    # rliable 1.2 draws its resamples from numpy's global generator (np.random.choice) whatever
    # random_state says: seed that one, and give the caller's state back afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        point, ci = rly.get_interval_estimates({"x": scores}, func, reps=reps)
    finally:
        np.random.set_state(state)
    return point["x"], ci["x"]


def iqm_of(scores: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores)])


def overall_of(scores: np.ndarray) -> np.ndarray:
    """IQM of every run, median and mean of the per-task means, from a (runs, tasks) matrix."""
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_median(scores),
                     metrics.aggregate_mean(scores)])


def overall_of_ragged(*per_task: np.ndarray) -> np.ndarray:
    """``overall_of`` when tasks have different numbers of runs (one array per task)."""
    from rliable import metrics

    means = [x.mean() for x in per_task]
    return np.array([metrics.aggregate_iqm(np.concatenate(per_task)), np.median(means),
                     np.mean(means)])


def parse_normalize(items, tasks: list[str]) -> dict[str, tuple[float, float]]:
    """``[TASK:]random=R,max=M`` items into {task: (random, max)}; no TASK means every task."""
    norms = {}
    for item in items:
        m = re.fullmatch(r"(?:(?P<task>.+):)?random=(?P<low>[^,]+),max=(?P<high>[^,]+)", item)
        try:
            task, low, high = m["task"], float(m["low"]), float(m["high"])
        except (TypeError, ValueError):  # no match, or not numbers
            task, low, high = None, 0.0, 0.0
        if low == high:
            raise ConfigError([f"--normalize {item}: expected random=R,max=M (numbers, R != M), "
                               "or TASK:random=R,max=M for one task, e.g. "
                               "--normalize CartPole-v1:random=22,max=500"])
        if task and task not in tasks:
            raise ConfigError([f"--normalize {item}: no run on task '{task}'; the tasks are "
                               f"{', '.join(tasks)}"])
        norms.update({t: (low, high) for t in ([task] if task else tasks)})
    return norms


def holds_from(steps, values, threshold: float) -> float | None:
    """The step of the first evaluation from which it and every later one are >= ``threshold``;
    None ("never") when there is none, i.e. the last evaluation is below it."""
    values = np.asarray(values, dtype=float)
    below = np.flatnonzero(~(values >= threshold))  # a NaN evaluation counts as below
    if len(values) == 0 or (len(below) and below[-1] == len(values) - 1):
        return None
    return float(steps[below[-1] + 1]) if len(below) else float(steps[0])


def first_at(steps, values, threshold: float) -> float | None:
    """The step of the first evaluation >= ``threshold``; None when none is."""
    hits = np.flatnonzero(np.asarray(values, dtype=float) >= threshold)
    return float(steps[hits[0]]) if len(hits) else None


def sustained_lines(groups, threshold: float) -> list[str]:
    """Per run: its number of evaluations, holds from, first >= threshold and final score; per
    group: how many runs hold, and the median of the steps they hold from (a run that never
    holds counts as later than any step)."""
    def show(step):
        return "never" if step is None or np.isinf(step) else f"{step:,.0f}"

    lines = ["", f"Sustained: \"holds from\" is the first evaluation from which every later one "
             f"stays ≥ {threshold:g} (never: the last one is below); \"first\" is the first "
             f"evaluation ≥ {threshold:g}; final as above.", "",
             "| task | group | seed | evaluations | holds from | first | final |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for g in groups:
        held = []
        for run in g.runs:
            steps, values = eval_curve(run)
            final = final_score(run)
            held.append(holds_from(steps, values, threshold))
            lines.append(f"| {g.task} | {g.label} | {run.config.get('seed')} | {len(steps)} | "
                         f"{show(held[-1]) if len(steps) else '–'} | "
                         f"{show(first_at(steps, values, threshold)) if len(steps) else '–'} | "
                         f"{_n(float('nan') if final is None else final)} |")
        median = float(np.median([np.inf if h is None else h for h in held]))
        lines.append(f"| {g.task} | {g.label} | all | | {sum(h is not None for h in held)} of "
                     f"{len(held)} hold; median {show(median)} | | |")
    return lines


def eval_curve(run) -> tuple[np.ndarray, np.ndarray]:
    """The run's evaluations (steps, returns); empty while it has none."""
    if not (has_events(run) or (run.summary or {}).get("evals")):
        return np.zeros(0), np.zeros(0)
    try:
        series = read_scalar(run, EVAL_TAG)
    except ConfigError:  # event files without an evaluation yet
        return np.zeros(0), np.zeros(0)
    return series.step, series.value


def report(paths, out: str | None = None, normalize=(), reps: int = 5000,
           seed: int = 0, threshold: float | None = None) -> Report:
    need_extra("rliable", "report")
    if reps < 1:
        raise ConfigError([f"--reps {reps}: must be at least 1 (Agarwal et al. use 50000)"])
    groups, left_out = [], []
    for g in group_runs(find_runs(paths)):
        scores = {r.path: final_score(r) for r in g.runs}
        left_out += [str(p) for p, s in scores.items() if s is None]
        if any(s is not None for s in scores.values()):
            groups.append((g, np.array([s for s in scores.values() if s is not None])))
    if not groups:
        raise ConfigError([f"{', '.join(map(str, paths))}: no run has a final evaluation "
                           "(summary.json or an eval/return_mean event); wait until the runs "
                           "have evaluated"])
    tasks = list(dict.fromkeys(g.task for g, _ in groups))
    norms = parse_normalize(normalize, tasks)
    if out and len(tasks) > 1 and not all(t in norms for t in tasks):
        raise ConfigError([f"-o {out}: the figure aggregates scores across {len(tasks)} tasks "
                           f"({', '.join(tasks)}); give --normalize TASK:random=R,max=M for "
                           "each, or report one task at a time"])
    rows = []
    for g, scores in groups:
        if g.task in norms:
            low, high = norms[g.task]
            scores = (scores - low) / (high - low)
        (iqm,), ci = bootstrap(scores[:, None], iqm_of, reps, seed)
        rows.append(Row(g.task, g.label, [scores], iqm, (ci[0, 0], ci[1, 0]), scores.mean(),
                        scores.std(ddof=1) if len(scores) > 1 else float("nan"),
                        float(np.median(scores))))
    overall = across_tasks(rows, tasks, reps, seed) if len(tasks) > 1 and \
        all(t in norms for t in tasks) else []
    if out:
        unit = "normalized score" if norms else f"evaluation return on {tasks[0]}"
        draw_to(out, overall or rows, unit, reps, seed)
    text = markdown(rows, overall, tasks, norms, left_out, reps, seed)
    if threshold is not None:
        text += "\n".join(["", *sustained_lines([g for g, _ in groups], threshold)])
    return Report(rows, overall, text)


def across_tasks(rows: list[Row], tasks: list[str], reps: int, seed: int) -> list[Row]:
    """For each group label, its normalized scores on every task it ran, stratified by task."""
    overall = []
    for label in dict.fromkeys(r.group for r in rows):
        per_task = [r.scores[0] for t in tasks for r in rows if (r.task, r.group) == (t, label)]
        same = len({len(s) for s in per_task}) == 1
        data = np.stack(per_task, axis=1) if same else per_task
        point, ci = bootstrap(data, overall_of if same else overall_of_ragged, reps, seed)
        overall.append(Row("all", label, per_task, point[0], (ci[0, 0], ci[1, 0]), point[2],
                           float("nan"), point[1],
                           {"median": tuple(ci[:, 1]), "mean": tuple(ci[:, 2])}))
    return overall


def _n(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.4g}"


def markdown(rows, overall, tasks, norms, left_out, reps, seed) -> str:
    unit = ("normalized per task as (score − random) / (max − random): " + "; ".join(
        f"{t} random={_n(lo)} max={_n(hi)}" for t, (lo, hi) in norms.items())
        if norms else "raw")
    lines = [f"Scores: each run's final evaluation return (summary.json `eval_return_mean`, else "
             f"the last `eval/return_mean` event), {unit}.",
             "IQM: interquartile mean (the mean of the middle 50% of runs); 95% CI: stratified "
             f"bootstrap, {reps} resamples, seed {seed} (rliable).", "",
             "| task | group | seeds | mean ± std | median | IQM [95% CI] |",
             "|---|---|--:|--:|--:|--:|"]
    lines += [f"| {r.task} | {r.group} | {len(r.scores[0])} | {_n(r.mean)} ± {_n(r.std)} | "
              f"{_n(r.median)} | {_n(r.iqm)} [{_n(r.ci[0])}, {_n(r.ci[1])}] |" for r in rows]
    if overall:
        lines += ["", f"Across the {len(tasks)} tasks (runs resampled within each task; median "
                  "and mean of the per-task means):", "",
                  "| group | tasks | runs | IQM [95% CI] | median [95% CI] | mean [95% CI] |",
                  "|---|--:|--:|--:|--:|--:|"]
        lines += [f"| {r.group} | {len(r.scores)} | {sum(map(len, r.scores))} | {_n(r.iqm)} "
                  f"[{_n(r.ci[0])}, {_n(r.ci[1])}] | {_n(r.median)} [{_n(r.extra_cis['median'][0])}"
                  f", {_n(r.extra_cis['median'][1])}] | {_n(r.mean)} [{_n(r.extra_cis['mean'][0])}"
                  f", {_n(r.extra_cis['mean'][1])}] |" for r in overall]
    elif len(tasks) > 1:
        lines += ["", "No aggregate across tasks: raw scores of different tasks do not add up; "
                  "give --normalize TASK:random=R,max=M for each task."]
    if left_out:
        lines += ["", f"Left out, no final evaluation yet: {', '.join(left_out)}"]
    return "\n".join(lines)


def draw_to(out: str, rows: list[Row], unit: str, reps: int, seed: int) -> None:
    """IQMs with their CIs, and the performance profile (fraction of runs scoring above each
    threshold, with bootstrap bands), of the rows: one task's, or the aggregate's."""
    from matplotlib.figure import Figure
    from rliable import library as rly, plot_utils

    colors = dict(zip([r.group for r in rows], [f"C{i % 10}" for i in range(len(rows))]))
    every = np.concatenate([np.concatenate(r.scores) for r in rows])
    taus = np.linspace(every.min(), every.max(), 101)
    profiles, bands = {}, {}
    for r in rows:
        same = len({len(s) for s in r.scores}) == 1
        data = np.stack(r.scores, axis=1) if same else r.scores
        profiles[r.group], bands[r.group] = bootstrap(
            data, (lambda s: rly.score_distributions(s, taus)) if same else
            (lambda *xs: rly.score_distributions(np.concatenate(xs), taus)),
            min(reps, PROFILE_REPS), seed)
    fig = Figure(figsize=(11, max(3.5, 1.5 + 0.45 * len(rows))), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, r in enumerate(rows):
        left.barh(i, r.ci[1] - r.ci[0], left=r.ci[0], height=0.6, color=colors[r.group],
                  alpha=0.75)
        left.vlines(r.iqm, i - 0.3, i + 0.3, color="k")
    left.set_yticks(range(len(rows)), [r.group for r in rows])
    left.invert_yaxis()  # the table's order, top down
    left.set_title("IQM with 95% CI")
    left.set_xlabel(unit)
    plot_utils.plot_performance_profiles(
        profiles, taus, bands, ax=right, colors=colors, xlabel=f"{unit} τ",
        ylabel="fraction of runs with score > τ", labelsize="medium", ticklabelsize="medium",
        legend=True, legendsize="small")
    right.set_title("Performance profile (95% CI bands)")
    try:
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:
        raise ConfigError([f"-o {out}: cannot write the figure ({exc}); give a writable path "
                           "ending in .png, .pdf or .svg"]) from None
