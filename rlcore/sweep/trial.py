"""One trial of a sweep inside Ray Tune: a normal rlcore run (the path of ``rlcore run``, or of
``rlcore resume`` when its folder has a checkpoint) in ``SWEEP_DIR/<trial name>/``, reporting
each evaluation to Tune. Its console lines go to ``console.log`` in the run folder."""

from __future__ import annotations

from pathlib import Path


class TrialFailed(RuntimeError):
    """A trial's run failed; the message is the run's (its summary.json has the cause too).
    Plain text crosses Ray's process boundary, whatever the original exception's arguments."""


def metrics(rec: dict, done: bool = False) -> dict:
    """What a trial reports to Tune after each evaluation (and once more at the end)."""
    return {"eval/return_mean": rec.get("mean"), "env_steps": rec.get("env_steps"), "done": done}


def train_trial(config: dict) -> None:
    """Tune's function trainable. ``config``: source, data (the trial's experiment), run_dir,
    resume (its folder has a checkpoint), threads (the trial's CPUs, for torch)."""
    try:
        summary = _run(config)
    except BaseException as exc:  # the run's message, as text
        raise TrialFailed(f"{type(exc).__name__}: {exc}") from None
    from ray import tune

    last = summary["evals"][-1] if summary.get("evals") else {}
    tune.report(metrics({"mean": summary["eval_return_mean"], "env_steps": summary["env_steps"],
                         **last}, done=True))


def _run(config: dict) -> dict:
    import yaml
    from ray import tune

    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import make_run
    from rlcore.run.logging import RunLogger

    run_dir, resume = Path(config["run_dir"]), config["resume"]
    exp = load_experiment(config["source"], data=config["data"])
    if not exp.config.learner.torch_threads:  # the trial's CPUs, not the machine's
        exp.config.learner.torch_threads = config["threads"]
    trainer = make_run(exp, run_dir, resume=resume)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (run_dir / "config.yaml").write_text(yaml.safe_dump(exp.resolved(), sort_keys=False))
        console = open(run_dir / "console.log", "a", buffering=1)
    except BaseException:  # trainer.run() has not taken over the rollout pool yet
        trainer.pool.close()
        raise
    with console:
        print(f"rlcore: {exp.plugin.name} on {exp.config.env.id}, trial {run_dir.name}, learner "
              f"on {trainer.learner_location()}", file=console)
        if trainer.resumed_from:
            print(f"resuming from {trainer.resumed_from['checkpoint']} at "
                  f"{trainer.env_steps:,} env steps", file=console)
        logger = RunLogger(run_dir, trainer.env_steps, exp.config.logging.progress_every_s,
                           stream=console)
        try:
            summary = trainer.run(logger, on_eval=lambda rec: tune.report(metrics(rec)))
        except BaseException as exc:
            print(f"failed: {type(exc).__name__}: {exc}", file=console)
            raise
        finally:
            logger.close()
        print(f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f} s "
              f"({summary['stop_reason']})", file=console)
    return summary
