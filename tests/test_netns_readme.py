"""The README's "Plain `ray start`" block, run as it stands on the namespace cluster
(``rlcore.testing.netns``, network only): each line in the namespace of the machine its
comment names, in a shell holding only what the README asks a machine's shell to hold (the
cluster's token and ``RAY_NODE_IP``), from a folder laid out like the repository, with ``HEAD``
replaced by the head's address. The driver's line is the README's whole run: PPO CartPole to
its stop criterion, the learner on the machine marked ``learner_node``, one actor on each
rollout machine.

Needs root and iproute2 (``make test-netns``); a module of its own, so that no other cluster
of this process exists meanwhile."""

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from rlcore.testing import netns

pytestmark = [pytest.mark.netns, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MACHINES = ["head", "rollout 1", "rollout 2", "learner", "driver"]


def readme_steps() -> list[tuple[str, str]]:
    """(machine, command) for each line of the block, in order."""
    m = re.search(r"<!-- cluster-steps:start -->\n```sh\n(.*?)```\n<!-- cluster-steps:end -->",
                  README, re.S)
    assert m, "README block cluster-steps missing"
    steps = []
    for line in m.group(1).splitlines():
        command, _, comment = line.rpartition("  # ")
        steps.append((comment.split(":")[0].strip(), command.strip()))
    return steps


def test_the_block_names_each_machine_once():
    steps = readme_steps()
    assert [machine for machine, _ in steps] == MACHINES
    assert all(command for _, command in steps)


def test_the_readme_cluster_steps_run_as_written(tmp_path):
    why = netns.unavailable()
    if why:
        pytest.skip(f"no network-namespace cluster here: {why}")
    work = tmp_path / "checkout"  # what the commands' relative paths need; runs/ lands here
    work.mkdir()
    for name in ("docker", "experiments"):
        (work / name).symlink_to(ROOT / name)
    steps = readme_steps()
    with netns.namespace_cluster([{}, {}, {}, {}], start=False) as cluster:
        machine = dict(zip(MACHINES, [*cluster.nodes, cluster.driver]))
        head = cluster.head.ip
        for name, command in steps[:-1]:
            node = machine[name]
            with open(node.log, "w") as log:
                node.proc = cluster.shell(node, command.replace("HEAD", head), stdout=log,
                                          stderr=subprocess.STDOUT, cwd=work)
            cluster.wait_started(node, 120)
        name, command = steps[-1]
        t0 = time.monotonic()
        proc = cluster.shell(machine[name], command.replace("HEAD", head),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             cwd=work)
        try:
            out, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            netns._killpg(proc, 9)
            out, _ = proc.communicate()
            pytest.fail(f"the README's run did not end within 600 s:\n{out[-3000:]}")
        took = time.monotonic() - t0
        assert proc.returncode == 0, out[-3000:]
        ids = cluster.node_ids(alive_only=False)
    [summary_path] = (work / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    role = {ip: name for name, node in machine.items() for ip in [node.ip]}
    assert summary["stop_reason"] == "eval_return" and summary["eval_return_mean"] >= 500
    assert role[ids[summary["learner_node"]]] == "learner"
    # the rollout machines (the only ones offering CPUs) hold the actors, one each (SPREAD)
    assert sorted(role[ids[n]] for n in summary["actor_nodes"]) == ["rollout 1", "rollout 2"]
    print(f"\nthe README's cluster steps: PPO CartPole eval {summary['eval_return_mean']:.0f} "
          f"at {summary['env_steps']:,} env steps, {took:.0f} s for the driver's line; actors "
          f"on {sorted(role[ids[n]] for n in summary['actor_nodes'])}")
