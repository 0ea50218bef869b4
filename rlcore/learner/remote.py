"""The learner as a Ray actor, placed by resource request.

With ``learner.num_gpus > 0`` (or ``learner.resources``) the learner does not run in the driver:
it runs in a Ray actor that asks Ray for those resources, so Ray places it on a node that has a
GPU (or the named custom resource) wherever the driver was started. The driver keeps the loop
(sampling, logging, evaluation, checkpoints) and talks to the learner through ``RemoteLearner``,
which has the ``Learner`` methods the trainers call:

    driver                                    learner actor (GPU node)
    pool.sample(...) -> fragments  ------->   learner.update(fragments, progress)
    learner.weights() <---------------------  numpy weights (+ normalization statistics)
    save_checkpoint() <---------------------  state tensors, on the CPU

The counters the driver reads after each call (version, updates, skipped updates, the gradient
noise scale) come back with every call's result, so reading them costs no round trip.
"""

from __future__ import annotations

import dataclasses

from rlcore.errors import ClusterError, RLCoreError, TrainingError
from rlcore.ops.gns import NoiseScale
from rlcore.ops.normalize import NormSettings, RunNormalizer


def learner_resources(cfg) -> dict[str, float]:
    """The resources the learner asks Ray for; empty when it runs in the driver."""
    out = {k: float(v) for k, v in cfg.learner.resources.items()}
    if cfg.learner.num_gpus:
        out["GPU"] = float(cfg.learner.num_gpus)
    return out


def is_remote(cfg) -> bool:
    return bool(learner_resources(cfg))


def build_learner(exp, spaces, device, one_step: bool = False):
    """A ``Learner`` in this process, or, when the experiment asks for learner resources, the
    same learner in a Ray actor that Ray places where those resources are."""
    from rlcore.learner.core import Learner

    if not is_remote(exp.config):
        return Learner(exp, spaces, device, one_step)
    return RemoteLearner(exp, spaces, one_step)


def _cpu(tree):
    """A copy of a (nested) state dict with every tensor on the CPU: the driver may have no GPU."""
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu(v) for v in tree)
    return tree


class LearnerActor:
    """The body of the learner actor (decorated with ``ray.remote`` at placement time)."""

    def __init__(self, plugin_target: str, exp, spaces, one_step: bool):
        import torch

        from rlcore.learner.core import Learner, pick_device
        from rlcore.registry import get_algorithm

        exp = dataclasses.replace(exp, plugin=get_algorithm(plugin_target))
        torch.set_num_threads(exp.config.learner.torch_threads or 1)
        self.learner = Learner(exp, spaces, pick_device(exp.config.learner.device), one_step)

    def status(self) -> dict:
        import ray

        lr = self.learner
        return {"version": lr.version, "updates": lr.updates, "skipped_updates": lr.skipped_updates,
                "gns": lr.gns.state(), "device": str(lr.device),
                "node": ray.get_runtime_context().get_node_id()}

    def call(self, method: str, args: tuple):
        out = getattr(self.learner, method)(*args)
        if method == "state_tensors":
            out = _cpu(out)
        return out, self.status()


class RemoteLearner:
    """A ``Learner`` living in a Ray actor; see the module docstring."""

    def __init__(self, exp, spaces, one_step: bool = False):
        from rlcore.actors.ray_setup import init_ray

        cfg = exp.config
        self.plugin, self.cfg, self.spaces = exp.plugin, exp.algo, spaces
        self.resources = learner_resources(cfg)
        init_ray(cfg.ray, 0, extra=self.resources, what="the learner (learner.num_gpus / "
                 "learner.resources)")
        import ray

        gpus = self.resources.get("GPU", 0.0)
        custom = {k: v for k, v in self.resources.items() if k != "GPU"}
        remote_cls = ray.remote(num_cpus=0, num_gpus=gpus, resources=custom or None,
                                max_restarts=0)(LearnerActor)
        self.actor = remote_cls.remote(exp.plugin_target, dataclasses.replace(exp, plugin=None),
                                       spaces, one_step)
        norm = NormSettings.of(exp)
        self.normalizer = RunNormalizer(norm, spaces.obs_shape) if norm.active else None
        self.timeout_s = cfg.ray.connect_timeout_s
        self._apply(self._get(self.actor.status.remote(), start=True))

    # ------------------------------------------------------------------ plumbing

    def _get(self, ref, start: bool = False):
        import ray

        try:
            return ray.get(ref, timeout=self.timeout_s if start else None)
        except ray.exceptions.GetTimeoutError:
            ray.kill(self.actor)
            raise ClusterError(
                f"the learner actor asking for {self._asked()} was not running after "
                f"{self.timeout_s:g} s (ray.connect_timeout_s): the resources exist but are "
                "taken, or the node cannot start it; free them or lower the learner's "
                "request") from None
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, RLCoreError):  # e.g. device: cuda on a node without CUDA
                raise cause from None
            if isinstance(exc, ray.exceptions.RayActorError):  # its process or node is gone
                raise TrainingError(
                    f"the learner actor ({self._asked()}) failed: {type(exc).__name__}: "
                    f"{(str(exc) or 'died').splitlines()[0]}; its process or its node was lost. "
                    f"A resume needs a node with {self._asked()} in the cluster") from None
            raise TrainingError(f"the learner actor ({self._asked()}) failed: "
                                f"{type(exc).__name__}: {cause or exc}") from None

    def _asked(self) -> str:
        return ", ".join(f"{v:g} {k}" for k, v in self.resources.items())

    def _apply(self, status: dict) -> None:
        self.version, self.updates = status["version"], status["updates"]
        self.skipped_updates = status["skipped_updates"]
        g = status["gns"]
        self.gns = NoiseScale(g["decay"], g["g2"], g["trace"], g["count"])
        self.device, self.node = status["device"], status["node"]

    def _call(self, method: str, *args):
        out, status = self._get(self.actor.call.remote(method, args))
        self._apply(status)
        return out

    # ------------------------------------------------------------------ the Learner's methods

    def weights(self, for_actors: bool = False) -> dict:
        out = self._call("weights", for_actors)
        if self.normalizer is not None:  # the statistics the next evaluation sees
            self.normalizer.load_numpy(out[RunNormalizer.KEY])
        return out

    def update(self, data, progress: float):
        return self._call("update", data, progress)

    def state_tensors(self) -> dict:
        return self._call("state_tensors")

    def load_state_tensors(self, tensors: dict) -> None:
        self._call("load_state_tensors", tensors)

    def meta(self) -> dict:
        return self._call("meta")

    def load_meta(self, meta: dict) -> None:
        self._call("load_meta", meta)

    def policy_for_eval(self, modules: dict, explore: bool):
        """As ``Learner.policy_for_eval``, in the driver: with the statistics of the last
        ``weights()`` call (the trainers load those weights into ``modules`` just before)."""
        from rlcore.learner.core import eval_policy

        return eval_policy(self.plugin, self.cfg, self.spaces, self.normalizer, modules, explore)

    def close(self) -> None:
        import ray

        ray.kill(self.actor)
