"""A Ray cluster of real nodes, each in its own network namespace with its own address
(``rlcore.testing.netns``): a head, two rollout nodes and a learner node marked with a custom
resource, and a driver in a namespace of its own that joins with ``ray.address`` as the README
says (``rlcore run FILE --set ray.address=HEAD:6379``). The runs finish with the asked step
count, the actors run on the rollout nodes and the learner on the marked node, ``ss`` in every
namespace shows Ray's TCP connections on the test subnet and loopback only, and the host's own
interfaces, addresses and routes are the same after as before.

Needs root and iproute2: ``make test-netns``. One cluster at a time, one CPU per rollout node."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcore.testing import netns

pytestmark = [pytest.mark.netns, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[1]
RLCORE = str(Path(sys.executable).parent / "rlcore")
# node 0: the head, no CPUs (no actor lands there); 1, 2: rollout nodes; 3: the learner's node
NODES = [{"num_cpus": 0}, {"num_cpus": 1}, {"num_cpus": 1},
         {"num_cpus": 0, "resources": {"learner_node": 1}}]


def namespace_cluster_or_skip(nodes):
    """``netns.namespace_cluster(nodes)``, or the test skipped with the reason where this
    machine cannot build one."""
    why = netns.unavailable()
    if why:
        pytest.skip(f"no network-namespace cluster here: {why}")
    return netns.namespace_cluster(nodes)


@pytest.fixture(scope="module")
def cluster():
    before = host_network()
    with namespace_cluster_or_skip(NODES) as c:
        yield c
    prefix = c.prefix
    assert host_network() == before  # the host's interfaces, addresses and routes untouched
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in left  # every namespace it made is gone


def host_network() -> str:
    return "".join(subprocess.run(["ip", *args], capture_output=True, text=True).stdout
                   for args in (["-o", "addr"], ["-o", "link"], ["route", "show", "table", "all"]))


def run_driver_watching_sockets(cluster, argv, timeout) -> tuple[int, str, list]:
    """The driver's command in its namespace, with ``ss`` read in every namespace each second
    while it runs: (exit code, output, [(namespace, socket row), ...])."""
    log = cluster.root / f"driver-{time.monotonic_ns()}.log"
    seen = []
    with open(log, "w") as out:
        proc = cluster.popen(cluster.driver, cluster.driver_argv(argv), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            for node in [*cluster.nodes, cluster.driver]:
                seen += [(node.ns, row) for row in cluster.sockets(node)]
            time.sleep(1.0)
        if proc.poll() is None:
            netns._killpg(proc, 9)
            proc.wait()
            pytest.fail(f"the driver timed out after {timeout} s:\n{log.read_text()[-3000:]}")
    return proc.returncode, log.read_text(), seen


def check_sockets(cluster, seen) -> dict:
    """Every TCP socket seen has its addresses on the test subnet or loopback (listeners may be
    on the wildcard address); returns, per namespace, the connected sockets seen and the peer
    addresses."""
    bad, report = [], {}
    for ns, row in seen:
        if row["state"] == "LISTEN":
            ok = row["local"].rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]") or \
                netns.in_subnet_or_loopback(row["local"], cluster.subnet)
        else:
            ok = all(netns.in_subnet_or_loopback(row[k], cluster.subnet)
                     for k in ("local", "peer"))
            entry = report.setdefault(ns, {"connected": 0, "peers": set()})
            entry["connected"] += 1
            entry["peers"].add(row["peer"].rsplit(":", 1)[0])
        if not ok:
            bad.append((ns, row))
    assert not bad, f"sockets outside {cluster.subnet} and loopback: {bad[:10]}"
    return report


def node_roles(cluster) -> dict[str, str]:
    """Ray node id -> head / rollout / learner / driver, from the addresses the nodes have."""
    role_of_ip = {cluster.nodes[0].ip: "head", cluster.nodes[1].ip: "rollout",
                  cluster.nodes[2].ip: "rollout", cluster.nodes[3].ip: "learner",
                  cluster.driver.ip: "driver"}
    ids = cluster.node_ids()
    # each node on its own address; a driver's node ends with its driver, so the node of an
    # earlier driver may still be listed as alive for a while (same address, another id)
    assert set(ids.values()) == set(role_of_ip)
    assert sorted(ip for ip in ids.values() if ip != cluster.driver.ip) == sorted(
        n.ip for n in cluster.nodes)
    return {node_id: role_of_ip[ip] for node_id, ip in ids.items()}


def check_run(cluster, seen, summary, env_steps):
    roles = node_roles(cluster)
    actor_nodes = summary["actor_nodes"]
    assert len(actor_nodes) == 2 and len(set(actor_nodes)) == 2  # one actor on each rollout node
    assert {roles[n] for n in actor_nodes} == {"rollout"}
    assert roles[summary["learner_node"]] == "learner"
    if env_steps is not None:
        assert summary["env_steps"] == env_steps
    report = check_sockets(cluster, seen)
    # Ray talked across the bridge: every namespace had connections, each node's to the head
    # (the GCS on HEAD:6379), the driver's also to the rollout and learner nodes
    assert set(report) == {n.ns for n in [*cluster.nodes, cluster.driver]}
    for node in cluster.nodes[1:]:
        assert cluster.head.ip in report[node.ns]["peers"], node.ns
    assert {n.ip for n in cluster.nodes} <= report[cluster.driver.ns]["peers"]
    return report


def show(report) -> str:
    return "; ".join(f"{ns}: {r['connected']} connected, peers {sorted(r['peers'])}"
                     for ns, r in sorted(report.items()))


COMMON = ["rollout.num_actors=2", "learner.resources={learner_node: 1}",
          "learner.torch_threads=1", "stop.eval_return=null", "eval.every_env_steps=0",
          "eval.episodes=1", "logging.progress_every_s=0", "ray.connect_timeout_s=60"]


def rlcore_run(cluster, experiment, run_dir, sets):
    """The README's command for joining a cluster, run in the driver's namespace."""
    argv = [RLCORE, "run", experiment, "--run-dir", str(run_dir),
            "--set", f"ray.address={cluster.address}"]
    for s in COMMON + sets:
        argv += ["--set", s]
    return argv


def test_ppo_actors_on_two_rollout_nodes_learner_on_the_marked_node(cluster, tmp_path):
    run = tmp_path / "ppo"
    code, out, seen = run_driver_watching_sockets(cluster, rlcore_run(
        cluster, "experiments/ppo_cartpole.yaml", run,
        ["env.num_envs=4", "rollout.fragment_length=16", "learner.num_epochs=1",
         "learner.minibatch_size=0", "stop.num_env_steps=512"]), 420)
    assert code == 0, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "num_env_steps"
    # 2 actors x 2 envs x 16 steps = 64 per round: 8 rounds, 8 updates
    assert summary["updates"] == 8
    report = check_run(cluster, seen, summary, 512)
    print(f"\nss: {show(report)}")


def test_dqn_actors_on_two_rollout_nodes_learner_on_the_marked_node(cluster, tmp_path):
    run = tmp_path / "dqn"
    code, out, seen = run_driver_watching_sockets(cluster, rlcore_run(
        cluster, "experiments/dqn_cartpole.yaml", run,
        ["env.num_envs=2", "stop.num_env_steps=1500", "algo.learning_starts=500",
         "algo.hidden_sizes=[32]"]), 420)
    assert code == 0, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "num_env_steps"
    # streamed transitions: the run stops at the first fragment past the budget
    assert summary["env_steps"] >= 1500
    assert sum(summary["env_steps_by_actor"].values()) == summary["env_steps"]
    assert summary["updates"] == int(0.5 * (summary["env_steps"] - 500 + 1))
    report = check_run(cluster, seen, summary, None)
    print(f"\nss: {show(report)}")


def test_address_check_accepts_only_the_subnet_and_loopback():
    subnet = "10.213.7.0/24"
    assert netns.in_subnet_or_loopback("10.213.7.10:6379", subnet)
    assert netns.in_subnet_or_loopback("[::ffff:10.213.7.11]:40000", subnet)
    assert netns.in_subnet_or_loopback("127.0.0.1:5000", subnet)
    assert netns.in_subnet_or_loopback("[::1]:5000", subnet)
    assert not netns.in_subnet_or_loopback("10.213.8.10:6379", subnet)
    assert not netns.in_subnet_or_loopback("169.254.169.254:80", subnet)
    assert not netns.in_subnet_or_loopback("0.0.0.0:*", subnet)


def test_the_kuberay_probes_pass_on_live_nodes_and_fail_where_no_node_runs(cluster):
    """docker/kuberay.yaml's probe commands, run as written (ray-node.sh from docker/) on the
    head and on a rollout node; in the driver's namespace, where no Ray node runs between
    drivers, the same probe fails. The dashboard, which KubeRay's default head probe asks, is
    off: nothing answers on 8265."""
    import yaml

    spec = yaml.safe_load((ROOT / "docker" / "kuberay.yaml").read_text())["spec"]
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    worker = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]

    def probe(node, container, kind):
        command = container[kind]["exec"]["command"]
        assert command[0] == "ray-node.sh"
        return cluster.run(node, ["sh", str(netns.NODE_SCRIPT), *command[1:]],
                           container[kind]["timeoutSeconds"] + 30)

    for kind in ("readinessProbe", "livenessProbe"):
        code, out = probe(cluster.head, head, kind)
        assert code == 0, out[-2000:]
        for node in cluster.nodes[1:]:
            code, out = probe(node, worker, kind)
            assert code == 0, (node.ns, out[-2000:])
        code, out = probe(cluster.driver, worker, kind)
        assert code != 0 and "Connection refused" in out
    dashboard = ("import urllib.request; "
                 "urllib.request.urlopen('http://127.0.0.1:8265/api/gcs_healthz', timeout=3)")
    code, out = cluster.run(cluster.head, [sys.executable, "-c", dashboard], 30)
    assert code != 0 and "Connection refused" in out


def test_namespaces_left_by_a_killed_owner_are_removed_with_their_processes():
    """A cluster whose process was SIGKILLed leaves its namespaces and the processes in them:
    the next cluster's start removes them (the owner's PID is gone); a live owner's stay."""
    why = netns.unavailable()
    if why:
        pytest.skip(f"no network-namespace cluster here: {why}")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID that no longer exists
    stale, live = f"rlcn{gone.pid}n0", f"rlcn{os.getpid()}n9"
    for name in (stale, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "300"])
    try:
        time.sleep(0.5)
        assert netns.namespace_pids(stale) == [sleeper.pid]
        removed = netns.remove_stale()
        assert stale in removed and live not in removed
        assert sleeper.wait(timeout=10) == -9
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert stale not in left and live in left
    finally:
        sleeper.kill()
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_sweep_joins_the_cluster_and_runs_its_trials_on_the_rollout_nodes(cluster, tmp_path):
    """``rlcore sweep`` from the driver's namespace with ``ray.address``: two seeds of an inline
    PPO trial (one CPU each) run on the cluster's two one-CPU rollout nodes (the only nodes
    with CPUs), each trial its own run folder, and the sweep's table lists both seeds."""
    sweep_dir = tmp_path / "sweep"
    argv = [RLCORE, "sweep", "experiments/ppo_cartpole.yaml", "--seeds", "0-1",
            "--sweep-dir", str(sweep_dir)]
    for s in [f"ray.address={cluster.address}", "rollout.num_actors=0", "env.num_envs=2",
              "rollout.fragment_length=64", "learner.num_epochs=1", "learner.minibatch_size=0",
              "learner.torch_threads=1", "stop.num_env_steps=512", "stop.eval_return=null",
              "eval.every_env_steps=0", "eval.episodes=1", "logging.progress_every_s=0",
              "ray.connect_timeout_s=60"]:
        argv += ["--set", s]
    code, out = cluster.run_driver(argv, 420, cwd=ROOT)
    assert code == 0, out[-3000:]
    runs = sorted(p for p in sweep_dir.iterdir() if (p / "summary.json").is_file())
    assert [p.name for p in runs] == ["seed=0", "seed=1"], [p.name for p in runs]
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["stop_reason"] == "num_env_steps" and summary["env_steps"] == 512
    assert "2/2" in (sweep_dir / "summary.md").read_text()
