"""The trajectory regime (on-policy): every worker returns one fragment per round, the learner
makes one update from all of them (``num_epochs`` passes of minibatches), new weights go out.

The batch of one update is ``env.num_envs x rollout.fragment_length`` env steps whatever the
placement: the sub-envs are split over the actors (``rlcore.run.checks.split``)."""

from __future__ import annotations

import numpy as np

from rlcore.actors.worker import rollout_worker_spec
from rlcore.run.evaluation import evaluate_policy


class Trajectory:
    name, one_step = "trajectory", False

    @staticmethod
    def check(exp, spaces) -> None:
        pass

    def __init__(self, run):
        self.run = run

    def worker_spec(self):
        return rollout_worker_spec(self.run.exp, self.run.spaces)

    def round(self) -> tuple[dict, str]:
        run = self.run
        t = run.clock()
        run.publish()
        fragments = run.pool.round([None] * max(1, run.pool.num_actors))
        t_sample = run.clock() - t
        rets = np.concatenate([f.episode_returns for f in fragments])
        lens = np.concatenate([f.episode_lengths for f in fragments])
        run.add_steps(sum(f.num_steps for f in fragments), rets)
        lag = np.mean([run.learner.version - f.policy_version for f in fragments])
        t = run.clock()
        metrics = run.learner.update(fragments, run.progress())
        scalars = {"actors": {"policy_lag": lag},
                   "learner": {**metrics, "skipped_updates": run.learner.skipped_updates},
                   "rollout": run.episode_scalars(rets, lens),
                   "time": {"sample_s": t_sample, "update_s": run.clock() - t}}
        return scalars, "  ".join(f"{k} {metrics[k]:.3g}" for k in ("approx_kl", "entropy")
                                  if k in metrics)

    def evaluate(self, modules: dict, index: int) -> dict:
        return evaluate_policy(self.run, modules, index)

    def meta(self) -> dict:
        return {}

    def save(self, path) -> None:
        pass

    def restore(self, path, meta: dict) -> None:
        pass

    def check_files(self, path, meta: dict) -> None:
        pass

    def summary(self) -> dict:
        return {}
