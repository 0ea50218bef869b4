"""Rollout placement: inline in the driver (``num_actors: 0``) or N Ray actors, and the fault
tolerance of those actors.

Both pools expose ``sample(weights, version) -> list[Fragment]``; the loop does not know which
it has. A local Ray is started on demand bound to 127.0.0.1; ``ray.address`` joins a cluster
(both in ``rlcore.actors.ray_setup``), where the actors are spread over the nodes (``SPREAD`` scheduling). The learner runs in the
driver, or, when it asks for resources (``learner.num_gpus`` / ``learner.resources``), in a Ray
actor placed where they are (``rlcore.learner.remote``).

``ActorSlots`` is the fault-tolerance piece every driver with Ray actors can use: it keeps one
actor per slot, replaces an actor that died (SIGKILL, OOM, lost node), hung (no answer within a
timeout) or crashed, counts the replacements, and stops the run with a ``ClusterError`` naming
the slot, the failure and the fix after ``max_restarts`` failures of the same slot in a row.
"""

from __future__ import annotations

import os
import sys
import time

from rlcore import seeding
from rlcore.errors import ClusterError, EnvRuntimeError, NonFiniteEnvError, RLCoreError
from rlcore.ops.normalize import NormSettings
from rlcore.actors.ray_setup import init_ray
from rlcore.actors.worker import RolloutWorker

# Seed stream of a replacement actor's envs and policy (seeding's own streams are 1-5), so a
# restarted actor does not replay the episodes its predecessor already delivered.
REPLACEMENT_STREAM = 101


def _worker_kwargs(exp, spaces, actor_id: int, incarnation: int = 0) -> dict:
    cfg = exp.config
    seed = cfg.seed if incarnation == 0 else seeding.derive(cfg.seed, REPLACEMENT_STREAM, actor_id,
                                                            incarnation)
    return dict(algo_cfg=exp.algo, spaces=spaces, env_id=cfg.env.id, num_envs=cfg.env.num_envs,
                env_kwargs=cfg.env.kwargs, fragment_length=cfg.rollout.fragment_length,
                seed=seed, actor_id=actor_id, clip_rewards=cfg.env.clip_rewards,
                norm=NormSettings.of(exp))


def sample_fragment(worker: RolloutWorker, nonfinite: str, max_drops: int, env_id: str):
    """``worker.sample()`` under the ``rollout.nonfinite`` policy; returns (fragment, drops).

    ``stop``: a NaN/inf observation or reward raises the worker's located ``EnvRuntimeError``.
    ``drop``: the fragment is dropped, the worker's sub-envs are reset (the episodes in progress
    are lost) and it samples again; ``max_drops`` drops in a row stop the run."""
    drops = 0
    while True:
        try:
            return worker.sample(), drops
        except NonFiniteEnvError as exc:
            if nonfinite != "drop":
                raise EnvRuntimeError(f"env '{env_id}': {exc} (rollout.nonfinite=stop; set it to "
                                      "drop to drop such fragments and go on)") from None
            drops += 1
            if drops >= max_drops:
                raise EnvRuntimeError(
                    f"env '{env_id}': {drops} fragments in a row dropped for non-finite values "
                    f"(rollout.max_nonfinite_drops={max_drops}); the last: {exc}") from None
            print(f"rlcore: dropped a fragment: env '{env_id}': {exc}", file=sys.stderr, flush=True)
            worker.reset_envs()


class InlinePool:
    """One rollout worker in the driver process: the same code path as an actor, no Ray."""

    num_actors = 0

    def __init__(self, exp, spaces):
        self.worker = RolloutWorker(exp.plugin, **_worker_kwargs(exp, spaces, 0))
        r = exp.config.rollout
        self._policy = (r.nonfinite, r.max_nonfinite_drops, exp.config.env.id)
        self.dropped = 0
        self.restart_log: list[dict] = []

    def sample(self, weights: dict | None, version: int) -> list:
        if weights is not None:
            self.worker.set_weights(weights, version)
        frag, drops = sample_fragment(self.worker, *self._policy)
        self.dropped += drops
        return [frag]

    def health(self) -> dict:
        return {"healthy": 1, "restarts": 0, "dropped_fragments": self.dropped}

    def close(self) -> None:
        self.worker.close()


class ActorSlots:
    """``num`` Ray actors, one per slot, made by ``factory(slot, incarnation)``; any actor that
    dies, hangs or crashes is replaced by a new incarnation.

    ``call(method, *args)`` runs ``method`` on every slot and returns the results in slot order.
    A slot whose actor died (its partial work is lost), raised an exception other than an
    ``RLCoreError`` (those are the user's and are re-raised), or gave no answer within
    ``timeout_s`` (plus ``start_timeout_s`` for a new actor's first answer; the actor is
    killed) gets a new actor, which is asked again with the same
    arguments, so a round always returns one result per slot. ``max_restarts`` failures of the
    same slot in a row raise ``ClusterError``. Drivers that stream (no rounds) use ``replace``,
    ``succeeded`` and ``failure_of`` directly."""

    # Added to ``timeout_s`` for an actor's first call: start-up on a loaded machine (measured:
    # 1.5-2 s on 2 shared cores with a load average of 11) must not count as a hang.
    start_timeout_s = 60.0

    def __init__(self, factory, num: int, timeout_s: float, max_restarts: int,
                 what: str = "rollout actor", timeout_key: str = "rollout.sample_timeout_s",
                 restarts_key: str = "rollout.max_actor_restarts"):
        self.factory, self.timeout_s, self.max_restarts = factory, timeout_s, max_restarts
        self.what, self.timeout_key, self.restarts_key = what, timeout_key, restarts_key
        self.incarnation = [0] * num
        self.failures_in_a_row = [0] * num
        self.answered = [False] * num  # has the slot's current actor answered once?
        self.restart_log: list[dict] = []  # {"slot", "cause", "time"} per replacement
        self.actors = [factory(i, 0) for i in range(num)]

    # ------------------------------------------------------------ health

    @property
    def restarts(self) -> int:
        return len(self.restart_log)

    def health(self) -> dict:
        return {"healthy": sum(n == 0 for n in self.failures_in_a_row), "restarts": self.restarts}

    def succeeded(self, slot: int) -> None:
        self.failures_in_a_row[slot] = 0
        self.answered[slot] = True

    @staticmethod
    def failure_of(exc: BaseException) -> str | None:
        """What an exception from ``ray.get`` says about the actor, or None if it is the
        user's (an ``RLCoreError`` raised inside the actor), which a replacement cannot fix."""
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            if isinstance(exc.cause, RLCoreError):
                return None
            cause = exc.cause if exc.cause is not None else exc
            return f"raised {type(cause).__name__}: {cause}"
        if isinstance(exc, ray.exceptions.RayActorError):
            return f"died ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return f"failed ({type(exc).__name__}: {exc})"

    def replace(self, slot: int, cause: str) -> None:
        """Kill the slot's actor and start the next incarnation; raises ``ClusterError`` after
        ``max_restarts`` failures in a row."""
        import ray

        self.failures_in_a_row[slot] += 1
        n = self.failures_in_a_row[slot]
        with _quiet():
            ray.kill(self.actors[slot], no_restart=True)
        if n > self.max_restarts:
            raise ClusterError(
                f"{self.what} {slot} failed {n} times in a row ({self.restarts_key}="
                f"{self.max_restarts}); the last time it {cause}. Fix: if it died, look for the "
                "out-of-memory killer or a lost node (`ray status`, the node's logs) and give it "
                f"more memory; if it hung, fix the environment's step() or raise "
                f"{self.timeout_key}; if it raised, fix the error above")
        self.incarnation[slot] += 1
        self.answered[slot] = False
        self.restart_log.append({"slot": slot, "cause": cause, "time": time.time()})
        print(f"rlcore: {self.what} {slot} {cause}; replaced (failure {n} in a row, "
              f"{self.restarts} restarts in all)", file=sys.stderr, flush=True)
        self.actors[slot] = self.factory(slot, self.incarnation[slot])

    # ------------------------------------------------------------ rounds

    def call(self, method: str, *args) -> list:
        import ray

        results: dict[int, object] = {}
        pending: dict = {}  # ObjectRef -> (slot, deadline)

        def submit(slot):
            ref = getattr(self.actors[slot], method).remote(*args)
            # an actor's first answer also waits for its process, imports and envs to start
            grace = 0.0 if self.answered[slot] else self.start_timeout_s
            pending[ref] = (slot, time.monotonic() + self.timeout_s + grace)

        for slot in range(len(self.actors)):
            submit(slot)
        while pending:
            wait_s = max(0.0, min(d for _, d in pending.values()) - time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
            for ref in ready:
                slot, _ = pending.pop(ref)
                try:
                    results[slot] = ray.get(ref)
                    self.succeeded(slot)
                except ray.exceptions.RayError as exc:
                    cause = self.failure_of(exc)
                    if cause is None:
                        raise exc.cause from None
                    self.replace(slot, cause)
                    submit(slot)
            now = time.monotonic()
            for ref, (slot, deadline) in list(pending.items()):
                if now >= deadline:
                    del pending[ref]
                    self.replace(slot, f"hung: no answer within {self.timeout_key}="
                                       f"{self.timeout_s:g} s")
                    submit(slot)
        return [results[i] for i in range(len(self.actors))]

    def close(self) -> None:
        import ray

        for a in self.actors:
            with _quiet():
                ray.kill(a, no_restart=True)
        self.actors = []


class _quiet:
    """Ignore errors killing an actor that is already gone."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], Exception)


class RayPool:
    """N Ray rollout actors spread over the cluster's nodes, each a ``RolloutWorker``; weights
    travel once per version via the object store, and a replaced actor gets them (normalization
    statistics included: they are part of the weights dict) with its first request."""

    def __init__(self, exp, spaces):
        cfg = exp.config
        r = cfg.rollout
        self.num_actors = r.num_actors
        init_ray(cfg.ray, self.num_actors * r.num_cpus_per_actor)  # sets Ray's variables first
        import ray

        remote_cls = ray.remote(num_cpus=r.num_cpus_per_actor, max_restarts=0,
                                scheduling_strategy="SPREAD")(RolloutActor)
        target = exp.plugin_target
        policy = (r.nonfinite, r.max_nonfinite_drops, cfg.env.id)

        def factory(slot, incarnation):
            return remote_cls.remote(target, _worker_kwargs(exp, spaces, slot, incarnation), policy)

        self.slots = ActorSlots(factory, self.num_actors, r.sample_timeout_s, r.max_actor_restarts)
        self.dropped = 0
        self.nodes: list[str] = []  # the Ray node id of each actor, as of the last sample
        self._weights_ref = None
        self._version = None

    @property
    def actors(self) -> list:
        return self.slots.actors

    @property
    def restart_log(self) -> list[dict]:
        return self.slots.restart_log

    def sample(self, weights: dict | None, version: int) -> list:
        import ray

        if weights is not None and version != self._version:
            self._weights_ref, self._version = ray.put(weights), version
        out = self.slots.call("sample", self._weights_ref, self._version)
        self.dropped += sum(drops for _, drops, _ in out)
        self.nodes = [node for _, _, node in out]
        return [frag for frag, _, _ in out]

    def health(self) -> dict:
        return {**self.slots.health(), "dropped_fragments": self.dropped}

    def close(self) -> None:
        self.slots.close()


class RolloutActor:
    """The body of a Ray rollout actor (decorated with ``ray.remote`` at placement time)."""

    def __init__(self, plugin_target: str, worker_kwargs: dict, nonfinite_policy: tuple):
        import torch

        from rlcore.registry import get_algorithm

        torch.set_num_threads(1)  # one core per actor: inference on tiny batches
        self.worker = RolloutWorker(get_algorithm(plugin_target), **worker_kwargs)
        self.nonfinite_policy = nonfinite_policy

    def sample(self, weights, version):
        """(fragment, fragments dropped for non-finite values, this actor's Ray node id)."""
        import ray

        if weights is not None:
            self.worker.set_weights(weights, version)
        frag, drops = sample_fragment(self.worker, *self.nonfinite_policy)
        return frag, drops, ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()


def make_pool(exp, spaces):
    return RayPool(exp, spaces) if exp.config.rollout.num_actors > 0 else InlinePool(exp, spaces)
