"""Whether a checkpoint fits an experiment, checked before any state is touched: a run resuming,
``rlcore eval`` and ``rlcore play`` pass a ``RunFit`` to ``checkpoint.load_latest``, which skips
(newest first) the checkpoints it refuses. Each refusal names the file, the field, what was
expected and what was found.

    meta.json   every field: a JSON object; ``algorithm``, ``env`` strings; ``spaces`` an
                object; ``env_steps`` an integer >= 0 equal to the folder's step; ``wall_s`` a
                finite number >= 0; ``learner`` an object with what ``Learner.load_meta`` reads
                (``state``, ``gns``, ``version``, ``updates``); ``evals`` a list of objects with
                ``env_steps``; ``versions`` and ``plugin`` (who wrote it; required from format 1);
                the regime's ``game`` and ``games_played``.
    weights.pt  against the experiment's learner (``learner.core.state_template``): the module
                names, every state_dict key and tensor shape, finite values in every floating
                parameter and buffer; the optimizer groups, their parameter counts and the
                shapes of their moments; the generators' states; the normalizer's statistics
                when both the checkpoint and the experiment have them (a run that turns
                normalization on at resume starts its statistics fresh).
    regime      its own files (``replay.npz``, ``games.npz``), from their headers
                (``check_files``).

A run checks all of it; ``rlcore eval`` and ``rlcore play`` only what they use (meta.json, the
modules and the normalizer): a checkpoint whose optimizer state is damaged still evaluates.
"""

from __future__ import annotations

import math
from pathlib import Path

from rlcore.errors import CheckpointError
from rlcore.run.checkpoint import WEIGHTS, META, Fit, show_value, is_int, step_of

ALL_PARTS = ("modules", "optimizer", "generator", "normalizer")
EVAL_PARTS = ("modules", "normalizer")
SHOWN = 4  # problems named in one message; the rest are counted
ADAM_SETTINGS = ("lr", "betas", "eps", "weight_decay")  # in every torch version's Adam state


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    return _is_number(v) and math.isfinite(v)


def _join(problems: list[str]) -> str:
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


# ---------------------------------------------------------------------- meta.json


def meta_problems(meta: dict, path: Path | None = None) -> list[str]:
    """Every field of a (migrated) meta dict that a reader would trip over, as "field 'x':
    expected ..., found ..."; ``path``: the checkpoint folder, whose step ``env_steps`` must be."""
    problems: list[str] = []
    versioned = meta.get("format_read", meta.get("format", 0)) >= 1

    def check(field: str, ok, expected: str, required: bool = True) -> None:
        node, present = meta, True
        for part in field.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node, present = None, False
                break
        if not present and not required:
            return
        if not present or not ok(node):
            problems.append(f"field '{field}': expected {expected}, found "
                            f"{show_value(node) if present else '(missing)'}")

    check("env", lambda v: isinstance(v, str), "a string (the env id)")
    check("env_steps", lambda v: is_int(v) and v >= 0, "an integer >= 0")
    step = step_of(path) if path is not None else None
    if step is not None and is_int(meta.get("env_steps")) and meta["env_steps"] >= 0 \
            and meta["env_steps"] != step:
        problems.append(f"field 'env_steps': expected {step} (the step in the folder's name), "
                        f"found {meta['env_steps']} (a meta.json of another checkpoint)")
    check("wall_s", lambda v: _finite(v) and v >= 0, "a finite number >= 0 (seconds)")
    check("learner", lambda v: isinstance(v, dict), "an object (the learner's counters)")
    if isinstance(meta.get("learner"), dict):
        check("learner.state", lambda v: isinstance(v, dict), "an object")
        check("learner.gns", lambda v: isinstance(v, dict), "an object")
        if isinstance(meta["learner"].get("gns"), dict):
            for k in ("decay", "g2", "trace"):
                check(f"learner.gns.{k}", _finite, "a finite number")
            check("learner.gns.count", lambda v: is_int(v) and v >= 0, "an integer >= 0")
        for k in ("version", "updates"):
            check(f"learner.{k}", lambda v: is_int(v) and v >= 0, "an integer >= 0")
        check("learner.skipped_updates", lambda v: is_int(v) and v >= 0, "an integer >= 0",
              required=False)
    check("evals", lambda v: isinstance(v, list), "a list (the evaluations)", required=versioned)
    if isinstance(meta.get("evals"), list):
        for i, rec in enumerate(meta["evals"]):
            if not isinstance(rec, dict):
                problems.append(f"field 'evals[{i}]': expected an object, found {show_value(rec)}")
                continue
            if not (is_int(rec.get("env_steps")) and rec["env_steps"] >= 0):
                problems.append(f"field 'evals[{i}].env_steps': expected an integer >= 0, found "
                                f"{show_value(rec.get('env_steps'))}")
            if "mean" in rec and not (rec["mean"] is None or _is_number(rec["mean"])):
                problems.append(f"field 'evals[{i}].mean': expected a number, found "
                                f"{show_value(rec['mean'])}")
    check("versions", lambda v: isinstance(v, dict) and all(
        isinstance(x, str) for x in v.values()), "an object of version strings",
        required=versioned)
    if versioned and isinstance(meta.get("versions"), dict):
        for k in ("rlcore", "torch"):
            check(f"versions.{k}", lambda v: isinstance(v, str), "a version string")
    check("plugin", lambda v: isinstance(v, dict), "an object (the plugin that wrote it)",
          required=versioned)
    if isinstance(meta.get("plugin"), dict):
        for k in ("name", "target"):
            check(f"plugin.{k}", lambda v: isinstance(v, str), "a string")
        for k in ("package", "version"):
            check(f"plugin.{k}", lambda v: v is None or isinstance(v, str), "a string or null",
                  required=False)
    check("game", lambda v: isinstance(v, str), "a string (the game)", required=False)
    check("games_played", lambda v: is_int(v) and v >= 0, "an integer >= 0", required=False)
    return problems


# ---------------------------------------------------------------------- weights.pt


def _tensor_problems(where: str, found, expected, problems: list[str], finite: bool) -> None:
    """``found`` against the tensor ``expected``: a tensor of its shape, finite when asked."""
    import torch

    if not isinstance(found, torch.Tensor):
        problems.append(f"{where}: expected a tensor of shape {tuple(expected.shape)}, found "
                        f"{type(found).__name__}")
        return
    if tuple(found.shape) != tuple(expected.shape):
        problems.append(f"{where}: expected shape {tuple(expected.shape)}, found "
                        f"{tuple(found.shape)}")
        return
    if finite and found.is_floating_point():
        bad = int((~torch.isfinite(found)).sum())
        if bad:
            problems.append(f"{where}: expected finite values, found {bad} NaN/inf of "
                            f"{found.numel()}")


def _names(keys, limit: int = 3) -> str:
    keys = sorted(map(str, keys))
    return ", ".join(keys[:limit]) + (f" (+{len(keys) - limit})" if len(keys) > limit else "")


def _tree_problems(where: str, found, expected, problems: list[str], key: str = "") -> None:
    """A nested dict of tensors (a module's state_dict, the normalizer) against ``expected``;
    ``key``: the dotted path below ``where`` (messages say "module 'ac' key 'pi.0.weight'")."""
    label = f"{where} key '{key}'" if key else where
    if not isinstance(expected, dict):
        _tensor_problems(label, found, expected, problems, finite=True)
        return
    if not isinstance(found, dict):
        problems.append(f"{label}: expected an object of tensors, found {type(found).__name__}")
        return
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    if missing:
        problems.append(f"{label}: missing keys {_names(missing)}")
    if extra:
        problems.append(f"{label}: unexpected keys {_names(extra)}")
    for k in expected:
        if k in found:
            _tree_problems(where, found[k], expected[k], problems, f"{key}.{k}" if key else k)


def _optimizer_problems(where: str, found, shapes: list[tuple], problems: list[str]) -> None:
    """One Adam's state_dict against the shapes of its parameters (one parameter group)."""
    import torch

    if not (isinstance(found, dict) and isinstance(found.get("state"), dict)
            and isinstance(found.get("param_groups"), list)):
        keys = f" with keys {_names(found)}" if isinstance(found, dict) else ""
        problems.append(f"{where}: expected an optimizer state (state, param_groups), found "
                        f"{type(found).__name__}{keys}")
        return
    groups = found["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict) \
            or not isinstance(groups[0].get("params"), list) \
            or not all(is_int(i) for i in groups[0]["params"]):
        problems.append(f"{where}: expected 1 parameter group of parameter numbers, found "
                        f"{len(groups)} group(s)")
        return
    missing = [k for k in ADAM_SETTINGS if k not in groups[0]]
    if missing:
        problems.append(f"{where}: expected the settings {', '.join(ADAM_SETTINGS)}, missing "
                        f"{', '.join(missing)}")
    ids = groups[0]["params"]
    if len(ids) != len(shapes):
        problems.append(f"{where}: expected {len(shapes)} parameters, found {len(ids)}")
        return
    index = {pid: i for i, pid in enumerate(ids)}
    for pid, entry in found["state"].items():
        if pid not in index or not isinstance(entry, dict):
            problems.append(f"{where}: state of unknown parameter {pid!r}")
            continue
        shape = shapes[index[pid]]
        for name, value in entry.items():
            if name == "step" or not isinstance(value, torch.Tensor):
                continue
            _tensor_problems(f"{where} parameter {index[pid]} '{name}'", value,
                             torch.empty(shape, device="meta"), problems, finite=True)


def state_problems(tensors: dict, template: dict, parts=ALL_PARTS) -> list[str]:
    """``tensors`` (what ``Learner.state_tensors()`` saved) against ``template``
    (``learner.core.state_template``), the ``parts`` a reader uses."""
    import torch

    problems: list[str] = []
    if "modules" in parts:
        mods, want = tensors.get("modules"), template["modules"]
        if not isinstance(mods, dict):
            problems.append(f"modules: expected an object of modules ({_names(want, 9)}), found "
                            f"{type(mods).__name__}")
        else:
            if set(mods) != set(want):
                problems.append(f"modules: expected {_names(want, 9)}, found {_names(mods, 9)}")
            for name in want:
                if name in mods:
                    _tree_problems(f"module '{name}'", mods[name], want[name], problems)
    if "optimizer" in parts:
        opt, groups = tensors.get("optimizer"), template["optimizer"]
        if template["single_group"]:
            _optimizer_problems("optimizer", opt, next(iter(groups.values())), problems)
        elif not isinstance(opt, dict) or set(opt) != set(groups):
            problems.append(f"optimizer: expected the groups {_names(groups, 9)}, found "
                            f"{_names(opt, 9) if isinstance(opt, dict) else type(opt).__name__}")
        else:
            for name, shapes in groups.items():
                _optimizer_problems(f"optimizer group '{name}'", opt[name], shapes, problems)
    if "generator" in parts:
        gen = tensors.get("generator")
        if not (isinstance(gen, torch.Tensor) and gen.dtype == torch.uint8
                and gen.numel() == template["generator"]):
            problems.append(f"generator: expected a generator state ({template['generator']} "
                            f"bytes), found {_describe(gen)}")
        rng = tensors.get("rng")
        if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8
                                    and rng.dim() == 1):
            problems.append(f"rng: expected a generator state (bytes), found {_describe(rng)}")
    if "normalizer" in parts and template["normalizer"] is not None \
            and "normalizer" in tensors:
        _tree_problems("normalizer", tensors["normalizer"], template["normalizer"], problems)
    return problems


def _describe(value) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return "nothing" if value is None else type(value).__name__


# ---------------------------------------------------------------------- the fit


class RunFit(Fit):
    """What a run (all ``parts``, with ``regime``'s files), ``rlcore eval`` or ``rlcore play``
    (``EVAL_PARTS``, no regime) requires of a checkpoint of the experiment ``exp``."""

    def __init__(self, exp, spaces, parts=ALL_PARTS, regime=None):
        from rlcore.learner.core import state_template

        self.template = state_template(exp, spaces)
        self.parts, self.regime = tuple(parts), regime

    def meta(self, path: Path, meta: dict) -> None:
        problems = meta_problems(meta, path)
        if problems:
            raise CheckpointError(f"{path.name}/{META}: {_join(problems)}")

    def tensors(self, path: Path, meta: dict, tensors: dict) -> None:
        problems = state_problems(tensors, self.template, self.parts)
        if problems:
            why = ("non-finite weights: training had diverged when it was written"
                   if all("expected finite values" in p for p in problems) else
                   "written for another model: another env, other network sizes or another "
                   "version of the plugin")
            raise CheckpointError(f"{path.name}/{WEIGHTS}: {_join(problems)} ({why})")
        if self.regime is not None:
            self.regime.check_files(path, meta)
