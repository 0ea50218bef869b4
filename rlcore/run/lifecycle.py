"""The run lifecycle every data regime shares.

A ``Run`` owns the stop criteria, evaluations, checkpoint cadence, Ctrl-C, failures (a
checkpoint and the cause in ``summary.json``), the run summary and every TensorBoard write. It
holds one *regime* component (``rlcore/regimes/``) that supplies the round (collect -> buffer ->
learner), its buffer, its checks and the state it adds to checkpoints and the summary; nothing
subclasses the run.

    run = Run(exp, run_dir)          # checks the env, starts the learner and the actor pool
    summary = run.run(logger)        # rounds until a stop criterion; evaluations, checkpoints
"""

from __future__ import annotations

import collections
import errno
import json
import sys
import time
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.actors.pool import make_pool
from rlcore.actors.watchdog import Watchdog
from rlcore.errors import RUN_FAILED, CheckpointError, RLCoreError, TrainingError
from rlcore.learner.core import load_numpy_weights, pick_device
from rlcore.learner.remote import build_learner, is_remote
from rlcore.run.background import Background
from rlcore.regimes import regime_of
from rlcore.run import checkpoint, chosen, warm_start
from rlcore.run.checks import check_spaces, learner_threads, plugin_info, versions
from rlcore.run.fit import RunFit
from rlcore.run.logging import RETURN_WINDOW, actor_scalars, rollout_scalars

# OSErrors of the run folder's storage: the run stops cleanly with a checkpoint (BAD_INPUTS 24).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO}


class Run:
    def __init__(self, exp, run_dir: Path, resume: bool = False, clock=time.monotonic):
        import torch

        self.exp, self.cfg, self.run_dir = exp, exp.config, Path(run_dir)
        self.clock, self.t0 = clock, clock()
        torch.set_num_threads(learner_threads(self.cfg))
        self.spaces = check_spaces(exp)
        # A learner in a Ray actor picks its device on its own node; the driver reads
        # checkpoints on the CPU and hands them over.
        self.device = (torch.device("cpu") if is_remote(self.cfg)
                       else pick_device(self.cfg.learner.device))
        self.env_steps, self.wall_offset, self.evals = 0, 0.0, []
        self.best_eval = chosen.best_eval_return(run_dir) if resume else -np.inf  # to beat
        self.returns: collections.deque = collections.deque(maxlen=RETURN_WINDOW)
        self.resumed_from, self.published = None, None
        self.eval_s = 0.0  # wall time spent in evaluations (benchmarks report time without it)
        self.watchdog = Watchdog(self.cfg.rollout.sample_timeout_s, on_stuck=self._stuck)
        self.regime = regime_of(exp)(self)
        self._start(resume)
        with seeding.seeded_torch(0):  # a CPU copy; its weights are loaded before each eval
            self.eval_modules = exp.plugin.make_modules(exp.algo, self.spaces)

    def _start(self, resume: bool) -> None:
        """Set ``self.learner`` and ``self.pool``, in the order that starts nothing before it
        must: a resumed run checks its checkpoint before any actor starts; a learner in a Ray
        actor comes after Ray, which the pool starts in the main thread (Ray's daemons die with
        the thread that started them); a learner in the driver is built in a thread while Ray
        and the actors start (seconds)."""
        exp, one_step = self.exp, self.regime.one_step

        def start_pool():
            inline_start = self.cfg.rollout.inline_start and not is_remote(self.cfg)
            return make_pool(self.regime.worker_spec(), self.cfg, self.watchdog,
                             on_head_lost=lambda m: self._stuck(m, "ClusterError", save=False),
                             inline_start=inline_start)

        if resume:
            # the newest checkpoint that fits (every check before any state is touched); the
            # ones skipped on the way are set aside once it is restored
            loaded = checkpoint.load_latest(self.run_dir, exp.plugin.name,
                                            self.spaces.to_json(), self.device,
                                            RunFit(exp, self.spaces, regime=self.regime))
            self.learner = build_learner(exp, self.spaces, self.device, one_step)
            self._restore(loaded)
            self.pool = start_pool()
            return
        init = warm_start.read(exp, self.spaces)  # learner.init_from, checked before any start
        builder = None if is_remote(self.cfg) else Background(
            build_learner, exp, self.spaces, self.device, one_step)
        self.pool = start_pool()
        try:
            self.learner = (builder.result() if builder is not None
                            else build_learner(exp, self.spaces, self.device, one_step))
            warm_start.apply(self.learner, exp, init)
        except BaseException:
            self.pool.close()
            raise

    # ------------------------------------------------------------------ state

    def _restore(self, loaded: tuple) -> None:
        """Load a checkpoint that passed ``RunFit``, then set aside the newer ones skipped for
        it (``bad-step_N``: not loaded again, not counted toward ``checkpoint.keep``)."""
        path, meta, tensors = loaded
        self.learner.load_state_tensors(tensors)
        self.learner.load_meta(meta["learner"])
        self.env_steps, self.wall_offset = meta["env_steps"], float(meta["wall_s"])
        self.evals = meta.get("evals", [])
        self.regime.restore(Path(path), meta)
        moved = checkpoint.set_aside(meta["skipped_paths"])
        self.resumed_from = {"checkpoint": str(path), "skipped": meta["skipped"],
                             "set_aside": [str(p) for p in moved]}

    def _checkpoint_meta(self) -> dict:
        return {"algorithm": self.exp.plugin.name, "env": self.cfg.env.id,
                "spaces": self.spaces.to_json(), "env_steps": self.env_steps,
                "wall_s": self.wall_s(), "learner": self.learner.meta(), "evals": self.evals,
                "versions": versions(), "plugin": plugin_info(self.exp), **self.regime.meta()}

    def save_checkpoint(self, best: float | None = None) -> Path:
        """The checkpoint of this step, or ``checkpoints/best`` (``best``: its mean return)."""
        try:
            if best is not None:
                return chosen.save_best(self.run_dir, best, self.learner.state_tensors(),
                                        self._checkpoint_meta())
            path = checkpoint.save(self.run_dir, self.env_steps, self.learner.state_tensors(),
                                   self._checkpoint_meta(), keep=self.cfg.checkpoint.keep)
            self.regime.save(path)
            return path
        except OSError as exc:  # disk full, read-only, quota: the previous checkpoint is intact
            previous = checkpoint.complete_checkpoints(self.run_dir)
            raise CheckpointError(
                f"cannot write the {'best ' if best is not None else ''}checkpoint of step "
                f"{self.env_steps} under {self.run_dir / 'checkpoints'} ({exc.strerror or exc}); "
                f"the previous checkpoint {previous[-1] if previous else '(none)'} is intact. "
                f"Free space or fix the folder's permissions, then: rlcore resume {self.run_dir}"
            ) from None

    def learner_location(self) -> str:
        """The learner's device, and its Ray node when it runs in an actor."""
        node = getattr(self.learner, "node", None)
        return f"{self.learner.device}{f' (a Ray actor on node {node[:12]})' if node else ''}"

    def wall_s(self) -> float:
        return self.wall_offset + self.clock() - self.t0

    def steps_per_s(self) -> float:
        """Env steps per second since ``run`` started (resumed runs: since the resume)."""
        return (self.env_steps - self.steps_at_start) / max(self.clock() - self.t_run, 1e-9)

    def mean_return(self) -> float | None:
        """For the progress line: the mean of the last 100 episode returns, or the regime's
        own figure (the game regime: the first player's mean result)."""
        own = getattr(self.regime, "mean_return", None)
        if own is not None:
            return own()
        return float(np.mean(self.returns)) if self.returns else None

    def return_label(self) -> str:
        """How the progress line names ``mean_return``."""
        return getattr(self.regime, "return_label", f"return({RETURN_WINDOW})")

    def episode_scalars(self, returns, lengths) -> dict:
        """The ``rollout`` section for the episodes that ended since the last log."""
        return rollout_scalars(returns, lengths, self.returns)

    def progress(self) -> float:
        return min(1.0, self.env_steps / self.cfg.stop.num_env_steps)

    def add_steps(self, num_steps: int, episode_returns) -> None:
        """What a regime calls for the data it took in: env steps and finished episodes."""
        self.env_steps += num_steps
        self.returns.extend(np.asarray(episode_returns, np.float64).tolist())

    def publish(self, every: int = 1) -> None:
        """Hand the actors the learner's weights every ``every`` updates (and always first)."""
        version = self.learner.version
        if self.published is None or version - self.published >= every:
            self.pool.publish(self.learner.weights(for_actors=True), version)
            self.published = version

    # ------------------------------------------------------------------ loop

    def run(self, logger, on_eval=None) -> dict:
        """Rounds until a stop criterion, with evaluations, checkpoints, Ctrl-C (a final
        checkpoint), failures (a checkpoint and the cause in summary.json) and the summary."""
        cfg = self.cfg
        next_eval = self._next_multiple(cfg.eval.every_env_steps)
        next_ckpt = self._next_multiple(cfg.checkpoint.every_env_steps)
        stop_reason, failure = "num_env_steps", None
        self.t_run, self.steps_at_start, self.published = self.clock(), self.env_steps, None
        try:
            logger.config(self.exp.resolved(), self.env_steps)
            while self.env_steps < cfg.stop.num_env_steps:
                self._round(logger)
                if next_eval and self.env_steps >= next_eval:
                    next_eval = self._next_multiple(cfg.eval.every_env_steps)
                    score = self.evaluate(logger, on_eval)
                    if cfg.stop.eval_return is not None and score >= cfg.stop.eval_return:
                        stop_reason = "eval_return"
                        break
                if next_ckpt and self.env_steps >= next_ckpt:
                    next_ckpt = self._next_multiple(cfg.checkpoint.every_env_steps)
                    self.save_checkpoint()
                if cfg.stop.wall_s is not None and self.wall_s() >= cfg.stop.wall_s:
                    stop_reason = "wall_s"
                    break
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        except (RLCoreError, OSError) as exc:  # stop with a checkpoint and the cause recorded
            if isinstance(exc, OSError) and exc.errno not in STORAGE_ERRNOS:
                raise
            stop_reason, failure = "failed", exc
        finally:
            self.pool.close()
        try:
            if failure is None:
                failure = self._finish(stop_reason, logger, on_eval)
            if failure is not None:
                self._stop_on_failure(failure)
        finally:
            self.watchdog.close()
            self.learner.close()
        if stop_reason == "interrupted":
            raise KeyboardInterrupt
        return self.final_summary

    def _finish(self, stop_reason: str, logger, on_eval) -> BaseException | None:
        """The final evaluation (unless interrupted or just done), checkpoint and summary; an
        error here (a hung evaluation env, a full disk) is returned as the run's failure."""
        try:
            evaluated_now = bool(self.evals) and self.evals[-1]["env_steps"] == self.env_steps
            if stop_reason != "interrupted" and not evaluated_now:
                self.evaluate(logger, on_eval)
            path = self.save_checkpoint()
            self.final_summary = self.summary(stop_reason, path)
            (self.run_dir / "summary.json").write_text(json.dumps(self.final_summary, indent=1))
            # TensorBoard keeps a run's first hparams record: an interrupted run writes it
            # when it completes after `rlcore resume`
            if stop_reason != "interrupted":
                logger.hparams(self.exp.resolved(), "eval/return_mean", self.env_steps)
        except RLCoreError as exc:
            return exc
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            return exc
        return None

    def _round(self, logger) -> None:
        """The regime's round, then its scalars (with the actors' health) and the progress."""
        scalars, extra = self.regime.round()
        step = self.env_steps
        if "actors" in scalars:
            scalars["actors"] = actor_scalars(self.pool.health(), self.pool.num_actors,
                                              scalars["actors"])
        if "time" in scalars:
            scalars["time"] = {"env_steps_per_s": self.steps_per_s(), **scalars["time"]}
        for section, values in scalars.items():
            logger.scalars(section, values, step)
        if extra is not None:
            logger.progress(self.wall_s(), step, self.cfg.stop.num_env_steps, self.steps_per_s(),
                            self.mean_return(), self._progress_extra(extra), self.return_label())

    def _progress_extra(self, extra: str) -> str:
        parts = [extra] if extra else []
        if self.learner.gns.value is not None and self.regime.name == "trajectory":
            parts.append(f"B_simple {self.learner.gns.value:,.0f}")
        h = self.pool.health()
        if self.pool.num_actors:
            parts.append(f"actors {h['healthy']}/{self.pool.num_actors} restarts {h['restarts']}"
                         + (f" guests {h['guest_slots']}" if h.get("guest_slots") else ""))
        elif h["restarts"]:
            parts.append(f"worker restarts {h['restarts']}")
        if h.get("dropped_fragments"):
            parts.append(f"dropped {h['dropped_fragments']}")
        return "  ".join(parts)

    def _stop_on_failure(self, exc: BaseException) -> None:
        """Write a checkpoint (or name the last good one), record the cause in summary.json and
        raise the error with where the run stands and how to continue."""
        if isinstance(exc, OSError):  # e.g. the disk filled up under the TensorBoard writer
            exc = TrainingError(f"cannot write to the run folder {self.run_dir} "
                                f"({exc.strerror or exc}); free space or fix its permissions")
        where = self._save_failed(f"{type(exc).__name__}: {exc}")
        exc.args = (f"{exc}\nthe run stopped at {self.env_steps:,} env steps ({where}); after "
                    f"fixing the cause, continue with: rlcore resume {self.run_dir}",)
        if hasattr(exc, "problems"):
            exc.problems = [exc.args[0]]
        exc.exit_code = RUN_FAILED  # distinct from bad input: this run had started
        raise exc

    def _save_failed(self, cause: str, save: bool = True) -> str:
        """Checkpoint (when ``save``) and ``summary.json`` (stop reason ``failed``, the cause);
        returns where the checkpoint went, or why it could not be written."""
        path, last = None, checkpoint.complete_checkpoints(self.run_dir)
        try:
            if not save:
                raise TrainingError("no checkpoint without the cluster")
            path = self.save_checkpoint()
            where = f"checkpoint {path} written"
        except RLCoreError as ckpt_exc:  # a full disk, or the learner's actor is gone with it
            where = f"{ckpt_exc}; the last checkpoint: {last[-1] if last else 'none'}"
        summary = self.summary("failed", path)  # where `rlcore resume` starts: last_checkpoint
        summary.update(error=cause, last_checkpoint=str(path or last[-1]) if path or last else None)
        try:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        except OSError:
            pass  # the message carries the cause
        return where

    def _stuck(self, message: str, error: str = "EnvHangError", save: bool = True) -> None:
        """A watchdog thread's last resort when the main thread cannot be stopped: a hung env
        call (the learner is idle meanwhile: its state is the last update's) or, not ``save``,
        the cluster's head out of reach (the checkpoint on disk stays the last one)."""
        where = self._save_failed(f"{error}: {message}", save)
        print(f"the run stopped at {self.env_steps:,} env steps ({where}); after fixing the "
              f"cause, continue with: rlcore resume {self.run_dir}", file=sys.stderr, flush=True)

    def _next_multiple(self, every: int) -> int:
        return (self.env_steps // every + 1) * every if every else 0

    def evaluate(self, logger, on_eval=None) -> float:
        """The regime's evaluation of the learner's current weights, recorded and logged."""
        t = self.clock()
        load_numpy_weights(self.eval_modules, self.learner.weights())
        for m in self.eval_modules.values():
            m.eval()
        out = self.regime.evaluate(self.eval_modules, len(self.evals))
        self.eval_s += self.clock() - t
        rec = {"env_steps": self.env_steps, "wall_s": round(self.wall_s(), 3),
               "mean": out["mean"], "std": out["std"], "episodes": out["episodes"],
               **out.get("record", {})}
        self.evals.append(rec)
        logger.scalars("eval", out["scalars"], self.env_steps)
        logger.video("eval/video", out.get("video"), self.env_steps)  # None: no clip due
        logger.event(self.wall_s(), self.env_steps, out["text"])
        if self.cfg.checkpoint.keep_best and self.best_eval < rec["mean"] < np.inf:  # not NaN
            self.save_checkpoint(best=rec["mean"])
            self.best_eval = rec["mean"]
        if on_eval is not None:
            on_eval(rec)
        return rec["mean"]

    def summary(self, stop_reason: str, ckpt: Path | None) -> dict:
        cfg, gns = self.cfg, self.learner.gns
        last = self.evals[-1] if self.evals else {}
        minibatch = cfg.learner.minibatch_size or cfg.batch_size
        return {
            "algorithm": self.exp.plugin.name, "env": cfg.env.id, "seed": cfg.seed,
            "regime": self.regime.name,
            "env_steps": self.env_steps, "wall_s": round(self.wall_s(), 3),
            "eval_return_mean": last.get("mean"), "eval_return_std": last.get("std"),
            "eval_episodes": last.get("episodes"),
            "grad_noise_scale": gns.value, "minibatch_size": minibatch,
            "batch_size": cfg.batch_size, "grad_noise_verdict": gns.verdict(minibatch),
            "updates": self.learner.updates, "skipped_updates": self.learner.skipped_updates,
            "stop_reason": stop_reason, "device": str(self.learner.device),
            "learner_node": getattr(self.learner, "node", None),
            "num_actors": cfg.rollout.num_actors, "checkpoint": str(ckpt) if ckpt else None,
            "evals": self.evals, **self.pool.summary(),
            "resumed_from": self.resumed_from, "versions": versions(),
            **self.regime.summary(),
        }


def make_run(exp, run_dir: Path, resume: bool = False) -> Run:
    """The run of an experiment, constructed (env checked, learner and actors started)."""
    return Run(exp, run_dir, resume=resume)


def train_experiment(path, run_dir, overrides=()) -> tuple[dict, Run]:
    """Run an experiment file from Python (notebooks, tests) without console progress unless an
    override asks for it; returns (summary, run)."""
    from rlcore.config import load_experiment
    from rlcore.run.logging import RunLogger, record_config

    exp = load_experiment(path, ["logging.progress_every_s=0", *overrides])
    run = make_run(exp, run_dir)
    record_config(run_dir, exp)  # as `rlcore run` does: resume, eval and plot read it
    logger = RunLogger(run_dir, 0, exp.config.logging.progress_every_s)
    try:
        return run.run(logger), run
    finally:
        logger.close()
