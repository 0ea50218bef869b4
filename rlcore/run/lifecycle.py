"""The training driver for the trajectory regime: collect -> update -> broadcast, with
evaluation, logging, checkpoints and the run summary."""

from __future__ import annotations

import collections
import errno
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.run import checkpoint
from rlcore.actors.pool import make_pool
from rlcore.errors import CheckpointError, IncompatibleEnvError, RLCoreError, TrainingError
from rlcore.run.evaluation import evaluate
from rlcore.learner.core import Learner, load_numpy_weights, pick_device
from rlcore.learner.remote import build_learner, is_remote
from rlcore.actors.worker import probe_spaces
from rlcore.types import SpaceSpec


def check_spaces(exp) -> SpaceSpec:
    """Make the env once on the driver and check it against the plugin, before any actor."""
    cfg = exp.config
    spaces = probe_spaces(cfg.env.id, cfg.env.kwargs)
    if spaces.action_kind not in exp.plugin.action_spaces:
        fits = algorithms_for(spaces.action_kind, exp.plugin.data_spec.regime)
        hint = f"try another algorithm: {' or '.join(fits)}" if fits else "try another algorithm"
        raise IncompatibleEnvError(
            f"{exp.plugin.name} needs a {' or '.join(exp.plugin.action_spaces)} action space; "
            f"'{cfg.env.id}' has {spaces.describe_action()}; {hint} (or pick an env with a "
            f"{'/'.join(exp.plugin.action_spaces)} action space)")
    if cfg.env.normalize_obs and (spaces.num_obs or not spaces.obs_shape):
        raise IncompatibleEnvError(
            f"env.normalize_obs needs a Box observation; '{cfg.env.id}' has "
            f"{'Discrete(' + str(spaces.num_obs) + ')' if spaces.num_obs else 'a scalar'} "
            f"observations ({exp.where('env', 'normalize_obs')}); set env.normalize_obs: false")
    if exp.plugin.data_spec.regime == "game":  # the env must be a two-player game
        from rlcore.regimes.game import check_game

        check_game(exp)
    return spaces


def algorithms_for(action_kind: str, regime: str) -> list[str]:
    """Installed algorithms that take ``action_kind`` actions, those of ``regime`` only when
    there are any (dqn on Pendulum suggests ddpg or td3, not every policy-gradient method)."""
    from rlcore import registry
    from rlcore.errors import RegistryError

    fits = []
    for name in registry.algorithm_names():
        try:
            plugin = registry.get_algorithm(name)
        except RegistryError:
            continue
        if action_kind in plugin.action_spaces:
            fits.append((plugin.data_spec.regime == regime, name))
    same = [name for same_regime, name in fits if same_regime]
    return same or [name for _, name in fits]


def learner_threads(cfg) -> int:
    """``learner.torch_threads``, or by default the cores the local rollout actors leave free,
    and 1 when that is 2 or fewer.

    Measured on 2 cores: with another busy process on the machine, two intra-op threads made a
    PPO CartPole update 200x slower (6 s instead of 30 ms) and PPO HalfCheetah (256x256 MLP,
    minibatch 64) 27x slower (62 instead of ~1,000 env steps/s) as OpenMP threads waited on each
    other; the second thread buys little on such small models even on an idle machine.
    """
    if cfg.learner.torch_threads:
        return cfg.learner.torch_threads
    cpus = os.cpu_count() or 1
    if cfg.rollout.num_actors and cfg.ray.address is None:
        cpus -= int(cfg.rollout.num_actors * cfg.rollout.num_cpus_per_actor)
    return cpus if cpus > 2 else 1


def versions() -> dict:
    import gymnasium
    import torch

    import rlcore

    out = {"rlcore": rlcore.__version__, "torch": torch.__version__,
           "gymnasium": gymnasium.__version__, "numpy": np.__version__}
    try:
        import ray

        out["ray"] = ray.__version__
    except ImportError:
        pass
    return out


class Background:
    """Runs ``fn(*args)`` in a thread; ``result()`` waits and re-raises its exception."""

    def __init__(self, fn, *args):
        self._value, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


# OSErrors of the run folder's storage: the run stops cleanly with a checkpoint (BAD_INPUTS 24).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO}


class Trainer:
    def __init__(self, exp, run_dir: Path, resume: bool = False, clock=time.monotonic):
        self._init_run(exp, run_dir, clock)
        self._start(resume, lambda: make_pool(exp, self.spaces))
        with seeding.seeded_torch(0):  # a CPU copy; its weights are loaded before each eval
            self.eval_modules = exp.plugin.make_modules(exp.algo, self.spaces)

    def _init_run(self, exp, run_dir: Path, clock) -> None:
        """What every driver sets up first: threads, the env check, the device, the counters."""
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
        self.returns = collections.deque(maxlen=100)
        self.resumed_from = None

    def _start(self, resume: bool, start_pool, learner_cls=Learner) -> None:
        """Set ``self.learner`` and ``self.pool`` (``start_pool()``), in the order that starts
        nothing before it must: a resumed run checks its checkpoint before any actor starts; a
        learner in a Ray actor comes after Ray, which the pool starts in the main thread (Ray's
        daemons die with the thread that started them); a learner in the driver is built in a
        thread while Ray and the actors start (seconds)."""
        exp = self.exp
        if resume:
            loaded = self._read_checkpoint()
            self.learner = build_learner(learner_cls, exp, self.spaces, self.device)
            self._restore(loaded)
            self.pool = start_pool()
            return
        builder = None if is_remote(self.cfg) else Background(
            learner_cls, exp, self.spaces, self.device)
        self.pool = start_pool()
        try:
            self.learner = (builder.result() if builder is not None
                            else build_learner(learner_cls, exp, self.spaces, self.device))
        except BaseException:
            self.pool.close()
            raise

    # ------------------------------------------------------------------ state

    def _read_checkpoint(self) -> tuple:
        """The latest checkpoint (path, meta, tensors), checked against this experiment."""
        return checkpoint.load_latest(self.run_dir, self.exp.plugin.name, self.spaces.to_json(),
                                      self.device)

    def _restore(self, loaded: tuple) -> dict:
        """Load ``_read_checkpoint()``'s result into the learner and the counters; returns its
        meta."""
        path, meta, tensors = loaded
        self.learner.load_state_tensors(tensors)
        self.learner.load_meta(meta["learner"])
        self.env_steps, self.wall_offset = meta["env_steps"], meta["wall_s"]
        self.evals = meta.get("evals", [])
        self.resumed_from = {"checkpoint": str(path), "skipped": meta["skipped"]}
        return meta

    def save_checkpoint(self) -> Path:
        meta = {"algorithm": self.exp.plugin.name, "env": self.cfg.env.id,
                "spaces": self.spaces.to_json(), "env_steps": self.env_steps,
                "wall_s": self.wall_s(), "learner": self.learner.meta(), "evals": self.evals,
                "versions": versions()}
        try:
            return checkpoint.save(self.run_dir, self.env_steps, self.learner.state_tensors(),
                                   meta, keep=self.cfg.checkpoint.keep)
        except OSError as exc:  # disk full, read-only, quota: the previous checkpoint is intact
            previous = checkpoint.complete_checkpoints(self.run_dir)
            raise CheckpointError(
                f"cannot write the checkpoint of step {self.env_steps} under "
                f"{self.run_dir / 'checkpoints'} ({exc.strerror or exc}); the previous checkpoint "
                f"{previous[-1] if previous else '(none)'} is intact. Free space or fix the "
                f"folder's permissions, then: rlcore resume {self.run_dir}") from None

    def learner_location(self) -> str:
        """The learner's device, and its Ray node when it runs in an actor."""
        node = getattr(self.learner, "node", None)
        where = f" (a Ray actor on node {node[:12]})" if node else ""
        return f"{self.learner.device}{where}"

    def wall_s(self) -> float:
        return self.wall_offset + self.clock() - self.t0

    # ------------------------------------------------------------------ loop

    def run(self, logger, on_eval=None) -> dict:
        """The loop every driver shares: ``round(logger)`` (collect, update, log) until a stop
        criterion, with evaluations, checkpoints, Ctrl-C (a final checkpoint), failures (a
        checkpoint and the cause in summary.json) and the run summary."""
        cfg = self.cfg
        next_eval = self._next_multiple(cfg.eval.every_env_steps)
        next_ckpt = self._next_multiple(cfg.checkpoint.every_env_steps)
        stop_reason, failure = "num_env_steps", None
        self.t_run, self.steps_at_start, self.published = self.clock(), self.env_steps, None
        try:
            while self.env_steps < cfg.stop.num_env_steps:
                self.round(logger)
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
        except RLCoreError as exc:  # stop with a checkpoint and the cause recorded
            stop_reason, failure = "failed", exc
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            stop_reason, failure = "failed", exc
        finally:
            self.pool.close()
        try:
            if failure is not None:
                self._stop_on_failure(failure)
            evaluated_now = bool(self.evals) and self.evals[-1]["env_steps"] == self.env_steps
            if stop_reason != "interrupted" and not evaluated_now:
                self.evaluate(logger, on_eval)
            path = self.save_checkpoint()
            summary = self.summary(stop_reason, path)
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        finally:
            self.learner.close()
        if stop_reason == "interrupted":
            raise KeyboardInterrupt
        return summary

    def round(self, logger) -> None:
        """The trajectory regime's round: fragments from every actor, one update, logs."""
        cfg, learner, pool = self.cfg, self.learner, self.pool
        t = self.clock()
        weights = learner.weights() if self.published != learner.version else None
        fragments = pool.sample(weights, learner.version)
        self.published = learner.version
        t_sample = self.clock() - t
        self._log_rollout(fragments, logger, pool)
        t = self.clock()
        metrics = learner.update(fragments, min(1.0, self.env_steps / cfg.stop.num_env_steps))
        logger.scalars("learner", {**metrics, "skipped_updates": learner.skipped_updates},
                       self.env_steps)
        sps = self.steps_per_s()
        logger.scalars("time", {"env_steps_per_s": sps, "sample_s": t_sample,
                                "update_s": self.clock() - t}, self.env_steps)
        logger.progress(self.wall_s(), self.env_steps, cfg.stop.num_env_steps, sps,
                        self.mean_return(), self._progress_extra(metrics, pool))

    def steps_per_s(self) -> float:
        """Env steps per second since ``run`` started (resumed runs: since the resume)."""
        return (self.env_steps - self.steps_at_start) / max(self.clock() - self.t_run, 1e-9)

    def _stop_on_failure(self, exc: BaseException) -> None:
        """Write a checkpoint (or name the last good one), record the cause in summary.json and
        raise the error with where the run stands and how to continue."""
        if isinstance(exc, OSError):  # e.g. the disk filled up under the TensorBoard writer
            exc = TrainingError(f"cannot write to the run folder {self.run_dir} "
                                f"({exc.strerror or exc}); free space or fix its permissions")
        path = None
        try:
            path = self.save_checkpoint()
            where = f"checkpoint {path} written"
        except RLCoreError as ckpt_exc:  # a full disk, or the learner's actor is gone with it
            where = str(ckpt_exc)
        summary = self.summary("failed", path)
        summary["error"] = f"{type(exc).__name__}: {exc}"
        try:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        except OSError:
            pass  # the message below carries the cause
        exc.args = (f"{exc}\nthe run stopped at {self.env_steps:,} env steps ({where}); after "
                    f"fixing the cause, continue with: rlcore resume {self.run_dir}",)
        if hasattr(exc, "problems"):
            exc.problems = [exc.args[0]]
        raise exc

    def _next_multiple(self, every: int) -> int:
        return (self.env_steps // every + 1) * every if every else 0

    def _log_rollout(self, fragments, logger, pool) -> None:
        new_steps = sum(f.num_steps for f in fragments)
        self.env_steps += new_steps
        rets = np.concatenate([f.episode_returns for f in fragments])
        lens = np.concatenate([f.episode_lengths for f in fragments])
        self.returns.extend(rets.tolist())
        if len(rets):
            logger.scalars("rollout", {"episode_return": rets.mean(),
                                       "episode_length": lens.mean()}, self.env_steps)
        lag = np.mean([self.learner.version - f.policy_version for f in fragments])
        logger.scalars("actors", {**pool.health(), "num_actors": pool.num_actors,
                                  "policy_lag": lag}, self.env_steps)

    def _progress_extra(self, metrics: dict, pool) -> str:
        parts = [f"{k} {metrics[k]:.3g}" for k in ("approx_kl", "entropy") if k in metrics]
        if self.learner.gns.value is not None:
            parts.append(f"B_simple {self.learner.gns.value:,.0f}")
        h = pool.health()
        if pool.num_actors:
            parts.append(f"actors {h['healthy']}/{pool.num_actors} restarts {h['restarts']}")
        if h.get("dropped_fragments"):
            parts.append(f"dropped {h['dropped_fragments']}")
        return "  ".join(parts)

    def mean_return(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    def evaluate(self, logger, on_eval=None) -> float:
        cfg = self.cfg
        load_numpy_weights(self.eval_modules, self.learner.weights())
        for m in self.eval_modules.values():
            m.eval()
        policy = self.learner.policy_for_eval(self.eval_modules, explore=not cfg.eval.deterministic)
        returns = evaluate(policy, cfg.env.id, cfg.eval_env_kwargs, cfg.eval.episodes,
                           cfg.seed + len(self.evals))
        rec = {"env_steps": self.env_steps, "wall_s": round(self.wall_s(), 3),
               "mean": float(returns.mean()), "std": float(returns.std()),
               "episodes": int(len(returns))}
        self.evals.append(rec)
        logger.scalars("eval", {"return_mean": rec["mean"], "return_std": rec["std"]},
                       self.env_steps)
        logger.event(self.wall_s(), self.env_steps, f"eval return {rec['mean']:.4g} ± "
                     f"{rec['std']:.3g} over {rec['episodes']} episodes")
        if on_eval is not None:
            on_eval(rec)
        return rec["mean"]

    def summary(self, stop_reason: str, ckpt: Path | None) -> dict:
        cfg, gns = self.cfg, self.learner.gns
        last = self.evals[-1] if self.evals else {}
        minibatch = cfg.learner.minibatch_size or cfg.batch_size
        return {
            "algorithm": self.exp.plugin.name, "env": cfg.env.id, "seed": cfg.seed,
            "env_steps": self.env_steps, "wall_s": round(self.wall_s(), 3),
            "eval_return_mean": last.get("mean"), "eval_return_std": last.get("std"),
            "eval_episodes": last.get("episodes"),
            "grad_noise_scale": gns.value, "minibatch_size": minibatch,
            "batch_size": cfg.batch_size, "grad_noise_verdict": gns.verdict(minibatch),
            "updates": self.learner.updates, "skipped_updates": self.learner.skipped_updates,
            "stop_reason": stop_reason, "device": str(self.learner.device),
            "learner_node": getattr(self.learner, "node", None),
            "num_actors": cfg.rollout.num_actors, "checkpoint": str(ckpt) if ckpt else None,
            "evals": self.evals, "actor_restarts": list(getattr(self.pool, "restart_log", [])),
            "actor_nodes": list(getattr(self.pool, "nodes", [])),
            "resumed_from": self.resumed_from, "versions": versions(),
        }


# The driver for each data regime (DESIGN.md, "Data regimes"): ``module:class`` loaded on demand.
TRAINERS = {
    "trajectory": "rlcore.run.lifecycle:Trainer",
    "transition": "rlcore.regimes.transition:ReplayTrainer",
    "game": "rlcore.regimes.game:SelfPlayTrainer",
}


def make_trainer(exp, run_dir: Path, resume: bool = False):
    """The training driver for the plugin's data regime, constructed (actors started)."""
    import importlib

    module, _, cls = TRAINERS[exp.plugin.data_spec.regime].partition(":")
    return getattr(importlib.import_module(module), cls)(exp, run_dir, resume=resume)


def train_experiment(path, run_dir, overrides=()) -> tuple[dict, Trainer]:
    """Run an experiment file from Python (notebooks, tests) without console progress unless an
    override asks for it; returns (summary, trainer)."""
    from rlcore.config import load_experiment
    from rlcore.run.logging import RunLogger

    exp = load_experiment(path, ["logging.progress_every_s=0", *overrides])
    trainer = make_trainer(exp, run_dir)
    logger = RunLogger(run_dir, 0, exp.config.logging.progress_every_s)
    try:
        return trainer.run(logger), trainer
    finally:
        logger.close()
