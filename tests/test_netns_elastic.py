"""An elastic start on the namespace cluster (``rlcore.testing.netns``): the cluster has a head,
ONE rollout node with one CPU and a node marked ``learner_node``; the run asks for two rollout
actors with ``rollout.min_actors: 1``. It starts with one actor, the second slot running inside
it (a guest), and when a second rollout node joins mid-run the slot gets an actor of its own
there: its fragments come from the new node, nothing counts as a restart, and the run ends at
exactly its budget. PPO (rounds: a batch from every slot) and DQN (streams: whoever delivers).
The time from the node's start to the slot's first fragment there is printed (``pytest -s``).
Needs root and iproute2; one cluster per test."""

import json
import time

import pytest

from test_faults import tb_last
from test_netns_cluster import namespace_cluster_or_skip, rlcore_run
from test_netns_node_loss import PPO, SLOW_ENV, Driver, checkpoint_at, node_id

pytestmark = [pytest.mark.netns, pytest.mark.timeout(900)]
# node 0: the head, no CPUs; 1: the one rollout node at the start; 2: the learner's node
NODES = [{"num_cpus": 0}, {"num_cpus": 1}, {"num_cpus": 0, "resources": {"learner_node": 1}}]
ELASTIC = ["rollout.min_actors=1"]


@pytest.fixture
def cluster():
    with namespace_cluster_or_skip(NODES) as c:
        yield c


def grow_mid_run(cluster, run, argv):
    """Start the run with room for one actor; at its checkpoint of 640 env steps add a rollout
    node. Returns (summary, the driver's output, when the node's start began, node ids)."""
    driver = Driver(cluster, argv)
    try:
        driver.wait_for("the checkpoint of 640 env steps", checkpoint_at(run, 640), 300)
        joined_at = time.time()  # the node's start (add_node returns once it is up)
        joined = cluster.add_node({"num_cpus": 1})
        code = driver.finish(600)
    finally:
        driver.stop()
    out = driver.text()
    assert code == 0, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    nodes = {"first": node_id(cluster, cluster.nodes[1]), "joined": node_id(cluster, joined)}
    return summary, out, joined_at, nodes


def check_growth(summary, out, joined_at, nodes) -> dict:
    assert ("the cluster has room for 1 of 2 rollout actors (rollout.min_actors=1): slot 1 "
            "runs inside them until nodes join") in out
    assert summary["actor_restarts"] == [] and summary["actor_health"]["restarts"] == 0
    [moved] = summary["actor_readmissions"]
    assert moved["slot"] == 1 and moved["recovered_on"] == nodes["joined"]
    assert moved["time"] > joined_at  # not before the node was there
    assert summary["actor_nodes"] == [nodes["first"], nodes["joined"]]
    by_node = summary["env_steps_by_node"]
    assert set(by_node) == {nodes["first"], nodes["joined"]} and min(by_node.values()) > 0
    print(f"\n{summary['algorithm']}: node started -> slot 1's first fragment from its own actor "
          f"there {moved['recovered_time'] - joined_at:.1f} s later; env steps by node "
          f"first/joined: {by_node[nodes['first']]}/{by_node[nodes['joined']]}")
    return by_node


def test_ppo_starts_with_the_room_there_is_and_grows_onto_a_node_that_joins(cluster, tmp_path):
    run, budget = tmp_path / "ppo", 6400
    summary, out, joined_at, nodes = grow_mid_run(cluster, run, rlcore_run(
        cluster, "experiments/ppo_cartpole.yaml", run,
        [*PPO, *SLOW_ENV, *ELASTIC, f"stop.num_env_steps={budget}"]))
    assert summary["stop_reason"] == "num_env_steps"
    assert summary["env_steps"] == budget and summary["updates"] == budget // 64
    by_node = check_growth(summary, out, joined_at, nodes)
    assert sum(by_node.values()) == budget  # every fragment the learner used, by node
    assert tb_last(run, "actors/guest_slots") == 0.0


def test_dqn_starts_with_the_room_there_is_and_grows_onto_a_node_that_joins(cluster, tmp_path):
    run, budget = tmp_path / "dqn", 6400
    summary, out, joined_at, nodes = grow_mid_run(cluster, run, rlcore_run(
        cluster, "experiments/dqn_cartpole.yaml", run,
        ["env.num_envs=2", "rollout.fragment_length=16", "algo.learning_starts=500",
         "algo.hidden_sizes=[32]", *SLOW_ENV, *ELASTIC, f"stop.num_env_steps={budget}"]))
    assert summary["stop_reason"] == "num_env_steps" and summary["env_steps"] == budget
    assert sum(summary["env_steps_by_actor"].values()) == budget
    assert summary["updates"] == int(0.5 * (budget - 500 + 1))
    check_growth(summary, out, joined_at, nodes)
    assert tb_last(run, "actors/guest_slots") == 0.0
