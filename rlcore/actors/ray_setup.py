"""Starting or joining Ray: a local Ray bound to 127.0.0.1 that contacts no other address, or
an existing cluster at ``ray.address``; and the checks that the cluster can hold what a run asks
for (CPUs for the rollout actors, a node with the learner's resources)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rlcore.errors import ClusterError


def private_ray_home() -> str:
    """A HOME for Ray's processes whose ``ray_bootstrap_config.yaml`` stops the dashboard's
    cloud-metadata probe (169.254.169.254), so a local run contacts no other address. Ray's
    token (``.ray/auth_token``, made by a local ``ray.init``) lives there too."""
    home = Path(tempfile.gettempdir()) / f"rlcore-ray-home-{os.getuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    cfg = home / "ray_bootstrap_config.yaml"
    if not cfg.exists():
        cfg.write_text("{}\n")
    return str(home)


def init_ray(ray_cfg, num_cpus_needed: float, extra: dict | None = None, what: str = "") -> None:
    """Start a loopback-only local Ray, or join ``ray_cfg.address``; check there are enough CPUs
    for the rollout actors and, when ``extra`` (resource name -> amount) is given, a node that
    holds all of ``extra`` for ``what``.

    Call it before this process imports ray: Ray reads the variables set here at import."""
    if ray_cfg.address is None:  # localhost stays 127.0.0.1 (on a cluster: the node's address)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray_cfg.address is not None:  # rlcore's head watch speaks before Ray's fatal exit
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s",
                              str(max(60, int(ray_cfg.connect_timeout_s) + 30)))
    if ray_cfg.address is not None and (os.environ.get("RAY_AUTH_TOKEN")
                                        or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        # A driver that joins a cluster with a token must say so: measured with Ray 2.60, a
        # driver with RAY_AUTH_TOKEN but no RAY_AUTH_MODE is refused by a token cluster.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if not ray.is_initialized():
        if ray_cfg.address is None:
            # Ray reads the variable above when it is first imported; if something imported ray
            # earlier, the constant says "cluster" and 127.0.0.1 would be replaced by the
            # machine's outward address. A local run must stay on loopback, so say it directly.
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
            old_home = os.environ.get("HOME")
            os.environ["HOME"] = private_ray_home()  # inherited by the daemons ray.init starts
            reaper = start_reaper()  # this Ray ends with this process, however it ends
            try:
                # address="local": a new Ray, never one that `ray start` (or RAY_ADDRESS) left
                # for ray.init() to find. Ray 2.60 turns token auth on for it by itself.
                ray.init(address="local", num_cpus=ray_cfg.num_cpus or os.cpu_count(),
                         include_dashboard=False, _node_ip_address="127.0.0.1",
                         log_to_driver=False, logging_level="ERROR", configure_logging=True)
            except BaseException:
                reaper.close()  # it ends what the failed start left, then itself
                raise
            finally:
                if old_home is not None:
                    os.environ["HOME"] = old_home
            reaper.register_ray_processes()
        else:
            _join_cluster(ray_cfg)
    # On a cluster, nodes may still be joining (containers start in any order): wait for them
    # up to ray.connect_timeout_s. A local Ray has all its resources at once.
    deadline = time.monotonic() + (ray_cfg.connect_timeout_s if ray_cfg.address else 0.0)
    waited = f" after waiting {ray_cfg.connect_timeout_s:g} s for nodes" if ray_cfg.address else ""
    available = ray.cluster_resources().get("CPU", 0)
    while num_cpus_needed > available and time.monotonic() < deadline:
        time.sleep(1.0)
        available = ray.cluster_resources().get("CPU", 0)
    if num_cpus_needed > available:
        raise ClusterError(f"the rollout actors need {num_cpus_needed:g} CPUs "
                           f"(rollout.num_actors, or rollout.min_actors where set, x "
                           f"rollout.num_cpus_per_actor) but the Ray cluster has "
                           f"{available:g}{waited}; lower rollout.num_actors, set "
                           "rollout.min_actors to start with fewer actors, or add nodes")
    if extra:
        while not _node_with(extra) and time.monotonic() < deadline:
            time.sleep(1.0)
        if not _node_with(extra):
            have = {k: ray.cluster_resources().get(k, 0) for k in extra}
            asked = ", ".join(f"{v:g} {k}" for k, v in extra.items())
            raise ClusterError(
                f"{what} asks for {asked} on one node, but no node of the Ray cluster has that"
                f"{waited} (the whole cluster has "
                f"{', '.join(f'{v:g} {k}' for k, v in have.items())}); start the learner's node "
                "with them (ray start --num-gpus N / --resources '{...}'), or set "
                "learner.num_gpus: 0 and learner.resources: {} to run the learner in the driver")


class _Reaper:
    """The driver's end of ``rlcore.actors.reaper``: the process and the pipe it watches."""

    def __init__(self, proc: subprocess.Popen | None):
        self.proc = proc
        if proc is not None:  # collect its exit status, so no zombie stays behind it
            threading.Thread(target=proc.wait, name="rlcore-ray-reaper", daemon=True).start()

    def _send(self, text: str) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(text.encode())
                self.proc.stdin.flush()
            except (OSError, ValueError):  # it is gone or closed: nothing to tell it
                pass

    def register_ray_processes(self) -> None:
        """Name the processes ``ray.init`` started (gcs_server, raylet, monitor, dashboard,
        log monitor): the reaper then follows them and what they start, and exits when they
        are gone (``ray.shutdown()``). Without this (a Ray without ``all_processes``), it
        follows whatever this process started after it."""
        try:
            from ray._private import worker

            pids = [info.process.pid for infos in worker._global_node.all_processes.values()
                    for info in infos if info.process is not None]
        except (ImportError, AttributeError, TypeError):  # an internal of Ray that moved:
            # the reaper goes on following what this process started
            return
        self._send("".join(f"root {pid}\n" for pid in pids))

    def close(self) -> None:
        """The driver gives up this Ray: the reaper ends what is left of it, then exits."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


def start_reaper() -> _Reaper:
    """Start ``rlcore.actors.reaper`` for a local Ray this process is about to start: when this
    process is gone (SIGKILL included) or that Ray is shut down, it ends every process of that
    Ray. Linux only (it reads /proc); elsewhere nothing is started."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"):
        return _Reaper(None)
    script = Path(__file__).with_name("reaper.py")
    # -I -S: the standard library only, so it starts in tens of ms; its own session, so a
    # Ctrl-C or a kill of the driver's process group leaves it to do its work; no stdout or
    # stderr of the driver held open after the driver ends
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(script), str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd="/", start_new_session=True)
    return _Reaper(proc)


def _node_with(resources: dict) -> bool:
    """Whether one alive node of the Ray cluster holds all of ``resources``."""
    import ray

    return any(node["Alive"] and all(node["Resources"].get(k, 0) >= v
                                     for k, v in resources.items())
               for node in ray.nodes())


def _join_cluster(ray_cfg) -> None:
    import ray

    errors: list[BaseException] = []

    def connect():
        try:
            ray.init(address=ray_cfg.address, log_to_driver=False, logging_level="ERROR")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(ray_cfg.connect_timeout_s)
    if thread.is_alive() or errors:
        why = f"{type(errors[0]).__name__}: {errors[0]}" if errors else (
            f"no answer within ray.connect_timeout_s={ray_cfg.connect_timeout_s:g} s")
        raise ClusterError(f"cannot join the Ray cluster at ray.address={ray_cfg.address!r} ({why}); "
                           "check that `ray start --head` runs there, the port is reachable, and "
                           "that RAY_AUTH_MODE=token and RAY_AUTH_TOKEN here match the cluster's")
