"""A Ray cluster of real nodes on this machine, each in its own Linux network namespace with its
own address, for tests and benchmarks (needs root and iproute2).

    bridge namespace   <prefix>br : a bridge br0 and one veth end per node (v0, v1, ...)
    node namespaces    <prefix>n0 (the head), <prefix>n1, ... : lo + eth0 = 10.213.X.(10+i)/24
    driver namespace   <prefix>d  : lo + eth0 = 10.213.X.100/24; each driver there joins a
                                    Ray node with no CPUs (docker/ray-node.sh driver)

Everything is made inside namespaces this helper creates: the host's interfaces, addresses and
routes are only read (to check that the test subnet is not in use), never changed. No namespace
has a default route, so nothing can leave the cluster's subnet. Each node runs
``docker/ray-node.sh`` (the script every image runs: ``ray start --block``) under
``ip netns exec`` in its own process group and its own PID namespace (``unshare --pid``: its
processes see only their node's), with token authentication on and a private HOME (no
cloud-metadata probe). Teardown kills those process groups, then every process left in each
namespace (``ip netns pids``), then deletes the namespaces, also when the body raises;
``ray stop`` (which kills Ray processes by name, other people's too) is never used.

    with namespace_cluster([{"num_cpus": 0}, {"num_cpus": 1}, {"num_cpus": 1},
                            {"num_cpus": 0, "resources": {"learner_node": 1}}]) as cluster:
        rc, out = cluster.run_driver(["rlcore", "run", "x.yaml", "--set",
                                      f"ray.address={cluster.address}"], timeout=300)
        # the driver: ip netns exec <prefix>d ... docker/ray-node.sh driver HEAD:6379 rlcore ...
        killed_at = cluster.crash_node(cluster.nodes[2])   # a machine lost: SIGKILL, by PID
        cluster.add_node({"num_cpus": 1})                    # a machine that joins later
        cluster.cut_link(cluster.nodes[1]); cluster.restore_link(cluster.nodes[1])  # partition
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# the host-side checks, and what each node runs under (a PID namespace of its own)
from rlcore.testing.netns_checks import (  # noqa: F401 (this module's API)
    _PID_NS, host_uses_subnet, in_subnet_or_loopback, unavailable)

PORT = 6379
SUBNET_BASE = "10.213"
# Ray's settings that a caller's environment may carry and that would change how nodes start
# ("localhost mode" makes `ray start --address` refuse to join; RAY_ADDRESS redirects drivers).
NODE_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "ray-node.sh"
_LEFTOVERS = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS", "RAY_AUTH_MODE",
              "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR", "RAY_NODE_IP")


@dataclass
class Node:
    """One namespace with a Ray node: ``ip`` is where the other nodes reach it."""
    ns: str
    ip: str
    tmp: Path
    num_cpus: float = 0
    resources: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    port: str = ""  # its veth end on the bridge

    @property
    def log(self) -> Path:
        return self.tmp / "node.log"


class NamespaceCluster:
    def __init__(self, specs: list[dict], bin_dir: str, prefix: str, subnet_octet: int):
        self.prefix, self.bin_dir = prefix, bin_dir
        self.bridge = f"{prefix}br"
        self.subnet = f"{SUBNET_BASE}.{subnet_octet}.0/24"
        # short (Ray's socket paths have a limit), and named by the owner for remove_stale
        self.root = Path(tempfile.mkdtemp(prefix=f"rlcn-{os.getpid()}-", dir="/tmp"))
        self.token = secrets.token_hex(16)
        mk = lambda name, i, spec: Node(  # noqa: E731
            f"{prefix}{name}", f"{SUBNET_BASE}.{subnet_octet}.{i}", self.root / name,
            spec.get("num_cpus", 0), dict(spec.get("resources", {})))
        self.nodes = [mk(f"n{i}", 10 + i, s) for i, s in enumerate(specs)]
        self.driver = mk("d", 100, {"num_cpus": 0})
        self.made: list[str] = []

    @property
    def head(self) -> Node:
        return self.nodes[0]

    @property
    def address(self) -> str:
        return f"{self.head.ip}:{PORT}"

    def env(self, node: Node) -> dict:
        """The environment of every process in ``node``'s namespace: the cluster's token, the
        node's own HOME (holding ``ray_bootstrap_config.yaml``, so the dashboard does not probe
        the cloud-metadata address) and RAY_TMPDIR (the head's Ray session goes there; a worker
        takes the head's temp dir from the GCS, which on one machine is the same folder), the
        venv's bin first on PATH."""
        home = node.tmp / "home"
        env = {k: v for k, v in os.environ.items() if k not in _LEFTOVERS}
        env.update({"HOME": str(home), "RAY_TMPDIR": str(node.tmp), "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": self.token, "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"})
        return env

    # -- the network ------------------------------------------------------------------------
    def _ip(self, *args: str) -> None:
        out = subprocess.run(["ip", *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")

    def build_network(self) -> None:
        self._ip("netns", "add", self.bridge)
        self.made.append(self.bridge)
        self._ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        self._ip("-n", self.bridge, "link", "set", "br0", "up")
        for node in [*self.nodes, self.driver]:
            self._attach(node)

    def _attach(self, node: Node) -> None:
        """``node``'s namespace, on the bridge with its address."""
        i = len(self.made) - 1  # the bridge's port for it: v0, v1, ...
        node.port = f"v{i}"
        self._ip("netns", "add", node.ns)
        self.made.append(node.ns)
        # both ends are made in the bridge namespace and one moves to the node's: the host's
        # namespace never holds either
        self._ip("-n", self.bridge, "link", "add", f"v{i}", "type", "veth", "peer", "name",
                 "eth0", "netns", node.ns)
        self._ip("-n", self.bridge, "link", "set", f"v{i}", "master", "br0")
        self._ip("-n", self.bridge, "link", "set", f"v{i}", "up")
        self._ip("-n", node.ns, "link", "set", "lo", "up")
        self._ip("-n", node.ns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        self._ip("-n", node.ns, "link", "set", "eth0", "up")
        # IPv4 only: no link-local IPv6 addresses that a process could bind to
        subprocess.run(["ip", "netns", "exec", node.ns, "sh", "-c",
                        "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6"],
                       capture_output=True)
        home = node.tmp / "home"
        home.mkdir(parents=True)
        (home / "ray_bootstrap_config.yaml").write_text("{}\n")

    def cut_link(self, node: Node) -> float:
        """A network partition: ``node``'s port leaves the bridge, so whatever it sends and
        whatever is sent to it is dropped without an answer (its own interface stays up, with
        its address: to its processes the others just stop answering, as when a cable or a
        switch fails). Returns ``time.time()`` of the cut."""
        when = time.time()
        self._ip("-n", self.bridge, "link", "set", node.port, "nomaster")
        return when

    def restore_link(self, node: Node) -> float:
        """The partition healed: ``node``'s port back on the bridge."""
        self._ip("-n", self.bridge, "link", "set", node.port, "master", "br0")
        return time.time()

    # -- processes ---------------------------------------------------------------------------
    def popen(self, node: Node, argv: list[str], **kw) -> subprocess.Popen:
        """``argv`` in ``node``'s namespace, in a new session (its own process group)."""
        env = self.env(node)
        # what docker/ray-node.sh reads
        env.update({"RAY_NODE_IP": node.ip, "RAY_NUM_CPUS": f"{node.num_cpus:g}",
                    "RAY_PORT": str(PORT)})
        if node.resources:
            env["RAY_RESOURCES"] = json.dumps(node.resources)
        return subprocess.Popen(["ip", "netns", "exec", node.ns, *argv], env=env,
                                start_new_session=True, **kw)

    def shell(self, node: Node, line: str, **kw) -> subprocess.Popen:
        """A command line as a user types it on ``node``'s machine (``sh -c line``), in the
        node's namespaces, with only what that machine's shell would hold: the cluster's token
        and ``RAY_NODE_IP`` (the machine's address) set, nothing else of the node's spec."""
        env = {**self.env(node), "RAY_NODE_IP": node.ip}
        return subprocess.Popen(["ip", "netns", "exec", node.ns, *_PID_NS, "sh", "-c", line],
                                env=env, start_new_session=True, **kw)

    def run(self, node: Node, argv: list[str], timeout: float, **kw) -> tuple[int, str]:
        proc = self.popen(node, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc, signal.SIGKILL)
            out, _ = proc.communicate()
            return 124, out + f"\n[timed out after {timeout:g} s]"
        return proc.returncode, out

    def run_driver(self, argv: list[str], timeout: float, **kw) -> tuple[int, str]:
        """``argv`` as a cluster's driver: in the driver's namespace, ``docker/ray-node.sh
        driver HEAD:PORT argv...`` joins a Ray node with no CPUs (a Ray driver runs on a node)
        and runs ``argv``; that node ends with it."""
        return self.run(self.driver, self.driver_argv(argv), timeout, **kw)

    def driver_argv(self, argv: list[str]) -> list[str]:
        return [*_PID_NS, "sh", str(NODE_SCRIPT), "driver", self.address, *argv]

    def start_node(self, node: Node) -> None:
        """``docker/ray-node.sh head`` (or ``worker HEAD:PORT``) in ``node``'s namespace and a
        PID namespace of its own: ``ray start --block`` with the node's address and resources."""
        role = ["head"] if node is self.head else ["worker", self.address]
        with open(node.log, "w") as log:
            node.proc = self.popen(node, [*_PID_NS, "sh", str(NODE_SCRIPT), *role], stdout=log,
                                   stderr=subprocess.STDOUT)

    def wait_started(self, node: Node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = node.log.read_text()
            if "Ray runtime started" in text:
                return
            if node.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the Ray node in {node.ns} ({node.ip}) did not start:\n"
                           f"{node.log.read_text()[-3000:]}")

    def node_ids(self, timeout: float = 120, alive_only: bool = True) -> dict[str, str]:
        """Alive (or, ``alive_only=False``, every) Ray node id -> its address, asked by a
        driver in the driver's namespace (its own node included)."""
        code = ("import json, ray; ray.init(address=%r, logging_level='ERROR', "
                "log_to_driver=False); print('NODES ' + json.dumps({n['NodeID']: "
                "n['NodeManagerAddress'] for n in ray.nodes() if n['Alive'] or %r}))") % (
                    self.address, not alive_only)
        rc, out = self.run_driver([sys.executable, "-c", code], timeout)
        if rc != 0 or "NODES " not in out:
            raise RuntimeError(f"could not list the cluster's nodes:\n{out[-3000:]}")
        return json.loads(out.split("NODES ", 1)[1].splitlines()[0])

    def sockets(self, node: Node) -> list[dict]:
        """The TCP sockets in ``node``'s namespace (``ss -tanp``): state, local, peer, process."""
        out = subprocess.run(["ip", "netns", "exec", node.ns, "ss", "-tanpH"],
                             capture_output=True, text=True).stdout
        rows = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 5:
                rows.append({"state": parts[0], "local": parts[3], "peer": parts[4],
                             "process": " ".join(parts[5:])})
        return rows

    def add_node(self, spec: dict, start_timeout: float = 120) -> Node:
        """A node that joins the running cluster: a new namespace on the bridge (the next
        address) and ``ray-node.sh worker HEAD:PORT`` in it, started."""
        i = len(self.nodes)
        octet = self.subnet.split(".")[2]
        node = Node(f"{self.prefix}n{i}", f"{SUBNET_BASE}.{octet}.{10 + i}",
                    self.root / f"n{i}", spec.get("num_cpus", 0), dict(spec.get("resources", {})))
        self.nodes.append(node)
        self._attach(node)
        self.start_node(node)
        self.wait_started(node, start_timeout)
        return node

    def crash_node(self, node: Node) -> float:
        """A machine lost at once: SIGKILL to every process of ``node``'s namespace (its raylet,
        workers and actors), by PID, with no shutdown of any kind; returns ``time.time()`` of
        the kill. Its namespace stays (``close`` removes it)."""
        pids = namespace_pids(node.ns)
        when = time.time()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.kill_node(node)  # what was starting meanwhile, and the node's process reaped
        return when

    def kill_node(self, node: Node) -> None:
        """End every process of ``node``'s namespace: its process group, then whatever is left
        there (``ip netns pids``), by PID."""
        if node.proc is not None and node.proc.poll() is None:
            _killpg(node.proc, signal.SIGTERM)
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _killpg(node.proc, signal.SIGKILL)
        for _ in range(20):
            pids = namespace_pids(node.ns)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.25)
        if node.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=5)

    def close(self) -> None:
        for node in [self.driver, *reversed(self.nodes)]:
            if node.ns in self.made:
                self.kill_node(node)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made = []
        if not os.environ.get("RLCORE_NETNS_KEEP"):  # set it to read the nodes' Ray logs after
            shutil.rmtree(self.root, ignore_errors=True)


def remove_stale() -> list[str]:
    """Delete the namespaces (and temp dirs) an earlier cluster of this helper left behind
    because its process was killed before its teardown (names ``rlcn<PID>...`` whose PID is
    gone), after killing the processes still in them. Those of a live process are left alone."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    removed = []
    for name in (line.split()[0] for line in out.splitlines() if line.strip()):
        m = re.fullmatch(r"rlcn(\d+)(br|d|n\d+|probe)", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        for pid in namespace_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        removed.append(name)
    for folder in Path("/tmp").glob("rlcn-*-*"):  # their Ray temp dirs
        m = re.fullmatch(r"rlcn-(\d+)-\w+", folder.name)
        if m and not os.path.exists(f"/proc/{m.group(1)}") and folder.owner() == "root":
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def namespace_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # start_new_session: the group's id is the leader's PID


@contextlib.contextmanager
def namespace_cluster(specs: list[dict], bin_dir: str | None = None, start_timeout: float = 120,
                      start: bool = True):
    """Yields a started ``NamespaceCluster``: ``specs[0]`` is the head, each spec
    ``{"num_cpus": N, "resources": {...}}``; a driver namespace (a Ray node with no CPUs) is
    added. With ``start=False`` only the network is built (the caller starts Ray, e.g. with
    ``shell``). Raise ``RuntimeError`` if it cannot be built; check ``unavailable()`` first."""
    remove_stale()
    pid = os.getpid()
    octet = pid % 250 + 1
    if host_uses_subnet(f"{SUBNET_BASE}.{octet}.0/24"):
        raise RuntimeError(f"the host uses {SUBNET_BASE}.{octet}.0/24; not building a cluster "
                           "there")
    cluster = NamespaceCluster(specs, bin_dir or str(Path(sys.executable).parent),
                               f"rlcn{pid}", octet)
    try:
        cluster.build_network()
        if not start:
            yield cluster
            return
        cluster.start_node(cluster.head)
        cluster.wait_started(cluster.head, start_timeout)
        # one after the other: nodes started on one machine share the head's Ray temp dir, and
        # two raylets starting at once there can pick the same socket name
        for node in cluster.nodes[1:]:
            cluster.start_node(node)
            cluster.wait_started(node, start_timeout)
        yield cluster
    finally:
        cluster.close()
