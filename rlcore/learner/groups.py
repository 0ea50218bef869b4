"""Optimizer groups: named sets of modules, each with its own Adam and settings, stepped only
by the loss term of the same name.

A plugin declares ``optimizer_groups={"critic": ("q1", "q2"), "actor": ("policy",)}`` and its
``loss`` returns ``{"critic": ..., "actor": ...}``; each term's gradient is taken with respect to
its group's parameters only (``torch.autograd.grad``), so an actor loss through Q(s, pi(s))
cannot move the critic, whatever the plugin author detaches. A group whose term is missing
from an update (a delayed actor step) is not stepped. Settings per group come from
``learner.groups.<name>`` (lr, lr_schedule, adam_eps, max_grad_norm), falling back to the
``learner:`` values.

Without declared groups there is one group over every parameter and the loss terms are summed:
the plain case, as short as ever for PPO and friends.
"""

from __future__ import annotations

import math

import torch

from rlcore.errors import TrainingError
from rlcore.ops.schedule import scheduled

DEFAULT = "all"


class Groups:
    def __init__(self, plugin, modules: dict, lcfg, algo_cfg=None):
        groups = plugin.optimizer_groups
        self.declared = dict((groups(algo_cfg) if callable(groups) else groups) or {})
        every = list({id(p): p for m in modules.values() for p in m.parameters()}.values())
        if not self.declared:
            self.params = {DEFAULT: every}
        else:
            self.params = {}
            for name, module_names in self.declared.items():
                missing = [m for m in module_names if m not in modules]
                if missing:
                    raise TrainingError(
                        f"{plugin.name}: optimizer group '{name}' names modules {missing} that "
                        f"make_modules does not return (it returns {', '.join(modules)})")
                self.params[name] = list({id(p): p for m in module_names
                                          for p in modules[m].parameters()}.values())
        self.settings = {name: _settings(lcfg, name) for name in self.params}
        # foreach: one multi-tensor kernel per Adam operation instead of a Python loop over the
        # parameters (torch picks it by default only on CUDA); the same arithmetic, bit for
        # bit, 30 % less time per step for a 256x256 MLP on one CPU thread. (fused=True is
        # faster still but rounds differently: learner.fused_adam opts in.)
        kernel = {"fused": True} if getattr(lcfg, "fused_adam", False) else {"foreach": True}
        self.opts = {name: torch.optim.Adam(params, lr=self.settings[name]["lr"],
                                            eps=self.settings[name]["adam_eps"], **kernel)
                     for name, params in self.params.items()}

    @property
    def single(self) -> bool:
        return not self.declared

    def set_lr(self, progress: float) -> dict[str, float]:
        out = {}
        for name, opt in self.opts.items():
            s = self.settings[name]
            lr = scheduled(s["lr"], s["lr_schedule"], progress)
            for group in opt.param_groups:
                group["lr"] = max(lr, 0.0)
            out[name] = lr
        return out

    def zero_grad(self) -> None:
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)

    def backward(self, losses: dict, plugin_name: str) -> dict[str, torch.Tensor]:
        """Gradients of each group's term with respect to that group's parameters; returns the
        terms that were present."""
        unknown = [k for k in losses if k not in self.params]
        if unknown:
            raise TrainingError(
                f"{plugin_name}: loss terms {unknown} match no optimizer group (groups: "
                f"{', '.join(self.params)}); name each term after the group it steps")
        present = dict(losses)
        names = list(present)
        for i, name in enumerate(names):
            params = self.params[name]
            grads = torch.autograd.grad(present[name], params, retain_graph=i < len(names) - 1,
                                        allow_unused=True)
            for p, g in zip(params, grads):
                p.grad = g
        return present

    def clip_and_step(self, present: dict) -> dict[str, float] | None:
        """Clip and step each present group; None (nothing stepped) when any term or gradient
        is non-finite."""
        norms = {}
        for name in present:
            limit = self.settings[name]["max_grad_norm"] or float("inf")
            norms[name] = torch.nn.utils.clip_grad_norm_(self.params[name], limit)
        values = [float(v.detach()) for v in list(present.values()) + list(norms.values())]
        if not all(map(math.isfinite, values)):
            self.zero_grad()
            return None
        for name in present:
            self.opts[name].step()
        return {name: float(n) for name, n in norms.items()}

    def state_dict(self) -> dict:
        if self.single:  # the layout of checkpoints written before groups existed
            return self.opts[DEFAULT].state_dict()
        return {name: opt.state_dict() for name, opt in self.opts.items()}

    def load_state_dict(self, state: dict) -> None:
        from rlcore.errors import CheckpointError

        try:
            if self.single:
                self.opts[DEFAULT].load_state_dict(state)
            else:
                for name, opt in self.opts.items():
                    opt.load_state_dict(state[name])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"the checkpoint's optimizer state does not fit the optimizer groups "
                f"({', '.join(self.opts)}): {type(exc).__name__}: {exc}; it was written by a "
                "version of the plugin with other groups. Start a new run, or resume with that "
                "version") from None
        # torch takes every group setting from the saved state, the kernel flags too: the run's
        # learner.fused_adam decides, not the one of the run that wrote the checkpoint
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["fused"], group["foreach"] = opt.defaults["fused"], opt.defaults["foreach"]


def _settings(lcfg, name: str) -> dict:
    """``learner.groups.<name>`` over the ``learner:`` defaults."""
    own = lcfg.groups.get(name)
    out = {"lr": lcfg.lr, "lr_schedule": lcfg.lr_schedule, "adam_eps": lcfg.adam_eps,
           "max_grad_norm": lcfg.max_grad_norm}
    if own is not None:
        for key in out:
            value = getattr(own, key)
            if value is not None:
                out[key] = value
    if out["max_grad_norm"] == 0:  # a group may switch clipping off
        out["max_grad_norm"] = None
    return out
