"""Rollout placement: inline in the driver (``num_actors: 0``) or N Ray actors.

Both pools expose ``sample(weights, version) -> list[Fragment]``; the loop does not know which
it has. A local Ray is started on demand bound to 127.0.0.1; ``ray.address`` joins a cluster.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from rlcore.errors import ClusterError, RLCoreError
from rlcore.ops.normalize import NormSettings
from rlcore.rollout import RolloutWorker


def _worker_kwargs(exp, spaces, actor_id: int) -> dict:
    cfg = exp.config
    return dict(algo_cfg=exp.algo, spaces=spaces, env_id=cfg.env.id, num_envs=cfg.env.num_envs,
                env_kwargs=cfg.env.kwargs, fragment_length=cfg.rollout.fragment_length,
                seed=cfg.seed, actor_id=actor_id, clip_rewards=cfg.env.clip_rewards,
                norm=NormSettings.of(exp))


class InlinePool:
    """One rollout worker in the driver process: the same code path as an actor, no Ray."""

    num_actors = 0

    def __init__(self, exp, spaces):
        self.worker = RolloutWorker(exp.plugin, **_worker_kwargs(exp, spaces, 0))

    def sample(self, weights: dict | None, version: int) -> list:
        if weights is not None:
            self.worker.set_weights(weights, version)
        return [self.worker.sample()]

    def health(self) -> dict:
        return {"healthy": 1, "restarts": 0}

    def close(self) -> None:
        self.worker.close()


def private_ray_home() -> str:
    """A HOME for Ray's processes whose ``ray_bootstrap_config.yaml`` stops the dashboard's
    cloud-metadata probe (169.254.169.254), so a local run contacts no other address."""
    home = Path(tempfile.gettempdir()) / f"rlcore-ray-home-{os.getuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    cfg = home / "ray_bootstrap_config.yaml"
    if not cfg.exists():
        cfg.write_text("{}\n")
    return str(home)


def init_ray(ray_cfg, num_cpus_needed: float) -> None:
    """Start a loopback-only local Ray, or join ``ray_cfg.address``; check there are enough CPUs."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # localhost stays 127.0.0.1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
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
            try:
                ray.init(num_cpus=ray_cfg.num_cpus or os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False,
                         logging_level="ERROR", configure_logging=True)
            finally:
                if old_home is not None:
                    os.environ["HOME"] = old_home
        else:
            _join_cluster(ray_cfg)
    available = ray.cluster_resources().get("CPU", 0)
    if num_cpus_needed > available:
        raise ClusterError(f"the rollout actors need {num_cpus_needed:g} CPUs "
                           f"(rollout.num_actors x rollout.num_cpus_per_actor) but the Ray cluster "
                           f"has {available:g}; lower rollout.num_actors or add nodes")


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
            f"no answer within {ray_cfg.connect_timeout_s:g} s")
        raise ClusterError(f"cannot join the Ray cluster at ray.address={ray_cfg.address!r} ({why}); "
                           "check that `ray start --head` runs there, the port is reachable, and "
                           "RAY_AUTH_TOKEN matches the cluster's token")


class RayPool:
    """N Ray actors, each a ``RolloutWorker``; weights travel once per version via the object store."""

    def __init__(self, exp, spaces):
        import ray

        cfg = exp.config
        self.num_actors = cfg.rollout.num_actors
        self.timeout = cfg.rollout.sample_timeout_s
        init_ray(cfg.ray, self.num_actors * cfg.rollout.num_cpus_per_actor)
        remote_cls = ray.remote(num_cpus=cfg.rollout.num_cpus_per_actor)(RolloutActor)
        target = exp.plugin_target
        self.actors = [remote_cls.remote(target, _worker_kwargs(exp, spaces, i))
                       for i in range(self.num_actors)]
        self._weights_ref = None
        self._version = None

    def sample(self, weights: dict | None, version: int) -> list:
        import ray

        if weights is not None and version != self._version:
            self._weights_ref, self._version = ray.put(weights), version
        refs = [a.sample.remote(self._weights_ref, self._version) for a in self.actors]
        try:
            return ray.get(refs, timeout=self.timeout)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, RLCoreError):
                raise cause from None
            raise
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"no fragment from the rollout actors within "
                               f"rollout.sample_timeout_s={self.timeout:g} s") from None

    def health(self) -> dict:
        return {"healthy": len(self.actors), "restarts": 0}

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []


class RolloutActor:
    """The body of a Ray rollout actor (decorated with ``ray.remote`` at placement time)."""

    def __init__(self, plugin_target: str, worker_kwargs: dict):
        import torch

        from rlcore.registry import get_algorithm

        torch.set_num_threads(1)  # one core per actor: inference on tiny batches
        self.worker = RolloutWorker(get_algorithm(plugin_target), **worker_kwargs)

    def sample(self, weights, version):
        if weights is not None:
            self.worker.set_weights(weights, version)
        return self.worker.sample()


def make_pool(exp, spaces):
    return RayPool(exp, spaces) if exp.config.rollout.num_actors > 0 else InlinePool(exp, spaces)
