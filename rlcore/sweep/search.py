"""``rlcore sweep --search optuna``: a search algorithm of Ray Tune suggests the settings.

The searcher draws each setting from the choice/uniform/loguniform values (a grid has nothing
to search); each setting runs once per seed through Tune's ``Repeater``, which hands the
searcher the mean over seeds of the final ``eval/return_mean`` (maximized). ``--num-samples``
is the number of settings. Drawn numbers are rounded to 4 significant digits, as in a random
sweep, and trials are named the same way (``sample=K`` the K-th suggestion). Each trial is
recorded in ``trials.json`` as it starts, so ``--resume`` reruns the failed ones as they were.
"""

from __future__ import annotations

import importlib
import importlib.util

from rlcore.config.expand import Sweep, _labels, corner_trials, trial_of
from rlcore.errors import ConfigError
from rlcore.sweep.plan import Plan, trial_bundles

SEARCHERS = {"optuna": ("optuna", "ray.tune.search.optuna", "OptunaSearch")}
METRIC, MODE = "eval/return_mean", "max"


def check_search(name: str, sweep: Sweep) -> None:
    """Refuse, before anything starts, a searcher that is unknown or not installed, and sweep
    values it cannot search."""
    if name not in SEARCHERS:
        raise ConfigError([f"--search {name}: not a search algorithm rlcore knows; "
                           f"choose {', '.join(SEARCHERS)} (grid and random need no --search)"])
    package = SEARCHERS[name][0]
    if importlib.util.find_spec(package) is None:
        raise ConfigError([f"--search {name} needs {package}, which is not installed: "
                           f"pip install {package}"])
    problems = [f"{a.where}: {a.key}: --search {name} suggests values from choice, uniform and "
                "loguniform; write this grid as {choice: [...]} or sweep without --search"
                for a in sweep.axes if a.kind == "grid_search"]
    if not sweep.axes:
        problems.append(f"{sweep.source}: --search {name} has nothing to search: give a key "
                        "choice, uniform or loguniform values")
    if problems:
        raise ConfigError(problems)


class Searched:
    """The trials of a searched sweep: Tune's suggestion (a config) -> rlcore's trial."""

    def __init__(self, sweep: Sweep, plan: Plan):
        self.sweep, self.plan = sweep, plan
        self.labels = [_labels(sweep.axes)[a.path] for a in sweep.axes]  # Optuna's names

    def param_space(self) -> dict:
        from ray import tune

        space = {}
        for label, a in zip(self.labels, self.sweep.axes):
            space[label] = (tune.choice(list(range(len(a.values)))) if a.kind == "choice" else
                            tune.uniform(*a.values) if a.kind == "uniform" else
                            tune.loguniform(*a.values))
        return space

    def values(self, config: dict) -> dict:
        out = {}
        for label, a in zip(self.labels, self.sweep.axes):
            x = config[label]
            out[a.path] = a.values[int(x)] if a.kind == "choice" else float(f"{x:.4g}")
        return out

    def trial(self, tune_trial):
        """The rlcore trial of a Tune trial: its values, its seed (the repeat's index) and its
        sample (the suggestion's number, from Tune's trial counter)."""
        seeds = self.sweep.seeds
        number = int(str(tune_trial.experiment_tag).split("_")[0]) - 1
        seed = seeds[tune_trial.config.get("__trial_index__", 0)]
        return trial_of(self.sweep.base, self.sweep.axes, self.values(tune_trial.config), seed,
                        number // len(seeds))

    def name(self, tune_trial) -> str:
        return self.trial(tune_trial).name

    def record(self, tune_trial) -> None:
        trial = self.trial(tune_trial)
        if trial.name not in {t.name for t in self.plan.trials}:
            self.plan.trials.append(trial)
            self.plan.write()


def run_search(plan: Plan, sweep: Sweep, name: str, corners: list, max_concurrent) -> dict:
    """Run ``sweep.num_samples`` suggested settings x seeds; returns the errors by trial name.
    ``corners``: the experiments of ``expand.corner_trials``, whose resources bound the
    trials'."""
    from rlcore.config import load_experiment
    from rlcore.sweep.tuner import fit, start_ray, trial_config

    searched = Searched(sweep, plan)
    start_ray(corners[0].config.ray, {t.name: trial_bundles(e, plan.cpus_per_trial)
                                      for t, e in zip(corner_trials(sweep), corners)})
    from ray import tune
    from ray.tune.search import Repeater

    package, module, cls = SEARCHERS[name]
    if package == "optuna":  # one line per suggestion on stderr otherwise
        importlib.import_module("optuna").logging.set_verbosity(30)  # WARNING
    searcher = getattr(importlib.import_module(module), cls)(metric=METRIC, mode=MODE, seed=0)

    def resources(config: dict):
        data = trial_of(sweep.base, sweep.axes, searched.values(config), 0).data
        exp = load_experiment(plan.source, data=data)
        return tune.PlacementGroupFactory(trial_bundles(exp, plan.cpus_per_trial))

    trainable = tune.with_resources(
        tune.with_parameters(_trainable, searched=searched,
                             base=trial_config(plan, sweep.trials[0], False)), resources)
    total = sweep.num_samples * len(sweep.seeds)
    tune_config = tune.TuneConfig(
        search_alg=Repeater(searcher, repeat=len(sweep.seeds), set_index=True),
        num_samples=total, max_concurrent_trials=max_concurrent, reuse_actors=True,
        trial_name_creator=searched.name, trial_dirname_creator=searched.name)
    return fit(plan, trainable, searched.param_space(), tune_config, total, searched.record)


def _trainable(config: dict, searched: Searched, base: dict) -> None:
    """In the trial's process: the trial's experiment from Tune's config, its folder by the
    name the driver gave the trial."""
    from ray import tune

    from rlcore.sweep.trial import train_trial

    sweep = searched.sweep
    seed = sweep.seeds[config.get("__trial_index__", 0)]
    data = trial_of(sweep.base, sweep.axes, searched.values(config), seed).data
    run_dir = searched.plan.sweep_dir.absolute() / tune.get_context().get_trial_name()
    train_trial({**base, "data": data, "resume": False, "run_dir": str(run_dir)})
