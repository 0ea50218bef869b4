"""The sweep folder and what it records: the expanded trials (``trials.json``), each trial's run
folder, and the state of each trial read back from its run folder; the checks of every trial
before anything starts; the resources each trial asks Tune for."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlcore.config.expand import Sweep, Trial, value_key
from rlcore.errors import ConfigError, IncompatibleEnvError

PLAN = "trials.json"
FAILURES = "failures.json"  # errors of trials that failed before writing summary.json
FORMAT = 1
FINISHED = ("num_env_steps", "eval_return", "wall_s")  # summary.json stop reasons of a done run


@dataclass
class Plan:
    """What a sweep folder holds: its trials and how they run."""

    sweep_dir: Path
    source: str
    trials: list[Trial]
    cpus_per_trial: int = 1
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def run_dir(self, trial: Trial) -> Path:
        return self.sweep_dir / trial.name

    def to_json(self) -> dict:
        return {"format": FORMAT, "source": self.source, "created": self.created,
                "cpus_per_trial": self.cpus_per_trial,
                "trials": [{"name": t.name, "setting": t.setting, "params": t.params,
                            "data": t.data} for t in self.trials]}

    def write(self) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.sweep_dir / f".{PLAN}.tmp"
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(self.sweep_dir / PLAN)


def new_plan(sweep: Sweep, sweep_dir: str | None, root: str, cpus_per_trial: int,
             search: str | None = None) -> Plan:
    """The plan of a new sweep; rerunning the same sweep into its folder continues it. A
    searched sweep's trials are recorded as they start."""
    if sweep_dir is None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(sweep.source).stem)
        base = Path(root) / f"sweep_{stem}_{time.strftime('%Y%m%d-%H%M%S')}"
        path, i = base, 1
        while path.exists():
            path, i = Path(f"{base}-{i}"), i + 1
    else:
        path = Path(sweep_dir)
    plan = Plan(path, str(Path(sweep.source).absolute()), [] if search else sweep.trials,
                cpus_per_trial)
    if (path / PLAN).is_file() and search:
        raise ConfigError([f"--sweep-dir {path}: holds a sweep already; a search starts in a new "
                           f"folder (rerun that one's failed trials: rlcore sweep --resume {path})"])
    if (path / PLAN).is_file():
        old = load_plan(path)
        if [(t.name, t.data) for t in old.trials] != [(t.name, t.data) for t in plan.trials]:
            raise ConfigError([f"--sweep-dir {path}: holds another sweep (its {PLAN} lists other "
                               f"trials); continue that one with `rlcore sweep --resume {path}`, "
                               "or give a new folder"])
        old.cpus_per_trial = cpus_per_trial
        return old
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError([f"--sweep-dir {path}: exists and is not an empty folder (no {PLAN}: "
                           "not a sweep folder); give a new folder"])
    return plan


def load_plan(sweep_dir: str | Path) -> Plan:
    path = Path(sweep_dir) / PLAN
    fix = "give the folder `rlcore sweep` printed"
    if not path.is_file():
        raise ConfigError([f"{sweep_dir}: not a sweep folder (no {PLAN}); {fix}"])
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this rlcore reads {FORMAT}")
        trials = [Trial(t["name"], t["setting"], t["params"], t["data"]) for t in raw["trials"]]
        return Plan(Path(sweep_dir), raw["source"], trials, int(raw["cpus_per_trial"]),
                    raw["created"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError([f"{path}: not a sweep plan rlcore can read ({exc}); {fix}, or start "
                           "the sweep again in a new folder"]) from None


# ---------------------------------------------------------------------- checks


def check_trials(trials: list[Trial], source: str, marks: dict, env: bool = True) -> list:
    """Validate every trial (and make each distinct env once, unless ``env`` is False); every
    problem at once, each naming the trials it concerns. Returns the experiments."""
    from rlcore.config import load_experiment
    from rlcore.run.checks import check_spaces

    problems: dict[str, list[str]] = {}
    exps, checked = [], {}
    for t in trials:
        try:
            exp = load_experiment(source, data=t.data, marks=marks)
        except ConfigError as exc:
            for p in exc.problems:
                problems.setdefault(p, []).append(t.name)
            continue
        exps.append(exp)
        if env:
            resolved = exp.resolved()
            key = value_key({k: v for k, v in resolved.items() if k != "seed"})
            if key not in checked:
                try:
                    check_spaces(exp)
                    checked[key] = None
                except (IncompatibleEnvError, ConfigError) as exc:
                    checked[key] = f"{exp.where('env', 'id')}: {exc}"
            if checked[key] is not None:
                problems.setdefault(checked[key], []).append(t.name)
    if problems:
        raise ConfigError([f"{p} [{_which(names, len(trials))}]" for p, names in problems.items()])
    return exps


def _which(names: list[str], total: int) -> str:
    if len(names) == total and total > 1:
        return f"all {total} trials"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"trial{'s' * (len(names) > 1)} {shown}"


def trial_bundles(exp, cpus_per_trial: int) -> list[dict]:
    """The placement group of a trial: its run (loop and learner) on ``cpus_per_trial`` CPUs,
    the learner's own resources when it runs in a Ray actor, one bundle per rollout actor."""
    from rlcore.learner.remote import learner_resources

    r = exp.config.rollout
    bundles = [{"CPU": float(cpus_per_trial)}]
    if learner_resources(exp.config):
        bundles.append(learner_resources(exp.config))
    return bundles + [{"CPU": float(r.num_cpus_per_actor)} for _ in range(r.num_actors)]


# ---------------------------------------------------------------------- state


@dataclass
class TrialState:
    trial: Trial
    status: str  # done, failed, unfinished, new
    summary: dict | None
    error: str | None = None


def trial_state(plan: Plan, trial: Trial, failures: dict) -> TrialState:
    """Read from the trial's run folder; ``failures``: errors of trials that failed before
    their run wrote a summary (``failures.json``)."""
    run_dir = plan.run_dir(trial)
    summary = None
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        pass
    if summary is not None and summary.get("stop_reason") in FINISHED:
        return TrialState(trial, "done", summary)
    if summary is not None and summary.get("stop_reason") == "failed":
        return TrialState(trial, "failed", summary, summary.get("error") or "failed")
    if trial.name in failures:
        return TrialState(trial, "failed", summary, failures[trial.name])
    return TrialState(trial, "unfinished" if run_dir.exists() else "new", summary)


def read_failures(plan: Plan) -> dict:
    try:
        return dict(json.loads((plan.sweep_dir / FAILURES).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def write_failures(plan: Plan, ran: list[Trial], errors: dict) -> dict:
    """Record the errors of the trials just run (and forget older ones of those trials)."""
    failures = {k: v for k, v in read_failures(plan).items() if k not in {t.name for t in ran}}
    failures.update(errors)
    (plan.sweep_dir / FAILURES).write_text(json.dumps(failures, indent=1))
    return failures


def prepare_rerun(plan: Plan, trial: Trial) -> bool:
    """Whether the trial resumes from its own checkpoint; a run folder without one is cleared
    (nothing in it can be continued) so the trial starts again."""
    from rlcore.run.checkpoint import complete_checkpoints

    run_dir = plan.run_dir(trial)
    if complete_checkpoints(run_dir):
        return True
    if run_dir.exists():
        shutil.rmtree(run_dir)
    return False
