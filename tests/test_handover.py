"""``rollout.inline_start`` (``rlcore.actors.handover``): the slots step inline in the driver
while Ray and the actors start, and the actors take over once every one has answered. Here
the "Ray side" is a stand-in pool (no Ray: the default suite); ``tests/test_ray.py`` runs the
real one."""

import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from rlcore.actors.handover import START_NICE, HandOverPool, can_hand_over
from rlcore.actors.pool import InlinePool, WorkerSpec

pytestmark = pytest.mark.timeout(60)


class Fragment(SimpleNamespace):
    pass


class StepWorker:
    """A worker whose fragments say which slot, incarnation and weights made them."""

    closed: list = []

    def __init__(self, slot, incarnation, num_steps):
        self.slot, self.incarnation, self.num_steps = slot, incarnation, num_steps
        self.policy_version, self.weights = None, None

    def set_weights(self, weights, version):
        self.weights, self.policy_version = weights, version

    def work(self, request):
        return Fragment(slot=self.slot, incarnation=self.incarnation, num_steps=self.num_steps,
                        weights=self.weights, where="inline")

    def close(self):
        StepWorker.closed.append((self.slot, self.incarnation))


SPEC = WorkerSpec("test_handover:StepWorker",
                  lambda slot, incarnation, in_ray: dict(slot=slot, incarnation=incarnation,
                                                         num_steps=10 * (slot + 1)))
RCFG = SimpleNamespace(max_actor_restarts=3, restart_budget=10, restart_window_s=600.0)
CFG = SimpleNamespace(rollout=SimpleNamespace(num_actors=2, **vars(RCFG)),
                      ray=SimpleNamespace(address=None))


class FakeRemote:
    """A started Ray pool: ready after ``ready_after`` calls of ready()."""

    def __init__(self, ready_after):
        self.ready_after, self.asked, self.published, self.closed = ready_after, 0, [], False

    def ready(self):
        self.asked += 1
        return self.asked > self.ready_after

    def publish(self, weights, version):
        self.published.append((weights, version))

    def round(self, requests):
        weights = self.published[-1][0] if self.published else None
        return [Fragment(slot=s, incarnation=1, num_steps=10 * (s + 1), weights=weights,
                         where="ray") for s in range(len(requests))]

    def summary(self):
        return {"actor_restarts": [], "actor_nodes": ["n1", "n2"],
                "env_steps_by_node": {"n1": 10, "n2": 20}}

    def health(self):
        return {"healthy": 2, "restarts": 0, "guest_slots": 0}

    def close(self):
        self.closed = True


def pool_with(remote, started: threading.Event | None = None):
    def start_remote():
        if started is not None:
            started.wait(10)
        return remote
    inline = InlinePool(SPEC, RCFG, num_slots=2)
    return HandOverPool(SPEC, CFG, inline, start_remote=start_remote)


def test_rounds_run_inline_until_every_actor_answered_then_on_the_actors(capsys):
    StepWorker.closed = []
    remote, started = FakeRemote(ready_after=2), threading.Event()
    pool = pool_with(remote, started)
    pool.publish({"w": 1}, 1)
    first = pool.sample(None, 1)  # Ray not started yet: inline, both slots, their own shares
    assert [(f.where, f.slot, f.incarnation, f.num_steps, f.weights) for f in first] == [
        ("inline", 0, 0, 10, {"w": 1}), ("inline", 1, 0, 20, {"w": 1})]
    assert pool.health()["healthy"] == 2 and pool.summary()["inline_start"] is None
    started.set()
    pool._thread.join(0.1)
    for _ in range(50):  # the thread hands the pool over
        if "pool" in pool._box:
            break
        threading.Event().wait(0.05)
    pool.publish({"w": 2}, 2)
    assert {f.where for f in pool.sample(None, 2)} == {"inline"}  # started, not ready (1)
    assert {f.where for f in pool.sample(None, 2)} == {"inline"}  # not ready (2)
    third = pool.sample(None, 2)  # ready: the actors take over, with the newest weights
    assert [(f.where, f.incarnation, f.weights) for f in third] == [
        ("ray", 1, {"w": 2}), ("ray", 1, {"w": 2})]
    assert remote.published == [({"w": 2}, 2)]
    assert [f.weights for f in pool.sample({"w": 3}, 3)] == [{"w": 3}, {"w": 3}]
    assert sorted(StepWorker.closed) == [(0, 0), (1, 0)]
    summary = pool.summary()
    assert summary["inline_start"]["env_steps"] == 3 * 30  # three inline rounds of 10 + 20
    assert summary["env_steps_by_node"] == {"n1": 10, "n2": 20, "inline": 90}
    assert "take over from the inline workers at 90 env steps" in capsys.readouterr().err
    pool.close()
    assert remote.closed


def test_a_ray_that_fails_to_start_stops_the_run_at_the_next_round():
    StepWorker.closed = []

    def start_remote():
        raise RuntimeError("the Ray cluster has 1 CPUs")

    pool = HandOverPool(SPEC, CFG, InlinePool(SPEC, RCFG, num_slots=2),
                        start_remote=start_remote)
    pool._thread.join(0.5)
    with pytest.raises(RuntimeError, match="has 1 CPUs"):
        pool.sample({"w": 1}, 1)
    assert sorted(StepWorker.closed) == [(0, 0), (1, 0)]


def test_a_pool_closed_before_the_actors_took_over_closes_both():
    StepWorker.closed = []
    remote = FakeRemote(ready_after=100)
    pool = pool_with(remote)
    pool._thread.join(0.5)
    pool.sample({"w": 1}, 1)
    pool.close()
    assert remote.closed and sorted(StepWorker.closed) == [(0, 0), (1, 0)]


def test_only_a_local_ray_not_yet_started_hands_over():
    assert can_hand_over(SimpleNamespace(ray=SimpleNamespace(address=None)))
    assert not can_hand_over(SimpleNamespace(ray=SimpleNamespace(address="10.0.0.1:6379")))


def test_a_run_that_ends_while_ray_starts_waits_for_the_start_and_closes_the_actors():
    """Nothing keeps starting behind a finished run: close() waits for start_remote()."""
    StepWorker.closed = []
    remote, started = FakeRemote(ready_after=100), threading.Event()
    pool = pool_with(remote, started)
    pool.sample({"w": 1}, 1)  # inline: Ray is still starting
    threading.Timer(0.3, started.set).start()
    pool.close()
    assert remote.closed and sorted(StepWorker.closed) == [(0, 0), (1, 0)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_ray_starts_at_a_lower_priority_than_the_run_and_its_processes_inherit_it():
    """The start thread (and a process it starts, as ray.init's are) runs at nice +10 over
    the run's; the run's own thread keeps its priority."""
    seen = {}

    def start_remote():
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["child"] = int(subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"],
                                           capture_output=True, text=True).stdout)
        return FakeRemote(ready_after=100)

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = HandOverPool(SPEC, CFG, InlinePool(SPEC, RCFG, num_slots=2), start_remote=start_remote)
    pool._started.wait(10)
    pool.close()
    expected = min(19, before + START_NICE)
    assert seen == {"thread": expected, "child": expected}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
