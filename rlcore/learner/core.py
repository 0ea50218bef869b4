"""The learner: device placement, optimizer, the update step, and the gradient noise scale."""

from __future__ import annotations

import math

import numpy as np
import torch

from rlcore import seeding
from rlcore.learner.batches import Batch
from rlcore.learner.groups import Groups
from rlcore.errors import ConfigError, TrainingError
from rlcore.ops.advantages import explained_variance
from rlcore.ops.gns import NoiseScale
from rlcore.ops.normalize import NormalizedPolicy, NormSettings, RunNormalizer
from rlcore.ops.targets import target_update


def pick_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a config error."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError(["learner.device: 'cuda' was requested but no CUDA device is visible; "
                           "use device: auto or cpu, run on a machine with a GPU, or on a cluster set "
                           "learner.num_gpus: 1 so that Ray places the learner on a GPU node"])
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def to_numpy_weights(modules: dict) -> dict:
    return {name: {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}
            for name, m in modules.items()}


def load_numpy_weights(modules: dict, weights: dict, partial: bool = False) -> None:
    """Copy ``to_numpy_weights`` output into ``modules`` in place (parameters keep their storage);
    ``partial``: only the modules ``weights`` holds (actors get no target networks)."""
    for name, m in modules.items():
        if partial and name not in weights:
            continue
        # weights fetched from Ray's object store are read-only views: copy those
        m.load_state_dict({k: torch.from_numpy(v) if v.flags.writeable else torch.tensor(v)
                           for k, v in weights[name].items()})


def value_fit(batch) -> dict:
    """``explained_variance`` of the return targets by the values the batch was built with
    (before the update), for batches that hold both (actor-critic batches); left out when the
    targets are constant."""
    if not isinstance(batch, Batch) or not {"value", "returns"} <= set(batch.fields()):
        return {}
    ev = explained_variance(batch.value.detach().cpu().numpy(),
                            batch.returns.detach().cpu().numpy())
    return {} if math.isnan(ev) else {"explained_variance": ev}


def _tensors(tree):
    if isinstance(tree, dict):
        return {k: _tensors(v) for k, v in tree.items()}
    return torch.from_numpy(np.asarray(tree))


def eval_policy(plugin, algo, spaces, normalizer, modules: dict, explore: bool):
    """``plugin.make_policy`` over ``modules``, seeing observations normalized with the run's
    current statistics (frozen) when the run normalizes them."""
    policy = plugin.make_policy(modules, algo, spaces, explore=explore)
    if normalizer is not None and normalizer.settings.obs:
        return NormalizedPolicy(policy, normalizer.frozen())
    return policy


def state_template(exp, spaces) -> dict:
    """What ``Learner.state_tensors()`` holds for this experiment, from fresh modules on the CPU
    (torch's global generator untouched): what a checkpoint's tensors are checked against
    before any of them is loaded (``rlcore.run.fit``). ``optimizer``: per optimizer group, the
    shapes of its parameters in the optimizer's order; ``generator``: the size of the CPU
    generator's state; ``normalizer``: the statistics' tensors, None when the run normalizes
    nothing."""
    plugin, algo = exp.plugin, exp.algo
    with seeding.seeded_torch(0):
        modules = plugin.make_modules(algo, spaces)
    groups = Groups(plugin, modules, exp.config.learner, algo)
    norm = NormSettings.of(exp)
    return {"modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizer": {name: [tuple(p.shape) for p in params]
                          for name, params in groups.params.items()},
            "single_group": groups.single,
            "generator": torch.Generator().get_state().numel(),
            "normalizer": (_tensors(RunNormalizer(norm, spaces.obs_shape).to_numpy())
                           if norm.active else None)}


class Learner:
    """Owns the modules, the optimizer and the plugin's state; one update path for every regime.

    ``update(data, progress)`` takes what the regime collected (fragments, a replay sample, a
    sample of game positions), has the plugin's ``prepare_batch`` turn it into a ``Batch`` and
    steps: the plugin's own ``update`` hook when it has one; else, with ``one_step`` (replay:
    one optimizer step per sampled batch), one step on the whole batch; else ``num_epochs``
    passes of ``minibatch_size`` steps. Every optimizer step goes through ``step``."""

    def __init__(self, exp, spaces, device: torch.device, one_step: bool = False):
        self.plugin, self.cfg, self.lcfg = exp.plugin, exp.algo, exp.config.learner
        self.device, self.one_step, self.spaces = device, one_step, spaces
        self.total_steps = exp.config.stop.num_env_steps
        with seeding.seeded_torch(seeding.derive(exp.config.seed, seeding.INIT_STREAM)):
            modules = self.plugin.make_modules(self.cfg, spaces)  # initial weights: seed only
        self.modules = {k: m.to(device) for k, m in modules.items()}
        targets = self.plugin.targets
        self.targets = dict(targets(self.cfg) if callable(targets) else targets)
        for target, online in self.targets.items():  # copies, never trained
            self.modules[target].load_state_dict(self.modules[online].state_dict())
            self.modules[target].requires_grad_(False)
        params = list({id(p): p for m in self.modules.values() for p in m.parameters()}.values())
        self.params = params
        self.groups = Groups(self.plugin, self.modules, self.lcfg, self.cfg)
        # one group (the plain case): its optimizer, for plugins' own update hooks
        self.opt = next(iter(self.groups.opts.values())) if self.groups.single else None
        self.state: dict[str, float] = dict(self.plugin.init_state(self.cfg))
        self.generator = torch.Generator().manual_seed(
            seeding.derive(exp.config.seed, seeding.LEARNER_STREAM))
        # the randomness of prepare_batch and loss (target noise, sampled actions): seeded from
        # the experiment, saved in checkpoints, on the learner's device
        self.rng = torch.Generator(device=device).manual_seed(
            seeding.derive(exp.config.seed, seeding.LEARNER_STREAM, 2))
        self.gns = NoiseScale(self.lcfg.gns_ema)
        self.version = 0
        self.updates = 0
        self.skipped_updates = 0
        self._nonfinite_in_a_row = 0
        norm = NormSettings.of(exp)
        self.normalizer = RunNormalizer(norm, spaces.obs_shape) if norm.active else None
        # what train mode means for each module: its own flag and its submodules', unless some
        # class overrides Module.train (then it is always called). Calling train() on every
        # update cost 0.05 of a 1.6 ms DQN CartPole update (benchmarks/dqn_learner_floor.py).
        self._train_modes = [(m, list(m.modules()),
                              any(type(s).train is not torch.nn.Module.train for s in m.modules()))
                             for m in self.modules.values()]

    # ------------------------------------------------------------------ public

    def weights(self, for_actors: bool = False) -> dict:
        """Module weights and the run's normalization statistics if any; ``for_actors``: without
        the target networks (modules named ``target*``), which stay on the learner."""
        modules = self.modules if not for_actors else {
            k: m for k, m in self.modules.items()
            if not k.startswith("target") and k not in self.targets}
        out = to_numpy_weights(modules)
        if self.normalizer is not None:
            out[RunNormalizer.KEY] = self.normalizer.to_numpy()
        return out

    def policy_for_eval(self, modules: dict, explore: bool):
        return eval_policy(self.plugin, self.cfg, self.spaces, self.normalizer, modules, explore)

    def close(self) -> None:
        """Nothing to release in the driver (a ``RemoteLearner`` stops its actor)."""

    def update(self, data, progress: float) -> dict:
        """One update from ``data``; ``progress`` in [0, 1] drives schedules. Returns the
        metrics (floats) and, for one-step updates whose loss reports it, ``td_abs``: the
        per-sample |TD error| as a numpy vector (the new replay priorities)."""
        self.state["progress"] = float(progress)
        if self.normalizer is not None:  # every actor's new statistics, before the next publish
            self.normalizer.absorb(f.norm_delta for f in data)
        lrs = self.groups.set_lr(progress)
        for m, subs, custom in self._train_modes:
            if custom or not all(sub.training for sub in subs):
                m.train()
        batch = self.plugin.prepare_batch(self.modules, data, self.cfg, self.state, self.rng)
        if self.plugin.update is not None:
            metrics = self.plugin.update(self, batch)
        elif self.one_step:
            metrics, td_abs = self.step(batch, keep_td=True)
            if td_abs is not None:
                metrics["td_abs"] = td_abs
        else:
            metrics = self._sgd(batch)
        if self.plugin.after_update is not None:
            self.state = dict(self.plugin.after_update(self.modules, batch, self.cfg, self.state,
                                                       metrics))
        self.updates += 1
        self.version += 1
        self._update_targets()
        if self.groups.single:
            metrics["lr"] = lrs["all"]
        else:
            metrics.update({f"{name}/lr": lr for name, lr in lrs.items()})
        if self.gns.value is not None:
            metrics["grad_noise_scale"] = self.gns.value
        metrics.update(value_fit(batch))
        return metrics

    # ------------------------------------------------------------------ SGD

    def _sgd(self, batch: Batch) -> dict[str, float]:
        n = len(batch)
        mb = min(self.lcfg.minibatch_size or n, n)
        measure = self.updates % self.lcfg.gns_every == 0 and mb >= self.lcfg.gns_microbatches
        sums: dict[str, float] = {}
        steps = 0
        for epoch in range(self.lcfg.num_epochs):
            perm = torch.randperm(n, generator=self.generator).to(self.device)
            for start in range(0, n - mb + 1, mb):
                idx = perm[start:start + mb]
                gns = measure and epoch == 0 and start == 0
                metrics, _ = self.step(batch[idx], measure_noise=gns)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def step(self, mb: Batch, measure_noise: bool = False, keep_td: bool = False):
        """One optimizer step on ``mb``: (metrics, the loss's per-sample ``td_abs`` as numpy
        when ``keep_td``, else None). With ``measure_noise`` the minibatch is split into
        ``gns_microbatches`` pieces whose gradients are accumulated: the pieces' mean squared
        norm and the whole's give the two batch sizes of the noise-scale estimate, at the same
        parameters and for no extra samples."""
        self.groups.zero_grad()
        if not self.groups.single:
            metrics, td_abs = self._step_groups(mb)
        elif measure_noise:
            total, metrics = self._accumulate_with_noise(mb)
            metrics, td_abs = self._apply(total, metrics), None
        else:
            losses, metrics = self.plugin.loss(self.modules, mb, self.cfg, self.state, self.rng)
            total = sum(losses.values())
            total.backward()
            td_abs = metrics.pop("td_abs", None)  # a vector: priorities, not a logged metric
            metrics = self._apply(total, metrics, losses)
        if keep_td and td_abs is not None:
            td_abs = td_abs.detach().float().cpu().numpy()
        return metrics, td_abs if keep_td else None

    def _step_groups(self, mb: Batch):
        """One step of every group whose loss term is present, each on its own parameters."""
        losses, metrics = self.plugin.loss(self.modules, mb, self.cfg, self.state, self.rng)
        td_abs = metrics.pop("td_abs", None)
        present = self.groups.backward(losses, self.plugin.name)
        norms = self.groups.clip_and_step(present)
        if norms is None:
            return self._skip(present), td_abs
        self._nonfinite_in_a_row = 0
        out = {k: float(v) for k, v in metrics.items()}
        for name, term in present.items():
            out[f"{name}/loss"], out[f"{name}/grad_norm"] = float(term.detach()), norms[name]
        out["loss"] = float(sum(t.detach() for t in present.values()))
        out["grad_norm"] = math.sqrt(sum(n * n for n in norms.values()))
        return out, td_abs

    def _update_targets(self) -> None:
        """The declared targets after update number ``self.updates``: a Polyak step with the
        config's ``tau`` every ``target_update_period`` updates."""
        if not self.targets:
            return
        period = int(getattr(self.cfg, "target_update_period", 1))
        tau = float(getattr(self.cfg, "tau", 1.0))
        for target, online in self.targets.items():
            target_update(self.modules[target], self.modules[online], self.updates, period, tau)

    def _accumulate_with_noise(self, mb: Batch):
        k, n = self.lcfg.gns_microbatches, len(mb)
        bounds = np.linspace(0, n, k + 1).astype(int)
        prev = torch.zeros(sum(p.numel() for p in self.params), device=self.device)
        small_sq, total_loss, agg = [], 0.0, {}
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            losses, metrics = self.plugin.loss(self.modules, mb[lo:hi], self.cfg, self.state,
                                               self.rng)
            metrics.pop("td_abs", None)
            piece = sum(losses.values())
            (piece * ((hi - lo) / n)).backward()
            flat = self._flat_grad()
            small_sq.append(float(((flat - prev) * (n / (hi - lo))).pow(2).sum()))
            prev = flat
            total_loss = total_loss + piece.detach() * ((hi - lo) / n)
            for key, v in metrics.items():
                agg[key] = agg.get(key, 0.0) + float(v) * (hi - lo) / n
        big_sq = float(prev.pow(2).sum())
        if all(map(math.isfinite, small_sq + [big_sq])):
            self.gns.update(float(np.mean(small_sq)), n / k, big_sq, n)
        return total_loss, agg

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self.params])

    def _apply(self, total: torch.Tensor, metrics: dict, losses: dict | None = None
               ) -> dict[str, float]:
        max_norm = self.lcfg.max_grad_norm or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        loss, norm = float(total.detach()), float(grad_norm)  # one read each, checked and logged
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self.opt.zero_grad(set_to_none=True)
            return self._skip(losses if losses is not None else {"(all terms)": total})
        self._nonfinite_in_a_row = 0
        self.opt.step()
        out = {k: float(v) for k, v in metrics.items()}
        out["grad_norm"] = norm
        out["loss"] = loss
        return out

    def _skip(self, losses: dict | None = None) -> dict:
        """Count a step skipped for a non-finite loss or gradient; stop after too many, saying
        what went non-finite first: a loss term (by name), the gradient, or the weights."""
        self.skipped_updates += 1
        self._nonfinite_in_a_row += 1
        limit = 1 if self.lcfg.nonfinite == "stop" else self.lcfg.max_nonfinite_steps
        if self._nonfinite_in_a_row >= limit:
            raise TrainingError(f"{self._what_went_nonfinite(losses or {})} in "
                                f"{self._nonfinite_in_a_row} optimizer step(s) in a row "
                                f"(learner.nonfinite={self.lcfg.nonfinite}, "
                                f"learner.max_nonfinite_steps={self.lcfg.max_nonfinite_steps})")
        return {"skipped_steps": 1.0}

    def _what_went_nonfinite(self, losses: dict) -> str:
        bad_weights = [f"{name}.{p}" for name, m in self.modules.items()
                       for p, t in m.named_parameters() if not torch.isfinite(t).all()]
        if bad_weights:
            return (f"the weights {', '.join(bad_weights[:3])} are non-finite (an earlier update "
                    "diverged: lower learner.lr or clip gradients with learner.max_grad_norm)")
        bad = [k for k, v in losses.items() if not torch.isfinite(v.detach()).all()]
        if bad:
            term = "the loss" if bad[0] == "(all terms)" else f"the loss term '{bad[0]}'"
            return (f"{term} was non-finite with finite weights: look at its "
                    "inputs (the environment's rewards and observations, the plugin's "
                    "coefficients) before the learning rate")
        return ("the gradient was non-finite with a finite loss and finite weights (a "
                "numerically unstable operation in the loss: a log, a division or a sqrt at 0)")

    # ------------------------------------------------------------------ checkpoint state

    def state_tensors(self) -> dict:
        out = {"modules": {k: m.state_dict() for k, m in self.modules.items()},
               "optimizer": self.groups.state_dict(),
               "generator": self.generator.get_state(), "rng": self.rng.get_state()}
        if self.normalizer is not None:
            out["normalizer"] = _tensors(self.normalizer.to_numpy())
        return out

    def load_state_tensors(self, tensors: dict) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(tensors["modules"][k])
        self.groups.load_state_dict(tensors["optimizer"])
        self.generator.set_state(tensors["generator"].cpu())  # states are CPU byte tensors
        # reseeded (kept as built) for checkpoints written before the loss had its generator,
        # and for those of another device type (a CUDA generator's state is not a CPU one's)
        rng = tensors.get("rng")
        if rng is not None and rng.numel() == self.rng.get_state().numel():
            self.rng.set_state(rng.cpu())
        if self.normalizer is not None and "normalizer" in tensors:  # else: turned on at resume
            self.normalizer.load_numpy(tensors["normalizer"])  # CPU tensors read as arrays

    def meta(self) -> dict:
        return {"state": self.state, "gns": self.gns.state(), "version": self.version,
                "updates": self.updates, "skipped_updates": self.skipped_updates}

    def load_meta(self, meta: dict) -> None:
        self.state = dict(meta["state"])
        g = meta["gns"]
        self.gns = NoiseScale(g["decay"], g["g2"], g["trace"], g["count"])
        self.version, self.updates = meta["version"], meta["updates"]
        self.skipped_updates = meta.get("skipped_updates", 0)
