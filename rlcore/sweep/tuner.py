"""The trials of a sweep on Ray Tune: Ray started or joined through ``init_ray`` (a local Ray
stays on 127.0.0.1), each trial placed by the resources its experiment asks for (a placement
group: its run, the learner's resources, one bundle per rollout actor), Tune's own records in
``SWEEP_DIR/tune/``, a line per evaluation and per trial's end on the console."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from rlcore.errors import ClusterError
from rlcore.sweep.plan import Plan, prepare_rerun, trial_bundles
from rlcore.sweep.trial import train_trial


def run_trials(plan: Plan, todo: list, exps: dict, max_concurrent: int | None) -> dict[str, str]:
    """Run ``todo`` (trials; ``exps``: their experiments by name) to their end; returns the
    error of each trial that failed, by name."""
    bundles = {t.name: trial_bundles(exps[t.name], plan.cpus_per_trial) for t in todo}
    start_ray(exps[todo[0].name].config.ray, bundles)  # one Ray for all: ray.* is not swept
    from ray import tune

    configs = {t.name: trial_config(plan, t, prepare_rerun(plan, t)) for t in todo}
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, configs=configs),
        lambda config: tune.PlacementGroupFactory(bundles[config["trial"]]))
    tune_config = tune.TuneConfig(trial_name_creator=_name, trial_dirname_creator=_name,
                                  max_concurrent_trials=max_concurrent, reuse_actors=True)
    return fit(plan, trainable, {"trial": tune.grid_search([t.name for t in todo])},
               tune_config, len(todo))


def trial_config(plan: Plan, trial, resume: bool) -> dict:
    """What ``train_trial`` takes."""
    return {"source": plan.source, "data": trial.data, "threads": plan.cpus_per_trial,
            "run_dir": str(plan.run_dir(trial).absolute()), "resume": resume}


def start_ray(ray_cfg, bundles: dict) -> None:
    """Start or join Ray (``init_ray``), check that the largest trial fits, prepare Tune."""
    from rlcore.actors.ray_setup import init_ray

    init_ray(ray_cfg, 0)
    _check_room(bundles, ray_cfg)
    # Set before Tune starts (Tune passes them on to its trial processes): trials keep the
    # driver's working folder, so relative env paths resolve as with `rlcore run`; no Tune
    # loggers, whose event files would show up as extra runs in `tensorboard --logdir SWEEP_DIR`.
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # with verbose=0: Tune prints nothing of its own


def fit(plan: Plan, trainable, param_space: dict, tune_config, total: int,
        record=None) -> dict[str, str]:
    """Tune's run of the trials into ``SWEEP_DIR/tune/<time>/``, no retries, the console;
    ``record(tune_trial)`` is called as each trial starts. Returns the errors by trial name.

    reuse_actors (in ``tune_config``): a trial process that has imported torch and the plugin
    takes the next trial that asks for the same resources (seconds saved per trial)."""
    from ray import tune

    from rlcore.sweep.console import Console, error_text

    errors: dict[str, str] = {}
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config,
        run_config=tune.RunConfig(
            name=time.strftime("%Y%m%d-%H%M%S"),
            storage_path=str((plan.sweep_dir / "tune").absolute()), verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[Console(errors, total, plan.sweep_dir, record)]))
    # Tune logs each failed trial's traceback; the console above names it in a line, and its
    # run folder (console.log, summary.json) and the table keep the message
    tune_log = logging.getLogger("ray.tune")
    level, _ = tune_log.level, tune_log.setLevel(logging.CRITICAL)
    try:
        grid = tuner.fit()
    finally:
        tune_log.setLevel(level)
    for result in grid:
        name = Path(result.path).name if result.path else None
        if result.error is not None and name is not None and name not in errors:
            errors[name] = error_text(result.error)
    return errors


def _trainable(config: dict, configs: dict) -> None:
    train_trial(configs[config["trial"]])


def _name(trial) -> str:
    return trial.config["trial"]


def _check_room(bundles: dict, ray_cfg) -> None:
    """Refuse a sweep whose largest trial cannot fit in the Ray cluster (Tune would wait for it
    for ever); on a cluster, nodes that are still joining are waited for."""
    import ray

    name = max(bundles, key=lambda n: sum(b.get("CPU", 0) for b in bundles[n]))  # by CPUs
    need = sum(b.get("CPU", 0) for b in bundles[name])
    deadline = time.monotonic() + (ray_cfg.connect_timeout_s if ray_cfg.address else 0.0)
    while ray.cluster_resources().get("CPU", 0) < need and time.monotonic() < deadline:
        time.sleep(1.0)
    have = ray.cluster_resources().get("CPU", 0)
    if need > have:
        raise ClusterError(f"trial {name} asks for {need:g} CPUs (--cpus-per-trial for its run, "
                           "plus rollout.num_actors x rollout.num_cpus_per_actor) but the Ray "
                           f"cluster has {have:g}; lower them, raise ray.num_cpus, or add nodes")
