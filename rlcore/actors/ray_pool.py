"""N rollout (or self-play) workers in Ray actors spread over the cluster's nodes, with the
fault tolerance of ``rlcore.actors.pool`` and what a lost node needs on top of it.

A lost node takes its actors with it. Each lost slot is replaced (``Slots``) where the cluster
has room: when some node has ``rollout.num_cpus_per_actor`` free CPUs, by a new actor (Ray
places it there); when none has, by a *guest*: the slot's next worker runs inside a surviving
actor, between that actor's own requests (same slot, sub-envs, seeds and exploration schedule
as an actor of its own would have; the batch of a round and the replay streams are unchanged,
only slower). While slots run as guests the pool looks for room every ``admit_every_s``; when
a node joins (or CPUs free up) a guest slot gets an actor of its own again, between two of its
requests (re-admission: a new incarnation, not a failure). The number of slots stays
``rollout.num_actors``: a node that joins while no slot is a guest gets no work.

An elastic start (``rollout.min_actors`` < ``num_actors``): the run starts once the cluster has
room for ``min_actors`` actors; the slots beyond the room there is at the start begin as guests
of the first actors and get actors of their own the same way, as nodes join. Slots, not
actors, own the sub-envs, seeds and exploration schedules: a guest delivers what an actor of
its own would (the same fragments, bit for bit); a move starts the slot's envs anew, with fresh
seeds, as every re-admission does.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from rlcore.actors.host import Counters, WorkerHost, slot_bounds
from rlcore.actors.slots import Slots, WorkerSpec


def failure_of(exc: BaseException) -> str | None:
    """What an exception from ``ray.get`` says about the actor, or None if it is the user's
    (an ``RLCoreError`` raised inside the actor), which a replacement cannot fix."""
    import ray

    from rlcore.errors import RLCoreError

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


class Guest:
    """A slot whose worker runs inside another slot's actor (``host``)."""

    def __init__(self, host, host_slot: int, slot: int, kwargs: dict):
        self.host, self.host_slot, self.slot, self.kwargs = host, host_slot, slot, kwargs

    def stop(self) -> None:
        self.host.drop_guest.remote(self.slot)  # a host that is gone took the guest with it


def _stop(worker) -> None:
    import ray

    try:
        if isinstance(worker, Guest):
            worker.stop()
        else:
            ray.kill(worker, no_restart=True)
    except Exception:  # already gone
        pass


class RayPool(Counters):
    """N Ray actors spread over the cluster's nodes (``SPREAD``), one ``WorkerHost`` each."""

    # Added to the timeout for an actor's first answer: start-up on a loaded machine (measured:
    # 1.5-2 s on 2 shared cores with a load average of 11) must not count as a hang.
    start_timeout_s = 60.0
    # How long a replacement waits for freed CPUs to show in Ray's resource view before it
    # becomes a guest. Measured on a local Ray (2 loaded cores): just after a killed actor's
    # error the view shows no free CPU; its CPU shows free 12-80 ms later.
    settle_s = 1.0
    admit_every_s = 2.0  # how often guest slots look for room of their own

    def __init__(self, spec: WorkerSpec, cfg, num_actors: int | None = None,
                 on_head_lost=None, first_incarnation: int = 0):
        from rlcore.actors.head_watch import HeadWatch, gcs_address
        from rlcore.actors.ray_setup import init_ray

        r = cfg.rollout
        self.num_actors = num_actors or r.num_actors
        min_actors = min(r.min_actors or self.num_actors, self.num_actors)
        init_ray(cfg.ray, min_actors * r.num_cpus_per_actor)  # sets Ray's variables first
        self.head_watch = None if cfg.ray.address is None else HeadWatch(
            cfg.ray.address, cfg.ray.connect_timeout_s, on_head_lost,
            target=gcs_address(cfg.ray.address)).start()
        import ray

        strategy = _strategy()
        # in a sweep's placement group the bundles are the trial's: replacements stay there
        self.grouped = strategy != "SPREAD"
        self.remote_cls = ray.remote(num_cpus=r.num_cpus_per_actor, max_restarts=0,
                                     scheduling_strategy=strategy)(WorkerHost)
        self.spec, self.cpus, self.timeout_s = spec, r.num_cpus_per_actor, r.sample_timeout_s
        self._init_counters(self.num_actors)
        self._ref, self._version = None, None
        self.in_flight: dict = {}  # ObjectRef -> (slot, deadline)
        self.next_admit = 0.0
        self._pings = None  # ready(): one call per first actor
        self._guests_at_close: int | None = None  # set by close(): summary.json comes after
        self.slots_first = first_incarnation
        # how many slots start in actors of their own (the rest as guests of those)
        self.own_at_start = self.num_actors
        if min_actors < self.num_actors and not self.grouped:
            room = int(ray.available_resources().get("CPU", 0.0) / self.cpus + 1e-9)
            self.own_at_start = min(self.num_actors, max(min_actors, room))
            if self.own_at_start < self.num_actors:
                first, last = self.own_at_start, self.num_actors - 1
                which = f"slot {first} runs" if first == last else f"slots {first}-{last} run"
                print(f"rlcore: the cluster has room for {first} of {self.num_actors} "
                      f"{spec.what} actors (rollout.min_actors={min_actors}): {which} inside "
                      "them until nodes join", file=sys.stderr, flush=True)
        # the actors started for slots below own_at_start, while Slots starts the first workers
        self._first_actors: list = []
        self.slots = Slots(self.num_actors, self._start, _stop, what=f"{spec.what} actor",
                           first_incarnation=first_incarnation, **slot_bounds(r))
        self._first_actors = []  # the hosts are slots.workers from here on

    @property
    def actors(self) -> list:
        return self.slots.workers

    def guests(self) -> list[int]:
        return [s for s, w in enumerate(self.slots.workers) if isinstance(w, Guest)]

    def health(self) -> dict:
        guests = self._guests_at_close
        return {**super().health(),
                "guest_slots": len(self.guests()) if guests is None else guests}

    def summary(self) -> dict:
        return {**super().summary(), "actor_readmissions": list(self.slots.readmissions)}

    def ready(self) -> bool:
        """Whether every first actor (one per slot; none for a slot that starts as a guest) has
        started (answered a call, or failed: the first round replaces it); never waits."""
        import ray

        if self._pings is None:
            self._pings = [w.version.remote() for w in self.slots.workers
                           if not isinstance(w, Guest)]
        done, _ = ray.wait(self._pings, num_returns=len(self._pings), timeout=0)
        return len(done) == len(self._pings)

    # ------------------------------------------------------------------ placement

    def _start(self, slot: int, incarnation: int):
        """An actor of its own for the slot where the cluster has room (always at the start and
        inside a placement group); else a guest in the surviving actor with fewest guests."""
        kwargs = self.spec.kwargs(slot, incarnation, True)
        if incarnation == self.slots_first and slot >= self.own_at_start:  # elastic start
            host = slot % self.own_at_start
            return Guest(self._first_actors[host], host, slot, kwargs)
        if incarnation == self.slots_first or self.grouped or self._room(self.settle_s):
            actor = self.remote_cls.remote(self.spec.factory, kwargs, True)
            if incarnation == self.slots_first:
                self._first_actors.append(actor)
            return actor
        slots = self.slots
        hosts = [s for s, w in enumerate(slots.workers) if s != slot and
                 not isinstance(w, Guest) and slots.answered[s] and
                 slots.failures_in_a_row[s] == 0]
        if not hosts:  # no actor known alive: a new one waits for a node (or times out)
            return self.remote_cls.remote(self.spec.factory, kwargs, True)
        load = {h: sum(isinstance(w, Guest) and w.host_slot == h for w in slots.workers)
                for h in hosts}
        host = min(hosts, key=lambda h: (load[h], h))
        print(f"rlcore: no node has {self.cpus:g} free CPUs for {slots.what} {slot}: it runs "
              f"in {slots.what} {host} until one has", file=sys.stderr, flush=True)
        return Guest(slots.workers[host], host, slot, kwargs)

    def _room(self, wait_s: float = 0.0) -> bool:
        """Whether the cluster has the CPUs of one more actor free (waiting up to ``wait_s``)."""
        import ray

        deadline = time.monotonic() + wait_s
        while ray.available_resources().get("CPU", 0.0) < self.cpus:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
        return True

    def _admit(self, slot: int) -> None:
        """A guest slot gets an actor of its own again when the cluster has room."""
        now = time.monotonic()
        if not isinstance(self.slots.workers[slot], Guest) or now < self.next_admit:
            return
        slots = self.slots
        if not all(slots.answered[s] for s, w in enumerate(slots.workers)
                   if not isinstance(w, Guest)):
            # an actor that has not answered may not hold its CPUs yet in Ray's resource view
            # (at an elastic start, none has): the room seen could be its own
            return
        self.next_admit = now + self.admit_every_s
        if self._room():
            self.slots.move(slot, "gets an actor of its own again (the cluster has room)")

    # ------------------------------------------------------------------ requests

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
        self._admit(slot)
        worker, answered = self.slots.workers[slot], self.slots.answered[slot]
        if isinstance(worker, Guest):  # its keyword arguments until it has answered once
            ref = worker.host.work.remote(self._ref, self._version, request, slot,
                                          None if answered else worker.kwargs)
        else:
            ref = worker.work.remote(self._ref, self._version, request)
        # an actor's first answer also waits for its process, imports and envs to start
        grace = 0.0 if answered else self.start_timeout_s
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
                self._replace(slot, cause, resubmit)
        now = time.monotonic()
        for ref, (slot, deadline) in list(self.in_flight.items()):
            if now >= deadline:
                del self.in_flight[ref]
                self._replace(slot, f"hung: no answer within rollout.sample_timeout_s="
                                    f"{self.timeout_s:g} s", resubmit)
        return out

    def _replace(self, slot: int, cause: str, resubmit: Callable[[int], Any]) -> None:
        worker = self.slots.workers[slot]
        # where it ran, and how much the other slots delivered since it last answered
        where = {"node": self.nodes[slot],
                 "steps_by_others_since": self.total_steps - self.steps_at_answer[slot]}
        if isinstance(worker, Guest):
            where["guest_of"] = worker.host_slot
        self.slots.replace(slot, cause, **where)
        new = self.slots.workers[slot]
        if isinstance(new, Guest):
            self.slots.restart_log[-1]["runs_in"] = new.host_slot
        self._submit(slot, resubmit(slot))

    def close(self) -> None:
        if self.head_watch is not None:
            self.head_watch.close()
        if self._guests_at_close is None:
            self._guests_at_close = len(self.guests())
        self.slots.close()
        self.in_flight = {}
