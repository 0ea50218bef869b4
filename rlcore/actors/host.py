"""What runs a worker, in the driver or as the body of a Ray actor (``WorkerHost``), and the
counters both pools report (``Counters``): health, restarts, dropped fragments, nodes."""

from __future__ import annotations

import collections
import importlib
import os
from typing import Any

from rlcore.actors.slots import Slots


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class WorkerHost:
    """Builds a worker and runs its requests: in the driver, or as a Ray actor's body.

    A Ray actor may also run *guests*: the workers of slots whose own actor was lost while no
    node has the CPUs for a new one (``RayPool``). A guest is built from the keyword arguments
    sent with its first request and runs between this actor's own requests."""

    def __init__(self, factory: str, kwargs: dict, in_ray: bool = False):
        if in_ray and kwargs.get("numpy_policy") is None:  # a numpy policy: no torch at all
            import torch

            torch.set_num_threads(1)  # one core per actor: inference on tiny batches
        self.in_ray, self.factory = in_ray, factory
        self.worker = _resolve(factory)(**kwargs)
        self.guests: dict[int, Any] = {}  # slot -> worker

    def work(self, weights, version: int, request, guest: int | None = None,
             guest_kwargs: dict | None = None) -> tuple[Any, int, str | None]:
        """(result, fragments dropped meanwhile, the Ray node id or None inline)."""
        worker = self.worker if guest is None else self._guest(guest, guest_kwargs)
        if weights is not None:
            worker.set_weights(weights, version)
        before = getattr(worker, "dropped", 0)
        result = worker.work(request)
        node = None
        if self.in_ray:
            import ray

            node = ray.get_runtime_context().get_node_id()
        return result, getattr(worker, "dropped", 0) - before, node

    def _guest(self, slot: int, kwargs: dict | None):
        if slot not in self.guests:
            if kwargs is None:  # its first request failed, or it was dropped: start it anew
                raise RuntimeError(f"no guest worker for slot {slot} in this actor")
            self.guests[slot] = _resolve(self.factory)(**kwargs)
        return self.guests[slot]

    def drop_guest(self, slot: int) -> None:
        worker = self.guests.pop(slot, None)
        if worker is not None:
            worker.close()

    def version(self) -> int:
        return self.worker.policy_version

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        for slot in list(self.guests):
            self.drop_guest(slot)
        self.worker.close()


def slot_bounds(rcfg) -> dict:
    return dict(max_restarts=rcfg.max_actor_restarts, budget=rcfg.restart_budget,
                window_s=rcfg.restart_window_s)


class Counters:
    """What both pools report: health, restarts, dropped fragments, nodes."""

    slots: Slots
    dropped: int
    nodes: list  # the Ray node of each slot's last result (None inline)
    num_actors: int

    def _init_counters(self, num: int) -> None:
        self.dropped, self.nodes = 0, [None] * num
        self.steps_by_node: collections.Counter = collections.Counter()  # Ray: env steps
        # env steps delivered in all, and that total at each slot's last answer
        self.total_steps, self.steps_at_answer = 0, [0] * num

    @property
    def restart_log(self) -> list[dict]:
        return self.slots.restart_log

    def health(self) -> dict:
        return {**self.slots.health(), "dropped_fragments": self.dropped}

    def summary(self) -> dict:
        """The actors' part of ``summary.json``."""
        return {"actor_restarts": list(self.restart_log), "actor_health": self.health(),
                "actor_nodes": list(self.nodes),
                "env_steps_by_node": dict(sorted(self.steps_by_node.items()))}

    def sample(self, weights: dict | None, version: int) -> list:
        """The trajectory regime's round in one call: publish ``weights`` (when given) as
        ``version``, then one fragment from every worker."""
        if weights is not None:
            self.publish(weights, version)
        return self.round([None] * max(1, self.num_actors))

    def _count(self, slot: int, out: tuple) -> Any:
        result, dropped, node = out
        recovered = self.slots.succeeded(slot)
        self.dropped += dropped
        self.total_steps += getattr(result, "num_steps", 0)
        self.steps_at_answer[slot] = self.total_steps
        if node is not None:
            self.nodes[slot] = node
            self.steps_by_node[node] += getattr(result, "num_steps", 0)
            if recovered is not None:
                recovered["recovered_on"] = node
        return result
