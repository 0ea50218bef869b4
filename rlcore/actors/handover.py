"""``rollout.inline_start``: a run with Ray actors on a local Ray steps from its first second.

Starting a local Ray costs seconds (``ray.init`` starts nine processes; measured 2.3 s of wall
time and 3.2 s of CPU on 2 cores, ``benchmarks/ray_startup.py``), and the actors' first answer
comes after that. Meanwhile ``HandOverPool`` runs the same slots inline in the driver (an
``InlinePool`` over ``rollout.num_actors`` slots: each slot's sub-envs, seeds and share of the
round, as its actor would have them), while a thread of its own starts Ray and the actors.
From the first round after every actor has answered a call, the actors take over and the
inline workers are closed; the actors start as incarnation 1 (fresh env seeds), so they do not
replay the episodes the inline workers delivered. The thread that started Ray stays (Ray's
processes end with the thread that started them) until the process ends. That thread runs at a
lower priority (nice +10, ``START_NICE``), and so do the processes it starts (Ray's gcs_server,
raylet and agents at +10; the actors' workers, which Ray itself starts at +15 above the raylet,
at 19, measured with Ray 2.60): on a small machine Ray's start-up takes the CPU the inline steps
and the learner leave, instead of slowing them. Once the actors take over, the learner waits
for their fragments (the trajectory regime) as before, or shares the cores with them (the
streaming regimes), the actors at the lower priority.

Which rounds ran inline depends on timing, so two runs with the same seed may differ: set
``rollout.inline_start: false`` for a Ray run that must repeat bit for bit. Only a local Ray
that is not running yet, and a learner in the driver (a learner in a Ray actor needs Ray
first): ``can_hand_over``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable

from rlcore.actors.slots import WorkerSpec


def can_hand_over(cfg) -> bool:
    """A local Ray that this process has not started yet."""
    ray = sys.modules.get("ray")
    return cfg.ray.address is None and not (ray is not None and ray.is_initialized())


# How much lower the priority of Ray's start is than the run's (a nice increment): Ray's
# processes and the actors they spawn inherit it from the thread that starts them, so on a
# small machine they take the cores the inline workers and the learner leave idle.
START_NICE = 10


def lower_this_threads_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (on Linux a thread's own; the
    processes it starts inherit it); nothing where the platform has no per-thread priority."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + increment)
    except (AttributeError, OSError):  # not Linux, or not permitted: the default priority
        pass


class HandOverPool:
    """The pool interface (``publish``, ``round``, ``stream``, ``sample``, ``health``,
    ``summary``, ``close``) over ``inline`` (an ``InlinePool`` of ``rollout.num_actors``
    slots), then over the Ray pool that ``start_remote()`` builds in a thread (a ``RayPool``
    by default; anything with the pool interface and ``ready()``)."""

    def __init__(self, spec: WorkerSpec, cfg, inline,
                 start_remote: Callable[[], Any] | None = None, clock=time.monotonic):
        self.num_actors = cfg.rollout.num_actors
        self.clock, self.t0 = clock, clock()
        self.inline = inline
        self.remote = None
        self.handover: dict | None = None  # when and where the actors took over
        self._published: tuple | None = None
        self._box: dict = {}
        self._started = threading.Event()  # set once start_remote() returned or raised
        if start_remote is None:
            def start_remote():
                from rlcore.actors.ray_pool import RayPool

                return RayPool(spec, cfg, first_incarnation=1)
        self._thread = threading.Thread(target=self._start, args=(start_remote,),
                                        name="rlcore-ray-start", daemon=True)
        self._thread.start()

    def _start(self, start_remote) -> None:
        lower_this_threads_priority(START_NICE)
        try:
            self._box["pool"] = start_remote()
        except BaseException as exc:  # noqa: BLE001 - raised in the run's thread at its next round
            self._box["error"] = exc
        finally:
            self._started.set()
        threading.Event().wait()  # Ray's processes end with this thread: it stays

    # ------------------------------------------------------------------ which pool

    def _current(self):
        if self.remote is None:
            if "error" in self._box:
                self.inline.close()
                raise self._box.pop("error")
            pool = self._box.get("pool")
            if pool is not None and pool.ready():
                self._take_over(pool)
        return self.active

    @property
    def active(self):
        """The pool the rounds go to now: the actors once they took over, else the inline
        workers."""
        return self.remote if self.remote is not None else self.inline

    def _take_over(self, pool) -> None:
        if self._published is not None:
            pool.publish(*self._published)
        steps, after = self.inline.total_steps, self.clock() - self.t0
        self.handover = {"env_steps": steps, "wall_s": round(after, 3)}
        print(f"rlcore: {self.num_actors} rollout actors ready {after:.1f} s after the start; "
              f"they take over from the inline workers at {steps:,} env steps",
              file=sys.stderr, flush=True)
        self.inline.close()
        self.remote = pool

    # ------------------------------------------------------------------ the pool interface

    def publish(self, weights: dict, version: int) -> None:
        self._published = (weights, version)
        self.active.publish(weights, version)

    def round(self, requests: list) -> list:
        return self._current().round(requests)

    def stream(self, request_of: Callable[[int], Any], wait: bool = True) -> list:
        return self._current().stream(request_of, wait)

    def sample(self, weights: dict | None, version: int) -> list:
        if weights is not None:
            self.publish(weights, version)
        return self.round([None] * self.num_actors)

    def health(self) -> dict:
        return {"guest_slots": 0, **self.active.health()}

    def summary(self) -> dict:
        """The Ray pool's part of summary.json (the inline workers' before it takes over),
        with ``inline_start``: the env steps the inline workers delivered and when the actors
        took over (null while they had not)."""
        out = self.active.summary()
        if self.remote is not None:  # every env step, inline ones under the driver's name
            by_node = dict(out["env_steps_by_node"])
            if self.handover["env_steps"]:
                by_node["inline"] = self.handover["env_steps"]
            out["env_steps_by_node"] = by_node
        return {**out, "inline_start": self.handover}

    @property
    def nodes(self) -> list:
        return self.active.nodes

    def close(self) -> None:
        """The inline workers, and the actors: a run that ended before they took over waits
        for their start to finish (nothing keeps starting behind a finished run), then closes
        them; the local Ray stays up until the process ends, as after any run with actors."""
        if self.remote is not None:
            self.remote.close()
            return
        self.inline.close()
        self._started.wait()
        pool = self._box.get("pool")
        if pool is not None:  # started, never used
            pool.close()
