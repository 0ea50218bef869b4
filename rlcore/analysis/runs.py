"""Run folders on disk: find them, read their config, summary and TensorBoard scalars, and group
runs that differ only by seed.

A run folder is any folder holding a ``config.yaml`` (what ``rlcore run`` writes first); a folder
without one is searched for run folders below it (a sweep's folder, ``runs/``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rlcore.config.schema import flatten
from rlcore.errors import ConfigError

EVAL_TAG = "eval/return_mean"
# Keys that do not change what a run learns never split runs into groups.
IGNORED_PREFIXES = ("seed", "logging.", "ray.", "checkpoint.")


@dataclass
class Run:
    path: Path
    config: dict  # flattened: {"algo.lr": 0.001, "env.id": "CartPole-v1", ...}
    summary: dict | None  # summary.json, written when the run ends; None while it runs
    _events: object = field(default=None, repr=False, compare=False)  # read once, when needed

    @property
    def task(self) -> str:
        return str(self.config.get("env.id", "?"))

    @property
    def algorithm(self) -> str:
        return str(self.config.get("algorithm", "?"))


@dataclass
class Series:
    """One scalar tag of one run, sorted by step (one value per step)."""

    step: np.ndarray
    wall_s: np.ndarray  # seconds since the run's first event
    value: np.ndarray


@dataclass
class Group:
    """Runs on one task with one algorithm and the same config but for the seed."""

    task: str
    algorithm: str
    differs: dict  # the keys whose values differ between this task and algorithm's groups
    runs: list[Run]

    @property
    def label(self) -> str:
        return " ".join([self.algorithm] + [f"{k}={_show(v)}" for k, v in self.differs.items()])


def need_extra(module: str, command: str) -> None:
    """Refuse to start a command whose optional package is missing, naming the extra."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError([f"rlcore {command} needs {module}, which is not installed; install "
                           "the plots extra: pip install 'rlcore[plots]'"])


def find_runs(paths) -> list[Run]:
    """Every run folder given or below a folder given, each once, in the order given."""
    runs, seen = [], set()
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            what = "does not exist" if not path.exists() else "is a file, not a folder"
            raise ConfigError([f"{given}: {what}; give a run folder (the one `rlcore run` "
                               "printed) or a folder of runs"])
        found = sorted(_run_folders(path))
        if not found:
            raise ConfigError([f"{given}: not a run folder (no config.yaml) and no run folder "
                               "below it; give the folder `rlcore run` printed, or a folder "
                               "holding run folders (a sweep's, runs/)"])
        for run_dir in found:
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                runs.append(load_run(run_dir))
    return runs


def _run_folders(root: Path):
    for folder, subfolders, files in os.walk(root):
        if "config.yaml" in files:
            subfolders.clear()  # a run's own folders (checkpoints/) hold no runs
            yield Path(folder)


def load_run(run_dir: Path) -> Run:
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except yaml.YAMLError as exc:
        raise ConfigError([f"{run_dir / 'config.yaml'}: not valid YAML ({exc}); restore the "
                           "file `rlcore run` wrote, or leave this run out"]) from None
    if not isinstance(config, dict):
        raise ConfigError([f"{run_dir / 'config.yaml'}: not an experiment (a mapping of keys); "
                           "restore the file `rlcore run` wrote, or leave this run out"])
    summary = None
    if (run_dir / "summary.json").is_file():
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except ValueError as exc:
            raise ConfigError([f"{run_dir / 'summary.json'}: not valid JSON ({exc}); delete it "
                               "to use the run's event files instead"]) from None
    return Run(run_dir, flatten(config), summary)


def has_events(run: Run) -> bool:
    return any(run.path.glob("events.out.tfevents.*"))


def scalar_tags(run: Run) -> list[str]:
    return sorted(_accumulator(run).Tags()["scalars"]) if has_events(run) else []


def read_scalar(run: Run, tag: str) -> Series:
    """A tag's values from the run's event files; for the evaluation return, the evaluations
    in summary.json when the run has no event files."""
    evals = (run.summary or {}).get("evals") or []
    if not has_events(run):
        if tag == EVAL_TAG and evals:
            return _series([e["env_steps"] for e in evals], [e["wall_s"] for e in evals],
                           [e["mean"] for e in evals])
        raise ConfigError([f"{run.path}: no TensorBoard event files (events.out.tfevents.*) and "
                           "no evaluations in summary.json; wait until the run has logged, or "
                           "leave it out"])
    acc = _accumulator(run)
    tags = sorted(acc.Tags()["scalars"])
    if tag not in tags:
        raise ConfigError([f"{run.path}: no scalar '{tag}' in its event files; choose one with "
                           f"--metric: {', '.join(tags) or '(none logged yet)'}"])
    events = acc.Scalars(tag)
    start = acc.FirstEventTimestamp()
    return _series([e.step for e in events], [e.wall_time - start for e in events],
                   [e.value for e in events])


def _accumulator(run: Run):
    if run._events is None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        run._events = EventAccumulator(str(run.path), size_guidance={"scalars": 0})  # keep all
        run._events.Reload()
    return run._events


def _series(step, wall_s, value) -> Series:
    step, wall_s, value = (np.asarray(a, dtype=float) for a in (step, wall_s, value))
    # sorted by step; where a step repeats, its last value
    _, last = np.unique(step[::-1], return_index=True)
    keep = len(step) - 1 - last
    return Series(step[keep], wall_s[keep], value[keep])


def final_score(run: Run) -> float | None:
    """The run's final evaluation return: summary.json's ``eval_return_mean``, else the last
    ``eval/return_mean`` event; None when the run has neither."""
    score = (run.summary or {}).get("eval_return_mean")
    if score is None and has_events(run) and EVAL_TAG in scalar_tags(run):
        score = read_scalar(run, EVAL_TAG).value[-1]
    return None if score is None else float(score)


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs on one task with one algorithm whose configs agree on every key but the seed (and
    IGNORED_PREFIXES) form a group. Only the keys every run of that task and algorithm has are
    compared: a key that a newer rlcore added (absent from older runs' config.yaml) does not
    split runs that differ in nothing else. A group's label names the keys that differ
    between the groups of its task and algorithm."""
    families: dict[tuple, list[Run]] = {}
    for run in runs:
        families.setdefault((run.task, run.algorithm), []).append(run)
    groups = []
    for (task, algorithm), family in families.items():
        common = set.intersection(*(set(run.config) for run in family))
        keys = sorted(k for k in common if not k.startswith(IGNORED_PREFIXES))
        settings: dict[tuple, list[Run]] = {}
        for run in family:
            setting = tuple(json.dumps(run.config[k], sort_keys=True, default=str) for k in keys)
            settings.setdefault(setting, []).append(run)
        configs = [members[0].config for members in settings.values()]
        differ = [k for k in keys if len({json.dumps(c[k], sort_keys=True, default=str)
                                         for c in configs}) > 1]
        groups += [Group(task, algorithm, {k: c[k] for k in differ}, members)
                   for c, members in zip(configs, settings.values())]
    return sorted(groups, key=lambda g: (g.task, g.algorithm, [_order(v) for v in g.differs.values()]))


def _order(value) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return (0, value, "")
    return (1, 0, str(value))


def _show(value) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, (list, dict)) \
        else str(value)
