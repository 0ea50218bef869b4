"""The training driver for the transition regime: actors stream short fragments into replay,
the learner samples at a set replay ratio (optimizer steps per env step) and publishes weights.

    while env_steps < budget:
        fragments <- actors (inline: one fragment now; Ray: those finished, waiting only when
                     the learner has no update due), each turned into transitions in replay
        for each update due (replay_ratio x (env_steps - learning_starts) in all):
            sample (uniform or prioritized, n-step) -> loss -> step -> new priorities
        publish weights every ``publish_every`` updates; evaluate, checkpoint, stop

Modules whose name starts with ``target`` (target networks) stay on the learner: actors get
the others. Evaluation, checkpoints and the summary are the trajectory driver's
(``rlcore.loops.Trainer``); with ``checkpoint_replay`` set in the plugin's config, replay is
saved beside each checkpoint as ``replay.npz`` and restored on resume.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.buffers import ReplayBuffer
from rlcore.errors import CheckpointError
from rlcore.learner.core import Learner, to_numpy_weights
from rlcore.learner.remote import build_learner
from rlcore.run.lifecycle import Trainer
from rlcore.networks.blocks import is_image
from rlcore.ops.schedule import scheduled
from rlcore.actors.streaming import fragment_transitions, make_transition_pool

LOG_EVERY_ENV_STEPS = 1000  # TensorBoard scalars at most this often (writes cost ~20 us each)


class ReplayLearner(Learner):
    """The core learner stepped on replay samples: one optimizer step per sample, returning the
    per-sample |TD error| a plugin's loss reports as the metric ``td_abs`` (for priorities)."""

    def published_weights(self) -> dict:
        return to_numpy_weights({k: m for k, m in self.modules.items() if not k.startswith("target")})

    def update_replay(self, sample, progress: float) -> tuple[dict, np.ndarray | None]:
        self.state["progress"] = float(progress)
        lr = scheduled(self.lcfg.lr, self.lcfg.lr_schedule, progress)
        for group in self.opt.param_groups:
            group["lr"] = max(lr, 0.0)
        batch = self.plugin.prepare_batch(self.modules, sample, self.cfg, self.state)
        self.opt.zero_grad(set_to_none=True)
        losses, metrics = self.plugin.loss(self.modules, batch, self.cfg, self.state)
        td_abs = metrics.pop("td_abs", None)
        total = sum(losses.values())
        total.backward()
        metrics = self._apply(total, metrics)
        if self.plugin.after_update is not None:
            self.state = dict(self.plugin.after_update(self.modules, batch, self.cfg, self.state,
                                                       metrics))
        self.updates += 1
        self.version += 1
        return metrics, None if td_abs is None else td_abs.detach().float().cpu().numpy()


def make_replay(exp, spaces, num_streams: int) -> ReplayBuffer:
    algo = exp.algo
    stack = spaces.obs_shape[0] if algo.frame_dedup and is_image(spaces) else 1
    action_dtype = np.int64 if spaces.action_kind == "discrete" else np.float32
    return ReplayBuffer(algo.buffer_size, spaces.obs_shape, np.dtype(spaces.obs_dtype),
                        spaces.action_shape, action_dtype, num_streams, frame_stack=stack,
                        n_step=algo.n_step, gamma=algo.gamma, prioritized=algo.prioritized,
                        alpha=algo.priority_alpha, priority_eps=algo.priority_eps,
                        seed=seeding.derive(exp.config.seed, seeding.LEARNER_STREAM, 1))


class ReplayTrainer(Trainer):
    def __init__(self, exp, run_dir: Path, resume: bool = False, clock=time.monotonic):
        self._init_run(exp, run_dir, clock)
        self.algo = exp.algo
        loaded = self._read_checkpoint() if resume else None  # checked before anything starts
        self.learner = build_learner(ReplayLearner, exp, self.spaces, self.device)
        streams = max(1, self.cfg.rollout.num_actors) * self.cfg.env.num_envs
        self.buffer = make_replay(exp, self.spaces, streams)
        if resume:
            self._restore(loaded)
            replay = Path(self.resumed_from["checkpoint"]) / "replay.npz"
            if replay.is_file():
                try:
                    self.buffer.load(replay)
                except ValueError as exc:
                    raise CheckpointError(
                        f"{exc}; resume with the run's own algo.buffer_size, env.num_envs and "
                        "rollout.num_actors, or delete the replay file to start with an empty "
                        "replay") from None
        self.lags: collections.deque = collections.deque(maxlen=1000)
        self.actor_ids: collections.Counter = collections.Counter()  # transitions per actor
        with seeding.seeded_torch(0):  # a CPU copy; its weights are loaded before each eval
            self.eval_modules = exp.plugin.make_modules(exp.algo, self.spaces)
        self.pool = make_transition_pool(exp, self.spaces)

    def save_checkpoint(self) -> Path:
        path = super().save_checkpoint()
        if getattr(self.algo, "checkpoint_replay", False):
            self.buffer.save(path / "replay.npz")
        return path

    # ------------------------------------------------------------------ loop

    def updates_due(self) -> int:
        algo = self.algo
        if self.env_steps < algo.learning_starts or len(self.buffer) < algo.batch_size:
            return 0
        return int(algo.replay_ratio * (self.env_steps - algo.learning_starts + 1)) - self.learner.updates

    def add_fragment(self, frag) -> None:
        n = frag.reward.shape[1]
        streams = frag.actor_id * n + np.arange(n)
        for obs, action, reward, term, trunc, next_obs in fragment_transitions(frag):
            self.buffer.add(streams, obs, action, reward, term, trunc, next_obs)
        self.env_steps += frag.num_steps
        self.returns.extend(frag.episode_returns.tolist())
        self.lags.append(self.learner.version - frag.policy_version)
        self.actor_ids[frag.actor_id] += frag.num_steps

    def train_step(self, progress: float) -> dict:
        algo = self.algo
        beta = algo.priority_beta + progress * (1.0 - algo.priority_beta)
        sample = self.buffer.sample(algo.batch_size, beta)
        metrics, td_abs = self.learner.update_replay(sample, progress)
        if td_abs is not None:
            self.buffer.update_priorities(sample.index, td_abs)
        return metrics

    def round(self, logger) -> None:
        """Take the fragments the actors have finished (waiting only when no update is due),
        then the updates the replay ratio makes due; logs at most every 1,000 env steps."""
        algo, learner, pool = self.algo, self.learner, self.pool
        if self.published is None:  # a new run() (or a resumed one): start the log window
            self._next_log, self._sums, self._n_metrics, self._t_update = self.env_steps, {}, 0, 0.0
        stale = self.published is None or learner.version - self.published >= algo.publish_every
        weights = learner.published_weights() if stale else None
        fragments = pool.collect(weights, learner.version, self.env_steps,
                                 wait=self.updates_due() <= 0)
        if stale:
            self.published = learner.version
        for frag in fragments:
            self.add_fragment(frag)
        progress = min(1.0, self.env_steps / self.cfg.stop.num_env_steps)
        t = self.clock()
        # Ray: a bounded share of the due updates per pass, so finished fragments are taken and
        # their actors restarted while the learner works
        for _ in range(min(self.updates_due(), 64 if pool.num_actors else 1 << 30)):
            for k, v in self.train_step(progress).items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._n_metrics += 1
        self._t_update += self.clock() - t
        if self.env_steps >= self._next_log:
            self._next_log = self.env_steps + LOG_EVERY_ENV_STEPS
            self._log(logger, self._sums, self._n_metrics, self._t_update)
            self._sums, self._n_metrics, self._t_update = {}, 0, 0.0

    def _log(self, logger, sums, n_metrics, t_update) -> None:
        step = self.env_steps
        if n_metrics:
            logger.scalars("learner", {k: v / n_metrics for k, v in sums.items()}, step)
        if self.returns:
            logger.scalars("rollout", {"episode_return": self.mean_return()}, step)
        lag = float(np.mean(self.lags)) if self.lags else None
        logger.scalars("actors", {**self.pool.health(), "num_actors": self.pool.num_actors,
                                  "policy_lag": lag}, step)
        logger.scalars("buffer", {"size": len(self.buffer), "updates": self.learner.updates}, step)
        sps = self.steps_per_s()
        logger.scalars("time", {"env_steps_per_s": sps, "update_s": t_update}, step)
        extra = f"replay {len(self.buffer):,}  updates {self.learner.updates:,}"
        if lag is not None:
            extra += f"  policy lag {lag:.1f}"
        if self.pool.num_actors:
            h = self.pool.health()
            extra += f"  actors {h['healthy']}/{self.pool.num_actors}"
        logger.progress(self.wall_s(), step, self.cfg.stop.num_env_steps, sps, self.mean_return(),
                        extra)

    def summary(self, stop_reason: str, ckpt: Path) -> dict:
        out = super().summary(stop_reason, ckpt)
        algo = self.algo
        out.update(minibatch_size=algo.batch_size, batch_size=algo.batch_size,
                   grad_noise_verdict="not measured (replay regime)",
                   replay_size=len(self.buffer), replay_ratio=algo.replay_ratio,
                   policy_lag_mean=float(np.mean(self.lags)) if self.lags else None,
                   env_steps_by_actor={str(k): v for k, v in sorted(self.actor_ids.items())})
        return out
