"""A multi-node Ray cluster simulated on this machine, for tests and benchmarks: every node is a
separate raylet on 127.0.0.1 (``ray.cluster_utils.Cluster``), with token authentication on, a
private HOME (no cloud-metadata probe) and a private Ray temp folder (so no other ``ray.init()``
on the machine finds it). Enter it before anything imports ray in the process: Ray reads these
settings once."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile

from rlcore.actors.ray_setup import private_ray_home


@contextlib.contextmanager
def simulated_cluster(num_nodes: int, cpus_per_node: int = 1, last_node: dict | None = None):
    """Yields the ``ray.cluster_utils.Cluster``: ``.address`` (``127.0.0.1:PORT``) goes into
    ``ray.address``; ``.worker_nodes`` and ``.remove_node`` simulate losing a machine.
    ``last_node`` adds node arguments to the last node, e.g. ``{"num_gpus": 1}`` for a GPU node
    (a declared resource: Ray places by it, whether or not CUDA is there)."""
    tmp = tempfile.mkdtemp(prefix="rlc-", dir="/tmp")  # short: Ray's socket paths have a limit
    os.environ.update({
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # "localhost" mode: nodes stay on 127.0.0.1
        "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": tmp, "HOME": private_ray_home(),
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
    })
    from ray.cluster_utils import Cluster

    node = dict(num_cpus=cpus_per_node, node_ip_address="127.0.0.1", include_dashboard=False)
    args = [dict(node) for _ in range(num_nodes)]
    args[-1].update(last_node or {})
    cluster = Cluster(initialize_head=True, head_node_args=args[0])
    try:
        for kw in args[1:]:
            cluster.add_node(**kw)
        yield cluster
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
