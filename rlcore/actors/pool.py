"""The actor layer every regime uses: workers inline in the driver (``num_actors: 0``) or in N
Ray actors, in synchronous rounds or streaming, with the same fault tolerance everywhere.

A worker is any object with ``set_weights(weights, version)``, ``work(request) -> result``,
``policy_version``, ``close()`` and optionally ``dropped`` (fragments dropped for non-finite
values), ``progress()`` and ``describe()`` (for the watchdog). ``WorkerSpec`` names its factory
(``"module:attr"``, so a Ray actor imports it) and the keyword arguments of each slot and
incarnation. ``WorkerHost`` runs it, in the driver or as the body of a Ray actor: the code path
is the same.

    pool.publish(weights, version)        # once per new version; Ray: one object-store put
    pool.round(requests)                  # every slot works once: one result per slot, in order
    pool.stream(request_of, wait)         # one request in flight per slot; the finished results

A worker that dies (SIGKILL, OOM, lost node), hangs (no answer within
``rollout.sample_timeout_s``, plus a start-up grace for a new actor) or raises something other
than an ``RLCoreError`` (those are the user's, re-raised) is replaced by a new incarnation
(``Slots``): it gets the current weights (normalization statistics included) with its first
request, and its exploration schedule from its slot and the request; its partial work is
dropped. Inline, a hang cannot be interrupted from outside: the watchdog stops the run instead.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from typing import Any, Callable

from rlcore.actors.slots import Slots, WorkerSpec  # noqa: F401  (WorkerSpec: part of this API)
from rlcore.actors.watchdog import EnvHangError
from rlcore.errors import RLCoreError


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class WorkerHost:
    """Builds a worker and runs its requests: in the driver, or as a Ray actor's body."""

    def __init__(self, factory: str, kwargs: dict, in_ray: bool = False):
        if in_ray and kwargs.get("numpy_policy") is None:  # a numpy policy: no torch at all
            import torch

            torch.set_num_threads(1)  # one core per actor: inference on tiny batches
        self.in_ray = in_ray
        self.worker = _resolve(factory)(**kwargs)

    def work(self, weights, version: int, request) -> tuple[Any, int, str | None]:
        """(result, fragments dropped meanwhile, the Ray node id or None inline)."""
        if weights is not None:
            self.worker.set_weights(weights, version)
        before = getattr(self.worker, "dropped", 0)
        result = self.worker.work(request)
        node = None
        if self.in_ray:
            import ray

            node = ray.get_runtime_context().get_node_id()
        return result, getattr(self.worker, "dropped", 0) - before, node

    def version(self) -> int:
        return self.worker.policy_version

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.worker.close()


def slot_bounds(rcfg) -> dict:
    return dict(max_restarts=rcfg.max_actor_restarts, budget=rcfg.restart_budget,
                window_s=rcfg.restart_window_s)


class _Counters:
    """What both pools report: health, restarts, dropped fragments, nodes."""

    slots: Slots
    dropped: int
    nodes: list

    @property
    def restart_log(self) -> list[dict]:
        return self.slots.restart_log

    def health(self) -> dict:
        return {**self.slots.health(), "dropped_fragments": self.dropped}

    def sample(self, weights: dict | None, version: int) -> list:
        """The trajectory regime's round in one call: publish ``weights`` (when given) as
        ``version``, then one fragment from every worker."""
        if weights is not None:
            self.publish(weights, version)
        return self.round([None] * max(1, self.num_actors))

    def _count(self, slot: int, out: tuple) -> Any:
        result, dropped, node = out
        self.slots.succeeded(slot)
        self.dropped += dropped
        if node is not None:
            self.nodes[slot] = node
        return result


class InlinePool(_Counters):
    """One worker in the driver process, under the run's watchdog when it has one."""

    num_actors = 0

    def __init__(self, spec: WorkerSpec, rcfg, watchdog=None):
        self.spec, self.watchdog = spec, watchdog
        self.dropped, self.nodes = 0, [None]
        self._weights, self._version = None, None
        self.slots = Slots(1, self._start, self._stop, what=f"{spec.what} worker",
                           **slot_bounds(rcfg))

    def _start(self, slot: int, incarnation: int) -> WorkerHost:
        kwargs = self.spec.kwargs(slot, incarnation, False)
        if self.watchdog is None:
            return WorkerHost(self.spec.factory, kwargs)
        where = f"env.reset() of env '{kwargs.get('env_id', '?')}' while its worker starts"
        with self.watchdog.watch(lambda: 0, lambda: where):
            return WorkerHost(self.spec.factory, kwargs)

    @staticmethod
    def _stop(host: WorkerHost) -> None:
        try:
            host.close()
        except Exception:  # a worker that failed may not close cleanly; it is dropped anyway
            pass

    def publish(self, weights: dict, version: int) -> None:
        self._weights, self._version = weights, version

    def round(self, requests: list) -> list:
        return [self._call(0, requests[0])]

    def stream(self, request_of: Callable[[int], Any], wait: bool = True) -> list:
        return [self._call(0, request_of(0))]

    def _call(self, slot: int, request) -> Any:
        while True:
            host = self.slots.workers[slot]
            fresh = host.version() != self._version
            guarded = self.watchdog is not None and hasattr(host.worker, "progress")
            guard = (self.watchdog.watch(host.worker.progress, host.worker.describe) if guarded
                     else contextlib.nullcontext())
            try:
                with guard:
                    out = host.work(self._weights if fresh else None, self._version, request)
            except EnvHangError:
                self.slots.workers[slot] = _Abandoned()  # its envs may hang again in close()
                raise
            except RLCoreError:
                raise
            except Exception as exc:  # the env or the worker failed: a new one, as a Ray actor
                self.slots.replace(slot, f"raised {type(exc).__name__}: {exc}")
                continue
            return self._count(slot, out)

    def close(self) -> None:
        self.slots.close()


class _Abandoned:
    """Stands in for a worker whose env hung: closing it does nothing."""

    def close(self) -> None:
        pass


def failure_of(exc: BaseException) -> str | None:
    """What an exception from ``ray.get`` says about the actor, or None if it is the user's
    (an ``RLCoreError`` raised inside the actor), which a replacement cannot fix."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        if isinstance(exc.cause, RLCoreError):
            return None
        cause = exc.cause if exc.cause is not None else exc
        return f"raised {type(cause).__name__}: {cause}"
    if isinstance(exc, ray.exceptions.RayActorError):
        return f"died ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return f"failed ({type(exc).__name__}: {exc})"


def _strategy():
    """``SPREAD`` over the cluster's nodes; inside a sweep's trial, the trial's own placement
    group (Tune reserved a bundle per rollout actor there), any of its bundles."""
    from ray.util import get_current_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = get_current_placement_group()
    return "SPREAD" if group is None else PlacementGroupSchedulingStrategy(group)


class RayPool(_Counters):
    """N Ray actors spread over the cluster's nodes (``SPREAD``), one ``WorkerHost`` each."""

    # Added to the timeout for an actor's first answer: start-up on a loaded machine (measured:
    # 1.5-2 s on 2 shared cores with a load average of 11) must not count as a hang.
    start_timeout_s = 60.0

    def __init__(self, spec: WorkerSpec, cfg, num_actors: int | None = None):
        from rlcore.actors.ray_setup import init_ray

        r = cfg.rollout
        self.num_actors = num_actors or r.num_actors
        init_ray(cfg.ray, self.num_actors * r.num_cpus_per_actor)  # sets Ray's variables first
        import ray

        remote_cls = ray.remote(num_cpus=r.num_cpus_per_actor, max_restarts=0,
                                scheduling_strategy=_strategy())(WorkerHost)
        self.timeout_s = r.sample_timeout_s
        self.dropped, self.nodes = 0, [None] * self.num_actors
        self._ref, self._version = None, None
        self.in_flight: dict = {}  # ObjectRef -> (slot, deadline)
        self.slots = Slots(
            self.num_actors, lambda s, i: remote_cls.remote(spec.factory, spec.kwargs(s, i, True),
                                                            True),
            _kill, what=f"{spec.what} actor", **slot_bounds(r))

    @property
    def actors(self) -> list:
        return self.slots.workers

    def publish(self, weights: dict, version: int) -> None:
        import ray

        if version != self._version:
            self._ref, self._version = ray.put(weights), version

    def round(self, requests: list) -> list:
        """Every slot works once; a replaced slot is asked again, so each gives one result."""
        results: dict[int, Any] = {}
        for slot in range(len(self.slots)):
            self._submit(slot, requests[slot])
        while len(results) < len(self.slots):
            for slot, result in self._take(wait=True, resubmit=lambda s: requests[s]):
                results[slot] = result
        return [results[i] for i in range(len(self.slots))]

    def stream(self, request_of: Callable[[int], Any], wait: bool = True) -> list:
        """Whichever results are finished (waiting for one only when ``wait``); every slot that
        has none in flight gets its next request at once, with the newest weights."""
        busy = {slot for slot, _ in self.in_flight.values()}
        for slot in range(len(self.slots)):
            if slot not in busy:
                self._submit(slot, request_of(slot))
        out = []
        while True:
            done = self._take(wait=wait and not out, resubmit=request_of)
            out += [result for _, result in done]
            for slot, _ in done:
                self._submit(slot, request_of(slot))
            if out or not wait:
                return out

    def _submit(self, slot: int, request) -> None:
        ref = self.slots.workers[slot].work.remote(self._ref, self._version, request)
        # an actor's first answer also waits for its process, imports and envs to start
        grace = 0.0 if self.slots.answered[slot] else self.start_timeout_s
        self.in_flight[ref] = (slot, time.monotonic() + self.timeout_s + grace)

    def _take(self, wait: bool, resubmit: Callable[[int], Any]) -> list[tuple[int, Any]]:
        """The finished requests as (slot, result); a failed or overdue slot is replaced and
        its request sent again. Waits (up to the nearest deadline) for one when ``wait``."""
        import ray

        if not self.in_flight:
            return []
        timeout = 0.0
        if wait:
            timeout = max(0.0, min(d for _, d in self.in_flight.values()) - time.monotonic())
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        if ready:  # take every other finished one too
            ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        out = []
        for ref in ready:
            slot, _ = self.in_flight.pop(ref)
            try:
                out.append((slot, self._count(slot, ray.get(ref))))
            except ray.exceptions.RayError as exc:
                cause = failure_of(exc)
                if cause is None:
                    raise exc.cause from None
                self.slots.replace(slot, cause)
                self._submit(slot, resubmit(slot))
        now = time.monotonic()
        for ref, (slot, deadline) in list(self.in_flight.items()):
            if now >= deadline:
                del self.in_flight[ref]
                self.slots.replace(slot, f"hung: no answer within rollout.sample_timeout_s="
                                         f"{self.timeout_s:g} s")
                self._submit(slot, resubmit(slot))
        return out

    def close(self) -> None:
        self.slots.close()
        self.in_flight = {}


def _kill(actor) -> None:
    import ray

    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # already gone
        pass


def make_pool(spec: WorkerSpec, cfg, watchdog=None):
    """Ray actors when ``rollout.num_actors > 0``, else one worker inline."""
    if cfg.rollout.num_actors > 0:
        return RayPool(spec, cfg)
    return InlinePool(spec, cfg.rollout, watchdog)


def rollout_pool(exp, spaces, watchdog=None):
    """A pool of ``RolloutWorker``s over the experiment's env (``make_pool`` of
    ``rollout_worker_spec``)."""
    from rlcore.actors.worker import rollout_worker_spec

    return make_pool(rollout_worker_spec(exp, spaces), exp.config, watchdog)
