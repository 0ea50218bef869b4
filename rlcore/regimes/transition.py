"""The transition regime (replay): actors stream short fragments into replay, the learner
samples at a set replay ratio (optimizer steps per env step) and publishes weights.

    while env_steps < budget:
        fragments <- actors (inline: one fragment now; Ray: those finished, waiting only when
                     the learner has no update due), each turned into transitions in replay
        for each update due (replay_ratio x (env_steps - learning_starts) in all):
            sample (uniform or prioritized, n-step) -> learner (one step) -> new priorities
        publish weights every ``publish_every`` updates
        at every log window: the plugin's ``replay_metrics`` over the whole replay, if any

Modules whose name starts with ``target`` (target networks) stay on the learner: actors get
the others. The replay streams are the experiment's ``env.num_envs`` sub-envs, however they
are spread over actors. With ``checkpoint_replay`` set in the plugin's config, replay is saved
beside each checkpoint as ``replay.npz`` and restored on resume.
"""

from __future__ import annotations

import collections
import sys
import zipfile
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.buffers import ReplayBuffer
from rlcore.errors import CheckpointError
from rlcore.learner.core import load_numpy_weights
from rlcore.networks.blocks import is_image
from rlcore.actors.slots import split
from rlcore.actors.worker import rollout_worker_spec
from rlcore.run.evaluation import evaluate_policy
from rlcore.types import Fragment

LOG_EVERY_ENV_STEPS = 1000  # TensorBoard scalars at most this often (writes cost ~20 us each)


def make_replay(exp, spaces) -> ReplayBuffer:
    algo = exp.algo
    stack = spaces.obs_shape[0] if algo.frame_dedup and is_image(spaces) else 1
    action_dtype = np.int64 if spaces.action_kind == "discrete" else np.float32
    return ReplayBuffer(algo.buffer_size, spaces.obs_shape, np.dtype(spaces.obs_dtype),
                        spaces.action_shape, action_dtype, exp.config.env.num_envs,
                        frame_stack=stack, n_step=algo.n_step, gamma=algo.gamma,
                        prioritized=algo.prioritized, alpha=algo.priority_alpha,
                        priority_eps=algo.priority_eps,
                        seed=seeding.derive(exp.config.seed, seeding.LEARNER_STREAM, 1))


def fragment_transitions(frag: Fragment):
    """A fragment's steps as transitions (time-major): yields per step t the arrays
    (obs, action, reward, terminated, truncated, next_obs) of its N sub-envs. ``next_obs`` of a
    truncated step is the episode's true final observation; of a terminated step it is the
    next episode's first observation, which a termination never bootstraps from."""
    T = frag.reward.shape[0]
    finals: dict[tuple[int, int], np.ndarray] = {
        (int(t), int(n)): frag.final_obs[i] for i, (t, n) in enumerate(frag.final_idx)}
    for t in range(T):
        next_obs = frag.obs[t + 1] if t + 1 < T else frag.bootstrap_obs
        if finals and any(k[0] == t for k in finals):
            next_obs = next_obs.copy()
            for (tt, n), o in finals.items():
                if tt == t:
                    next_obs[n] = o
        yield (frag.obs[t], frag.action[t], frag.reward[t], frag.terminated[t],
               frag.truncated[t], next_obs)


def value_range_warning(algo, learner: dict, env_steps: int) -> str | None:
    """What to tell the user when most TD targets of a log window fell outside
    ``algo.value_range`` (c51: its support, v_min..v_max), from the losses'
    ``target_below_range`` / ``target_above_range``; else None. A range copied with a file
    from another task clips everything (CartPole's [0, 100] on Acrobot, whose returns are
    negative, pins every target to 0 and nothing is learned); targets above the range are what
    it is for (a value estimate that overshoots the largest return: at most 5.3 % of a
    window's targets in a 100k-step run of the DQN CartPole file), so only a window with nine
    in ten of them above it is reported."""
    below, above = learner.get("target_below_range"), learner.get("target_above_range")
    if below is None or above is None:
        return None
    if getattr(algo, "value_range", None) is not None:
        (low, high), name = algo.value_range, "algo.value_range"
        what, fix = "the TD targets", "algo.value_range to your task's range, or to null to clip nothing"
    elif hasattr(algo, "v_min") and hasattr(algo, "v_max"):  # c51: the support's ends
        low, high, name = algo.v_min, algo.v_max, "algo.v_min/v_max"
        what, fix = "the target distributions' mass", "algo.v_min and algo.v_max to your task's range"
    else:
        return None
    if below >= 0.5:
        share, side = below, f"below its low end {low:g}"
    elif above >= 0.9:
        share, side = above, f"above its high end {high:g}"
    else:
        return None
    return (f"{name} [{low:g}, {high:g}] clipped {share:.0%} of {what} {side} in the log "
            f"window ending at env step {env_steps:,}: the range looks wrong for this env (it "
            "must hold every discounted return the task can give, e.g. [0, 100] for rewards "
            f"in [0, 1] at gamma 0.99, negative for negative rewards); set {fix}")


class Transition:
    name, one_step = "transition", True

    @staticmethod
    def check(exp, spaces) -> None:
        pass

    def __init__(self, run):
        self.run, self.algo = run, run.exp.algo
        self.buffer = make_replay(run.exp, run.spaces)
        sizes = split(run.cfg.env.num_envs, max(1, run.cfg.rollout.num_actors))
        self.stream_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.lags: collections.deque = collections.deque(maxlen=1000)
        self.actor_ids: collections.Counter = collections.Counter()  # transitions per actor
        self._window = None
        self._ended: tuple[list, list] = ([], [])  # returns, lengths since the last log
        # where the replay-ratio count starts: (env steps, updates) of a resume whose replay
        # was not saved, so the updates missed while replay refills are not caught up
        self.restart = None
        self._range_warned = False

    def worker_spec(self):
        return rollout_worker_spec(self.run.exp, self.run.spaces)

    # ------------------------------------------------------------------ state

    def restore(self, path: Path, meta: dict) -> None:
        replay = path / "replay.npz"
        if not replay.is_file():
            self.restart = (int(meta["env_steps"]), int(meta["learner"]["updates"]))
            print(f"rlcore: WARNING: {path} holds no replay (algo.checkpoint_replay was off), "
                  "so replay restarts empty. Updates pause until it holds "
                  f"algo.learning_starts={self.algo.learning_starts} new transitions, then go on "
                  f"at algo.replay_ratio={self.algo.replay_ratio:g} from there; the updates "
                  "missed meanwhile are not caught up. Set algo.checkpoint_replay: true to "
                  "resume with the replay itself", file=sys.stderr, flush=True)
            return
        try:
            self.buffer.load(replay)
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # check_files saw fitting headers: the data itself is damaged (a CRC error)
            raise CheckpointError(
                f"{replay}: {exc}; resume with the run's own algo.buffer_size and env.num_envs, "
                "or delete the replay file to start with an empty replay") from None

    def check_files(self, path: Path, meta: dict) -> None:
        """Refuses a checkpoint whose replay file does not fit this experiment's replay (read
        from its headers, before any state is restored)."""
        replay = path / "replay.npz"
        problems = self.buffer.check_file(replay) if replay.is_file() else []
        if problems:
            raise CheckpointError(f"{path.name}/replay.npz: {'; '.join(problems[:3])}; resume "
                                  "with the run's own algo.buffer_size and env.num_envs, or "
                                  "delete the replay file to start with an empty replay")

    def save(self, path: Path) -> None:
        if getattr(self.algo, "checkpoint_replay", False):
            self.buffer.save(path / "replay.npz")

    def meta(self) -> dict:
        return {}

    # ------------------------------------------------------------------ loop

    def updates_due(self) -> int:
        """``replay_ratio`` updates per env step after ``learning_starts``, counted from the
        run's start (or from a resume whose replay restarted empty), less those made."""
        algo, env_steps = self.algo, self.run.env_steps
        start_steps, start_updates = self.restart or (0, 0)
        begin = start_steps + algo.learning_starts
        if env_steps < begin or len(self.buffer) < algo.batch_size:
            return 0
        made = self.run.learner.updates - start_updates
        return int(algo.replay_ratio * (env_steps - begin + 1)) - made

    def add_fragment(self, frag: Fragment) -> None:
        n = frag.reward.shape[1]
        streams = self.stream_start[frag.actor_id] + np.arange(n)
        for obs, action, reward, term, trunc, next_obs in fragment_transitions(frag):
            self.buffer.add(streams, obs, action, reward, term, trunc, next_obs)
        self.run.add_steps(frag.num_steps, frag.episode_returns)
        self._ended[0].extend(frag.episode_returns)
        self._ended[1].extend(frag.episode_lengths)
        self.lags.append(self.run.learner.version - frag.policy_version)
        self.actor_ids[frag.actor_id] += frag.num_steps

    def train_step(self, progress: float) -> dict:
        algo = self.algo
        beta = algo.priority_beta + progress * (1.0 - algo.priority_beta)
        sample = self.buffer.sample(algo.batch_size, beta)
        metrics = self.run.learner.update(sample, progress)
        td_abs = metrics.pop("td_abs", None)
        if td_abs is not None:
            self.buffer.update_priorities(sample.index, td_abs)
        return metrics

    def round(self) -> tuple[dict, str | None]:
        """Take the fragments the actors have finished (waiting only when no update is due),
        then the updates the replay ratio makes due; logs at most every 1,000 env steps."""
        run, pool = self.run, self.run.pool
        if self._window is None or run.published is None:  # a new run() (or a resumed one)
            self._window = {"next": run.env_steps, "sums": {}, "n": 0, "update_s": 0.0}
        run.publish(self.algo.publish_every)
        env_steps, num_actors = run.env_steps, max(1, pool.num_actors)
        fragments = pool.stream(lambda slot: {"env_steps": env_steps, "num_actors": num_actors},
                                wait=self.updates_due() <= 0)
        for frag in fragments:
            if run.env_steps >= run.cfg.stop.num_env_steps:
                break  # fragments finished together past the budget: the run ends at it
            self.add_fragment(frag)
        progress, w = run.progress(), self._window
        t = run.clock()
        # Ray: a bounded share of the due updates per pass, so finished fragments are taken and
        # their actors restarted while the learner works
        for _ in range(min(self.updates_due(), 64 if pool.num_actors else 1 << 30)):
            for k, v in self.train_step(progress).items():
                w["sums"][k] = w["sums"].get(k, 0.0) + v
            w["n"] += 1
        w["update_s"] += run.clock() - t
        if run.env_steps < w["next"]:
            return {}, None
        scalars = self._scalars(w)
        self._window = {"next": run.env_steps + LOG_EVERY_ENV_STEPS, "sums": {}, "n": 0,
                        "update_s": 0.0}
        extra = f"replay {len(self.buffer):,}  updates {run.learner.updates:,}"
        if self.lags:
            extra += f"  policy lag {np.mean(self.lags):.1f}"
        return scalars, extra

    def _scalars(self, w: dict) -> dict:
        out = {"learner": {k: v / w["n"] for k, v in w["sums"].items()} if w["n"] else {}}
        if not self._range_warned:
            message = value_range_warning(self.algo, out["learner"], self.run.env_steps)
            if message:
                print(f"rlcore: WARNING: {message}", file=sys.stderr, flush=True)
                self._range_warned = True
        out["rollout"] = self.run.episode_scalars(*self._ended)
        self._ended = ([], [])
        out["actors"] = {"policy_lag": float(np.mean(self.lags)) if self.lags else None}
        out["buffer"] = {"size": len(self.buffer), "updates": self.run.learner.updates}
        out["time"] = {"update_s": w["update_s"]}
        hook = self.run.exp.plugin.replay_metrics
        if hook is not None and len(self.buffer):
            t = self.run.clock()
            out["learner"].update(self._replay_metrics(hook))
            out["time"]["replay_metrics_s"] = self.run.clock() - t
        return out

    def _replay_metrics(self, hook) -> dict:
        """The plugin's figures from the whole replay (AlgorithmPlugin.replay_metrics), on a
        driver copy of the latest weights, with a generator seeded by the run's seed and env
        steps (so they replay with the run)."""
        run = self.run
        load_numpy_weights(run.eval_modules, run.learner.weights())
        rng = np.random.default_rng(seeding.derive(run.cfg.seed, seeding.EVAL_STREAM, 2,
                                                   run.env_steps))
        return hook(run.eval_modules, self.buffer, self.algo, run.spaces, rng)

    def evaluate(self, modules: dict, index: int) -> dict:
        return evaluate_policy(self.run, modules, index)

    def summary(self) -> dict:
        algo = self.algo
        return {"minibatch_size": algo.batch_size, "batch_size": algo.batch_size,
                "grad_noise_verdict": "not measured (transition regime)",
                "replay_size": len(self.buffer), "replay_ratio": algo.replay_ratio,
                "replay_restarted_empty_at": self.restart[0] if self.restart else None,
                "policy_lag_mean": float(np.mean(self.lags)) if self.lags else None,
                "env_steps_by_actor": {str(k): v for k, v in sorted(self.actor_ids.items())}}
