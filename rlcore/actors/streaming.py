"""Actors of the transition regime: the same ``RolloutWorker`` as the trajectory regime, driven
asynchronously. Each returns short fragments (``rollout.fragment_length`` steps of its
sub-envs) that the driver turns into replay transitions; the exploration schedule is set on
the worker's policy before each fragment (``policy.set_schedule(env_steps, actor_id,
num_actors)`` when the policy has it).

``InlineTransitionPool`` steps one fragment in the driver per call. ``RayTransitionPool``
keeps one sample request in flight per actor: ``collect`` returns whichever fragments are done
(waiting for one only when asked), and sends that actor its next request at once, with the
newest published weights, so actors step while the learner trains.
"""

from __future__ import annotations

import numpy as np

from rlcore.actors.pool import _worker_kwargs
from rlcore.actors.ray_setup import init_ray
from rlcore.errors import ClusterError, RLCoreError
from rlcore.actors.worker import RolloutWorker
from rlcore.types import Fragment


def load_published(worker: RolloutWorker, weights: dict, version: int) -> None:
    """Load the published modules (the learner leaves its target networks out)."""
    import torch

    if version == worker.policy_version:
        return
    for name, state in weights.items():
        worker.modules[name].load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    worker.policy_version = version


def step_worker(worker: RolloutWorker, env_steps: int, num_actors: int) -> Fragment:
    set_schedule = getattr(worker.policy, "set_schedule", None)
    if set_schedule is not None:
        set_schedule(env_steps, worker.actor_id, num_actors)
    return worker.sample()


class InlineTransitionPool:
    num_actors = 0

    def __init__(self, exp, spaces):
        self.worker = RolloutWorker(exp.plugin, **_worker_kwargs(exp, spaces, 0))

    def collect(self, weights: dict | None, version: int, env_steps: int, wait: bool = True) -> list:
        if weights is not None:
            load_published(self.worker, weights, version)
        return [step_worker(self.worker, env_steps, 1)]

    def health(self) -> dict:
        return {"healthy": 1, "restarts": 0}

    def close(self) -> None:
        self.worker.close()


class TransitionActor:
    """The body of a Ray transition actor (decorated with ``ray.remote`` at placement time)."""

    def __init__(self, plugin_target: str, worker_kwargs: dict, num_actors: int):
        import torch

        from rlcore.registry import get_algorithm

        torch.set_num_threads(1)
        self.worker = RolloutWorker(get_algorithm(plugin_target), **worker_kwargs)
        self.num_actors = num_actors

    def sample(self, weights, version: int, env_steps: int) -> Fragment:
        if weights is not None:
            load_published(self.worker, weights, version)
        return step_worker(self.worker, env_steps, self.num_actors)


class RayTransitionPool:
    def __init__(self, exp, spaces):
        import ray

        cfg = exp.config
        self.num_actors = cfg.rollout.num_actors
        self.timeout = cfg.rollout.sample_timeout_s
        init_ray(cfg.ray, self.num_actors * cfg.rollout.num_cpus_per_actor)
        remote_cls = ray.remote(num_cpus=cfg.rollout.num_cpus_per_actor)(TransitionActor)
        self.actors = [remote_cls.remote(exp.plugin_target, _worker_kwargs(exp, spaces, i),
                                         self.num_actors) for i in range(self.num_actors)]
        self.in_flight: dict = {}  # object ref -> actor index
        self._weights_ref, self._version = None, None

    def collect(self, weights: dict | None, version: int, env_steps: int, wait: bool = True) -> list:
        import ray

        if weights is not None and version != self._version:
            self._weights_ref, self._version = ray.put(weights), version
        for i in set(range(len(self.actors))) - set(self.in_flight.values()):
            self._submit(i, env_steps)
        ready, _ = ray.wait(list(self.in_flight), num_returns=1,
                            timeout=self.timeout if wait else 0)
        if wait and not ready:
            raise ClusterError(f"no fragment from the transition actors within "
                               f"rollout.sample_timeout_s={self.timeout:g} s")
        if ready:  # take every other finished one too
            ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        out = []
        for ref in ready:
            i = self.in_flight.pop(ref)
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, RLCoreError):
                    raise exc.cause from None
                raise
            self._submit(i, env_steps)
        return out

    def _submit(self, i: int, env_steps: int) -> None:
        ref = self.actors[i].sample.remote(self._weights_ref, self._version, env_steps)
        self.in_flight[ref] = i

    def health(self) -> dict:
        return {"healthy": len(self.actors), "restarts": 0}

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors, self.in_flight = [], {}


def make_transition_pool(exp, spaces):
    if exp.config.rollout.num_actors > 0:
        return RayTransitionPool(exp, spaces)
    return InlineTransitionPool(exp, spaces)


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
