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
A Ray slot whose actor was lost with its node and that finds no node with room runs inside a
surviving actor until one has (``rlcore.actors.ray_pool``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from rlcore.actors.host import Counters, WorkerHost, slot_bounds  # noqa: F401 (this API)
from rlcore.actors.slots import Slots, WorkerSpec  # noqa: F401  (WorkerSpec: part of this API)
from rlcore.actors.watchdog import EnvHangError
from rlcore.errors import RLCoreError


class InlinePool(Counters):
    """One worker in the driver process, under the run's watchdog when it has one."""

    num_actors = 0

    def __init__(self, spec: WorkerSpec, rcfg, watchdog=None, num_slots: int = 1):
        self.spec, self.watchdog = spec, watchdog
        self._init_counters(num_slots)
        self._weights, self._version = None, None
        self.slots = Slots(num_slots, self._start, self._stop, what=f"{spec.what} worker",
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
        return [self._call(slot, request) for slot, request in enumerate(requests)]

    def stream(self, request_of: Callable[[int], Any], wait: bool = True) -> list:
        return [self._call(slot, request_of(slot)) for slot in range(len(self.slots))]

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


def make_pool(spec: WorkerSpec, cfg, watchdog=None, on_head_lost=None,
              inline_start: bool = False):
    """Ray actors when ``rollout.num_actors > 0``, else one worker inline. On a cluster
    (``ray.address``), ``on_head_lost(message)`` is the run's last word if the driver loses
    the head (``head_watch``). ``inline_start`` (the run's ``rollout.inline_start`` where its
    learner is in the driver): with a local Ray not yet started, the slots step inline while
    Ray and the actors start, which then take over (``rlcore.actors.handover``)."""
    if cfg.rollout.num_actors > 0:
        from rlcore.actors.handover import HandOverPool, can_hand_over
        from rlcore.actors.ray_pool import RayPool

        if inline_start and can_hand_over(cfg):
            inline = InlinePool(spec, cfg.rollout, watchdog, num_slots=cfg.rollout.num_actors)
            return HandOverPool(spec, cfg, inline)
        return RayPool(spec, cfg, on_head_lost=on_head_lost)
    return InlinePool(spec, cfg.rollout, watchdog)


def rollout_pool(exp, spaces, watchdog=None):
    """A pool of ``RolloutWorker``s over the experiment's env (``make_pool`` of
    ``rollout_worker_spec``)."""
    from rlcore.actors.worker import rollout_worker_spec

    return make_pool(rollout_worker_spec(exp, spaces), exp.config, watchdog)
