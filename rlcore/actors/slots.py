"""Restart accounting of a pool's workers: one worker per slot, replaced when it dies, hangs or
crashes, counted from what really happened, and bounded two ways.

- **In a row**: ``max_restarts`` failures of the same slot without a success in between stop
  the run (a worker that cannot start, an env that fails at once).
- **Over a window**: more than ``budget`` replacements (all slots together) within the last
  ``window_s`` seconds stop the run too, so a worker that fails every few seconds forever,
  succeeding in between, cannot keep a run alive at no progress (the same idea as RLlib's
  fault-tolerant actor manager's restart limits).

The pool owns the dispatch (in-process calls or Ray futures); ``Slots`` starts, stops and counts.
"""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from rlcore import seeding
from rlcore.errors import ClusterError

# Seed stream of a replacement worker's envs and policy (seeding's own streams are 1-5), so a
# restarted worker does not replay the episodes its predecessor already delivered.
REPLACEMENT_STREAM = 101


def incarnation_seed(seed: int, slot: int, incarnation: int) -> int:
    """The seed of a slot's worker: the experiment's for the first, a fresh stream for each
    replacement."""
    return seed if incarnation == 0 else seeding.derive(seed, REPLACEMENT_STREAM, slot,
                                                        incarnation)


def split(total: int, parts: int) -> list[int]:
    """``total`` work items over ``parts`` workers as evenly as possible (the first get one
    more): how sub-envs and games are spread over actors, whatever their number."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@dataclass(frozen=True)
class WorkerSpec:
    """What a slot starts: a worker built by ``factory`` ("module:attr", importable in a Ray
    actor) from the keyword arguments of its slot and incarnation."""

    factory: str
    kwargs: Callable[[int, int, bool], dict]  # (slot, incarnation, in_ray) -> keyword arguments
    what: str = "rollout"  # the pools say "rollout actor 1" / "rollout worker"


class Slots:
    """``num`` workers made by ``start(slot, incarnation)`` and ended by ``stop(worker)``."""

    def __init__(self, num: int, start: Callable[[int, int], Any], stop: Callable[[Any], None],
                 *, max_restarts: int, budget: int, window_s: float, what: str = "rollout actor",
                 timeout_key: str = "rollout.sample_timeout_s", clock=time.monotonic,
                 first_incarnation: int = 0):
        self._start, self._stop, self.clock = start, stop, clock
        self.max_restarts, self.budget, self.window_s = max_restarts, budget, window_s
        self.what, self.timeout_key = what, timeout_key
        # the first workers' incarnation: 1 for actors that take over from inline workers
        # (rlcore.actors.handover), so they do not replay the episodes those delivered
        self.incarnation = [first_incarnation] * num
        self.failures_in_a_row = [0] * num
        self.answered = [False] * num  # has the slot's current worker answered once?
        # per replacement {"slot", "cause", "time", ...}; once the slot answers again also
        # "recovered_time" and "recovery_s" (from the failure seen to that answer)
        self.restart_log: list[dict] = []
        self.readmissions: list[dict] = []  # {"slot", "time", "why"} per move(): no failure
        self._open: dict[int, dict] = {}  # slot -> its entry of either list, not answered yet
        self._recent: collections.deque = collections.deque()  # clock() of recent replacements
        self.workers = [start(i, first_incarnation) for i in range(num)]

    def __len__(self) -> int:
        return len(self.workers)

    @property
    def restarts(self) -> int:
        return len(self.restart_log)

    def health(self) -> dict:
        return {"healthy": sum(n == 0 for n in self.failures_in_a_row), "restarts": self.restarts}

    def succeeded(self, slot: int) -> dict | None:
        """The slot answered; returns its entry (of ``restart_log`` or ``readmissions``) if this
        is the first answer since a replacement or a move, with the recovery time set."""
        self.failures_in_a_row[slot] = 0
        self.answered[slot] = True
        entry = self._open.pop(slot, None)
        if entry is not None:
            entry["recovered_time"] = time.time()
            entry["recovery_s"] = round(entry["recovered_time"] - entry["time"], 3)
        return entry

    def replace(self, slot: int, cause: str, **info) -> Any:
        """Stop the slot's worker and start its next incarnation (returned); raises
        ``ClusterError`` when the failure exceeds either bound. ``info`` goes into the slot's
        restart entry (e.g. the node it ran on)."""
        self.failures_in_a_row[slot] += 1
        n = self.failures_in_a_row[slot]
        self._stop(self.workers[slot])
        now = self.clock()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        if n > self.max_restarts:
            raise ClusterError(
                f"{self.what} {slot} failed {n} times in a row (rollout.max_actor_restarts="
                f"{self.max_restarts}); the last time it {cause}. Fix: if it died, look for the "
                "out-of-memory killer or a lost node (`ray status`, the node's logs) and give it "
                f"more memory; if it hung, fix the environment's step() or raise "
                f"{self.timeout_key}; if it raised, fix the error above")
        if len(self._recent) > self.budget:
            raise ClusterError(
                f"{len(self._recent)} {self.what} failures within {self.window_s:g} s "
                f"(rollout.restart_budget={self.budget} per rollout.restart_window_s="
                f"{self.window_s:g}); the last: {self.what} {slot} {cause}. The workers keep "
                "failing between successes: fix the environment (the error above), or raise the "
                "budget if such failures are expected")
        self.incarnation[slot] += 1
        self.answered[slot] = False
        self._open[slot] = {"slot": slot, "cause": cause, "time": time.time(), **info}
        self.restart_log.append(self._open[slot])
        print(f"rlcore: {self.what} {slot} {cause}; replaced (failure {n} in a row, "
              f"{self.restarts} restarts in all)", file=sys.stderr, flush=True)
        self.workers[slot] = self._start(slot, self.incarnation[slot])
        return self.workers[slot]

    def move(self, slot: int, why: str) -> Any:
        """Stop the slot's worker and start its next incarnation where ``start`` now puts it
        (a slot that ran in another actor gets one of its own again); not a failure."""
        self._stop(self.workers[slot])
        self.incarnation[slot] += 1
        self.answered[slot] = False
        self._open[slot] = {"slot": slot, "time": time.time(), "why": why}
        self.readmissions.append(self._open[slot])
        print(f"rlcore: {self.what} {slot} {why}", file=sys.stderr, flush=True)
        self.workers[slot] = self._start(slot, self.incarnation[slot])
        return self.workers[slot]

    def close(self) -> None:
        for w in self.workers:
            self._stop(w)
        self.workers = []
