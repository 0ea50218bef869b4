"""Machines lost and joining while a run goes on, on the namespace cluster
(``rlcore.testing.netns``: a head, two rollout nodes with one CPU each, a learner node marked
``learner_node``; the driver joins with ``ray.address``). A node is lost the hard way: every
process in its namespace (raylet, workers, actors) SIGKILLed by PID, nothing shut down.

- A rollout node lost during a PPO run and during a DQN run: the run goes on on the node
  left. No node has a free CPU for the lost actor, so its slot runs inside the surviving actor
  (a guest: same sub-envs, same batch per update); the run ends at exactly the asked env
  steps, and ``summary.json`` records the loss (the node, the slot, where it ran next, the
  recovery time). In the PPO run a node joins after the loss: the slot gets an actor of its
  own again there, and its fragments come from that node.
- The learner's node lost: the run stops (exit code 3) with the cause and the last checkpoint
  in ``summary.json``; with a new learner node in the cluster, ``rlcore resume`` finishes the
  budget there.
- A partition: a rollout node's link cut (its processes live on) is a loss once Ray's health
  checks say so; healed and restarted, the node takes its slot back. The driver's own link
  cut: it stops within ``ray.connect_timeout_s`` naming the head's address (exit code 3,
  ``summary.json``), and ``rlcore resume`` finishes once the link is back.

The recovery times measured are printed (``pytest -s``). The env is CartPole with a 10 ms sleep
per step (``rlcore.testing.fake_env``), so that the runs last long enough to lose and add nodes in them while
using little CPU. Needs root and iproute2; one cluster per test."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from rlcore.run import checkpoint
from rlcore.testing import netns

from test_faults import tb_last
from test_netns_cluster import NODES, RLCORE, ROOT, namespace_cluster_or_skip, rlcore_run

pytestmark = [pytest.mark.netns, pytest.mark.timeout(900)]
SLOW_ENV = ["env.id=rlcore.testing.fake_env:rlcore-test/SlowCartPole-v1",
            "env.kwargs={step_s: 0.01}",
            "checkpoint.every_env_steps=640"]
PPO = ["env.num_envs=4", "rollout.fragment_length=16", "learner.num_epochs=1",
       "learner.minibatch_size=0"]  # 2 actors x 2 envs x 16 steps: 64 env steps per update


@pytest.fixture
def cluster():
    with namespace_cluster_or_skip(NODES) as c:
        yield c


class Driver:
    """``argv`` as the cluster's driver, in the background, its output in a file."""

    def __init__(self, cluster, argv):
        self.log = cluster.root / f"driver-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = cluster.popen(cluster.driver, cluster.driver_argv(argv), stdout=out,
                                      stderr=subprocess.STDOUT, cwd=ROOT)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, what: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended before {what}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:g} s:\n{self.text()[-3000:]}")
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end within {timeout:g} s:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            netns._killpg(self.proc, 9)
            self.proc.wait()


def checkpoint_at(run: Path, env_steps: int):
    def written() -> bool:
        done = checkpoint.complete_checkpoints(run) if (run / "checkpoints").is_dir() else []
        return any(p.name == f"step_{env_steps:012d}" for p in done)
    return written


def node_id(cluster, node) -> str:
    """The Ray node id of ``node`` (alive or lost)."""
    ids = [i for i, ip in cluster.node_ids(alive_only=False).items() if ip == node.ip]
    assert len(ids) == 1, ids
    return ids[0]


def lose_a_rollout_node(cluster, run, argv, join: bool):
    """Start the run; at its checkpoint of 640 env steps crash rollout node 2; once the lost
    slot runs as a guest, add a rollout node when ``join``. Returns (summary, times, nodes)."""
    driver = Driver(cluster, argv)
    try:
        driver.wait_for("the checkpoint of 640 env steps", checkpoint_at(run, 640), 300)
        lost, kept = cluster.nodes[2], cluster.nodes[1]
        times = {"killed": cluster.crash_node(lost)}
        driver.wait_for("the lost slot running as a guest", lambda: "until one has" in
                        driver.text(), 300)
        joined = None
        if join:
            joined = cluster.add_node({"num_cpus": 1})
            times["joined"] = time.time()
        code = driver.finish(600)
    finally:
        driver.stop()
    assert code == 0, driver.text()[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    nodes = {"lost": node_id(cluster, lost), "kept": node_id(cluster, kept)}
    if joined is not None:
        nodes["joined"] = node_id(cluster, joined)
    return summary, times, nodes


def check_loss(summary, times, nodes) -> dict:
    """The one restart: the lost node's slot, died, hosted by the surviving actor on the node
    left; prints and returns the times from the kill."""
    [entry] = summary["actor_restarts"]
    slot = entry["slot"]
    assert entry["node"] == nodes["lost"] and entry["cause"].startswith("died")
    assert entry["runs_in"] == 1 - slot and entry["recovered_on"] == nodes["kept"]
    assert summary["actor_health"]["restarts"] == 1
    detect, recover = entry["time"] - times["killed"], entry["recovered_time"] - times["killed"]
    assert 0 < detect < recover
    print(f"\n{summary['algorithm']}: node lost -> loss seen by the driver {detect:.1f} s, -> "
          f"first fragment of the lost slot (in the surviving actor) {recover:.1f} s; the "
          f"other slot delivered {entry['steps_by_others_since']} env steps meanwhile")
    return entry


def test_ppo_goes_on_when_a_rollout_node_is_lost_and_readmits_the_slot_on_a_node_that_joins(
        cluster, tmp_path):
    run, budget = tmp_path / "ppo", 6400
    summary, times, nodes = lose_a_rollout_node(cluster, run, rlcore_run(
        cluster, "experiments/ppo_cartpole.yaml", run,
        [*PPO, *SLOW_ENV, f"stop.num_env_steps={budget}"]), join=True)
    assert summary["stop_reason"] == "num_env_steps"
    assert summary["env_steps"] == budget and summary["updates"] == budget // 64
    entry = check_loss(summary, times, nodes)
    slot = entry["slot"]
    # a round waits for every slot: since the lost slot's last answer the other delivered at
    # most two 32-step fragments (the rest of that round's, and the round the loss stopped)
    assert entry["steps_by_others_since"] <= 64
    # the node that joined took the slot back: an actor of its own there, not a restart
    [back] = summary["actor_readmissions"]
    assert back["slot"] == slot and back["recovered_on"] == nodes["joined"]
    assert summary["actor_nodes"][slot] == nodes["joined"]
    assert summary["actor_nodes"][1 - slot] == nodes["kept"]
    by_node = summary["env_steps_by_node"]  # every fragment the learner used, by node
    assert set(by_node) == {nodes["lost"], nodes["kept"], nodes["joined"]}
    assert sum(by_node.values()) == budget and min(by_node.values()) > 0
    assert tb_last(run, "actors/restarts") == 1.0 and tb_last(run, "actors/guest_slots") == 0.0
    print(f"ppo: node joined -> first fragment of the slot in its actor there "
          f"{back['recovered_time'] - times['joined']:.1f} s; env steps by node "
          f"lost/kept/joined: {by_node[nodes['lost']]}/{by_node[nodes['kept']]}/"
          f"{by_node[nodes['joined']]}")


def test_dqn_goes_on_when_a_rollout_node_is_lost(cluster, tmp_path):
    run, budget = tmp_path / "dqn", 6400
    summary, times, nodes = lose_a_rollout_node(cluster, run, rlcore_run(
        cluster, "experiments/dqn_cartpole.yaml", run,
        ["env.num_envs=2", "rollout.fragment_length=16", "algo.learning_starts=500",
         "algo.hidden_sizes=[32]", *SLOW_ENV, f"stop.num_env_steps={budget}"]), join=False)
    assert summary["stop_reason"] == "num_env_steps"
    # 16-step fragments; those finished past the budget are not taken: exactly the budget
    assert summary["env_steps"] == budget
    assert sum(summary["env_steps_by_actor"].values()) == budget
    assert summary["updates"] == int(0.5 * (budget - 500 + 1))
    entry = check_loss(summary, times, nodes)
    # streaming: the surviving actor went on delivering while the loss was not yet seen
    assert entry["steps_by_others_since"] > 0
    assert summary["actor_readmissions"] == []
    assert summary["actor_nodes"] == [nodes["kept"], nodes["kept"]]  # one actor, two slots
    by_node = summary["env_steps_by_node"]
    assert set(by_node) == {nodes["lost"], nodes["kept"]} and sum(by_node.values()) >= budget
    assert tb_last(run, "actors/guest_slots") == 1.0


def test_the_learner_node_lost_stops_the_run_and_resume_finishes_on_a_new_learner_node(
        cluster, tmp_path):
    run, budget = tmp_path / "ppo", 3200
    driver = Driver(cluster, rlcore_run(cluster, "experiments/ppo_cartpole.yaml", run,
                                        [*PPO, *SLOW_ENV, f"stop.num_env_steps={budget}"]))
    try:
        driver.wait_for("the checkpoint of 1280 env steps", checkpoint_at(run, 1280), 300)
        killed = cluster.crash_node(cluster.nodes[3])
        code = driver.finish(300)
        stopped_s = time.time() - killed
    finally:
        driver.stop()
    out = driver.text()
    assert code == 3, out[-3000:]  # a run that failed after it started
    assert "the learner actor (1 learner_node) failed" in out and "node was lost" in out
    assert f"continue with: rlcore resume {run}" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and "the learner actor" in summary["error"]
    # no checkpoint could be written without the learner: the last one written before stays
    last = checkpoint.complete_checkpoints(run)[-1]
    assert summary["checkpoint"] is None and summary["last_checkpoint"] == str(last)
    assert f"the last checkpoint: {last}" in out
    message = next(line for line in out.splitlines() if line.startswith("error:"))
    print(f"\nlearner node lost -> the driver exited (code 3) after {stopped_s:.1f} s, "
          f"at {summary['env_steps']} env steps; last checkpoint {last.name}\n{message}")

    learner = cluster.add_node({"num_cpus": 0, "resources": {"learner_node": 1}})
    code, out = cluster.run_driver([RLCORE, "resume", str(run)], 420, cwd=ROOT)
    assert code == 0, out[-3000:]
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["stop_reason"] == "num_env_steps"
    assert resumed["env_steps"] == budget and resumed["updates"] == budget // 64
    assert resumed["resumed_from"]["checkpoint"] == str(last)
    assert resumed["learner_node"] == node_id(cluster, learner)


def test_ppo_goes_on_through_a_partition_and_readmits_the_cut_off_node_when_it_comes_back(
        cluster, tmp_path):
    """Rollout node 2's link cut mid-run (packets dropped, no process killed): Ray's health
    checks declare the node dead, its slot runs as a guest on node 1; the link healed, the
    node's raylet learns it was declared dead and ends, its supervisor (here the test, as an
    orchestrator would) starts Ray there again, and the slot gets an actor of its own back on
    the same machine (same address, a new node id)."""
    run, budget = tmp_path / "ppo", 12800
    cut = cluster.nodes[2]
    driver = Driver(cluster, rlcore_run(cluster, "experiments/ppo_cartpole.yaml", run,
                                        [*PPO, *SLOW_ENV, f"stop.num_env_steps={budget}"]))
    try:
        driver.wait_for("the checkpoint of 640 env steps", checkpoint_at(run, 640), 300)
        before = node_id(cluster, cut)
        times = {"cut": cluster.cut_link(cut)}
        driver.wait_for("the cut-off slot running as a guest", lambda: "until one has" in
                        driver.text(), 300)
        cluster.restore_link(cut)
        # the node's own Ray gives up once it hears it was declared dead
        deadline = time.monotonic() + 120
        while cut.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        ended_by_itself = cut.proc.poll() is not None
        cluster.kill_node(cut)  # whatever is left of the old node
        cluster.start_node(cut)
        cluster.wait_started(cut, 120)
        times["back"] = time.time()
        code = driver.finish(600)
    finally:
        driver.stop()
    assert code == 0, driver.text()[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "num_env_steps"
    assert summary["env_steps"] == budget and summary["updates"] == budget // 64
    after = [i for i, ip in cluster.node_ids().items() if ip == cut.ip]
    assert len(after) == 1 and after[0] != before
    [entry] = summary["actor_restarts"]
    slot = entry["slot"]
    assert entry["node"] == before and entry["runs_in"] == 1 - slot
    assert entry["cause"].startswith(("died", "hung")), entry["cause"]
    detect = entry["time"] - times["cut"]
    [back] = summary["actor_readmissions"]
    assert back["slot"] == slot and back["recovered_on"] == after[0]
    assert summary["actor_nodes"][slot] == after[0]
    by_node = summary["env_steps_by_node"]
    assert by_node[after[0]] > 0 and sum(by_node.values()) == budget
    print(f"\nppo: link cut -> loss seen by the driver {detect:.1f} s ({entry['cause']}); "
          f"the node's Ray ended by itself after the link healed: {ended_by_itself}; node "
          f"back -> first fragment of the slot there {back['recovered_time'] - times['back']:.1f}"
          f" s; env steps by node: {by_node}")


def test_a_driver_cut_off_from_the_head_stops_within_the_timeout_and_resumes_after(
        cluster, tmp_path):
    """The driver's own link cut mid-run: within ray.connect_timeout_s (plus a probe period)
    it stops, exit code 3, with a message naming the head's address and summary.json holding
    the cause and the last checkpoint; nothing is left waiting on a Ray call that cannot be
    answered. The link healed, ``rlcore resume`` finishes the budget."""
    run, budget, timeout_s = tmp_path / "ppo", 3200, 20
    driver = Driver(cluster, rlcore_run(cluster, "experiments/ppo_cartpole.yaml", run, [
        *PPO, *SLOW_ENV, f"stop.num_env_steps={budget}", f"ray.connect_timeout_s={timeout_s}"]))
    try:
        driver.wait_for("the checkpoint of 1280 env steps", checkpoint_at(run, 1280), 300)
        cut = cluster.cut_link(cluster.driver)
        code = driver.finish(timeout_s + 60)
        stopped_s = time.time() - cut
    finally:
        driver.stop()
        cluster.restore_link(cluster.driver)
    out = driver.text()
    assert code == 3, out[-3000:]
    assert timeout_s <= stopped_s < timeout_s + 10, stopped_s
    assert (f"lost contact with the Ray head at ray.address={cluster.address}: no connection "
            f"accepted for {timeout_s} s (ray.connect_timeout_s)") in out
    assert f"continue with: rlcore resume {run}" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and summary["checkpoint"] is None
    assert summary["error"].startswith("ClusterError: lost contact with the Ray head")
    last = checkpoint.complete_checkpoints(run)[-1]
    assert summary["last_checkpoint"] == str(last) and summary["env_steps"] >= 1280
    print(f"\ndriver cut off -> it exited (code 3) after {stopped_s:.1f} s "
          f"(ray.connect_timeout_s={timeout_s}); last checkpoint {last.name}")

    code, out = cluster.run_driver([RLCORE, "resume", str(run)], 600, cwd=ROOT)
    assert code == 0, out[-3000:]
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["stop_reason"] == "num_env_steps" and resumed["env_steps"] == budget
    assert resumed["resumed_from"]["checkpoint"] == str(last)
