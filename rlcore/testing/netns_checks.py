"""What ``rlcore.testing.netns`` checks on the host before it builds anything (read only):
whether namespace clusters can be built here, whether the host already uses a subnet, and
whether an address ``ss`` printed is on the test subnet or loopback."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess

# Each node also gets its own PID namespace, as on a machine of its own: a driver finds "its"
# node by listing local raylet processes, and would otherwise take the head's. When the node's
# first process ends, the kernel ends every process of that PID namespace.
_PID_NS = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]


def unavailable() -> str | None:
    """Why namespace clusters cannot be built here, or None when they can."""
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "`ip` (iproute2) or `unshare` (util-linux) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    probe = f"rlcn{os.getpid()}probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add fails here: {made.stderr.strip()}"
    try:  # each node also needs a PID namespace of its own
        pid_ns = subprocess.run(["ip", "netns", "exec", probe, *_PID_NS, "true"],
                                capture_output=True, text=True, timeout=30)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if pid_ns.returncode != 0:
        return f"unshare --pid fails in a network namespace here: {pid_ns.stderr.strip()}"
    return None


def host_uses_subnet(subnet: str) -> bool:
    """Whether an address or route of the host (read only) falls in ``subnet``."""
    net = ipaddress.ip_network(subnet)
    text = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                          text=True).stdout
    text += subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                           text=True).stdout
    for word in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", text):
        other = ipaddress.ip_network(word, strict=False)
        if other.overlaps(net) and other.prefixlen > 0:
            return True
    return False


def in_subnet_or_loopback(endpoint: str, subnet: str) -> bool:
    """Whether an ``ss`` address (``10.213.5.10:6379``, ``[::ffff:10.213.5.10]:6379``,
    ``127.0.0.1:x``) is in ``subnet`` or on loopback; wildcards (``0.0.0.0:*``, ``*:*``) are
    not addresses and do not count."""
    host = endpoint.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
    host = host.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr in ipaddress.ip_network(subnet)
