"""``learner.init_from``: a new run starts from the weights of an earlier one.

The earlier run must be of the same algorithm on the same spaces (its ``meta.json`` says so);
``init_from`` names a run folder (its latest checkpoint that passes the checks) or one
checkpoint folder (``runs/x/checkpoints/best``, ``.../step_50000``). ``learner.init_keys``
picks what is copied, as module names (``q``) or single state-dict entries (``q.q``); empty:
every module. Only weights are copied (and the observation-normalization statistics, when
both runs normalize: the weights were trained on them): the optimizer, the counters, the replay
and the plugin's state start fresh, and a target network whose online module was copied (and
which was not copied itself) starts as a copy of it, as at the start of any run.

Use: fine-tuning, and reusing a solved task's solution on a related one (the tabular plugin's
soft Q-learning warm-started from the soft optimum of another reward on the same maze:
``experiments/tabular_soft_second_goal.yaml``).

Everything is read and checked before the run starts anything: a missing folder, another
algorithm or env, an entry the experiment's modules lack, another shape or non-finite values
are a ``CheckpointError`` naming the path, the entry and the fix (exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rlcore.errors import CheckpointError
from rlcore.run.checkpoint import META, load_latest, load_one


def read(exp, spaces) -> dict | None:
    """{"path", "env_steps", "entries": {(module, key): tensor}} for ``learner.init_from``, or
    None when the experiment does not set it."""
    from rlcore.learner.core import state_template

    lcfg, algorithm = exp.config.learner, exp.plugin.name
    if not lcfg.init_from:
        return None
    path = Path(lcfg.init_from).expanduser()
    fix = (f"point learner.init_from at a run folder (its latest checkpoint is read) or a "
           f"checkpoint folder (e.g. runs/NAME/checkpoints/best) of a '{algorithm}' run on the "
           "same env")
    cpu = torch.device("cpu")
    try:
        if (path / META).is_file():
            meta, tensors = load_one(path, algorithm, spaces.to_json(), cpu)
        elif (path / "checkpoints").is_dir():
            path, meta, tensors = load_latest(path, algorithm, spaces.to_json(), cpu)
        else:
            what = "does not exist" if not path.exists() else \
                f"holds neither {META} (a checkpoint folder) nor checkpoints/ (a run folder)"
            raise CheckpointError(f"{path} {what}; {fix}")
    except CheckpointError as exc:
        raise type(exc)(f"learner.init_from: {exc}") from None
    full = state_template(exp, spaces)
    template, saved = full["modules"], tensors.get("modules", {})
    entries, problems = {}, []
    for key in lcfg.init_keys or list(template):
        module, _, name = key.partition(".")
        if module not in template:
            problems.append(f"'{key}': the experiment has no module '{module}' (it has "
                            f"{', '.join(sorted(template))})")
            continue
        for entry in [name] if name else list(template[module]):
            want, got = template[module].get(entry), saved.get(module, {}).get(entry)
            where = f"'{module}.{entry}'"
            if want is None:
                problems.append(f"{where}: module '{module}' has no entry '{entry}' (it has "
                                f"{', '.join(template[module])})")
            elif got is None:
                problems.append(f"{where}: not in the checkpoint (written with other options)")
            elif tuple(got.shape) != tuple(want.shape):
                problems.append(f"{where}: shape {tuple(got.shape)} in the checkpoint, the "
                                f"experiment's is {tuple(want.shape)}")
            elif got.is_floating_point() and not bool(torch.isfinite(got).all()):
                problems.append(f"{where}: non-finite values (training had diverged)")
            else:
                entries[(module, entry)] = got
    stats, want_stats = tensors.get("normalizer"), full["normalizer"]
    if stats is not None and want_stats is not None and _shapes(stats) != _shapes(want_stats):
        problems.append(f"the observation statistics have shapes {_shapes(stats)}, the "
                        f"experiment's {_shapes(want_stats)}")
    if problems:
        raise CheckpointError(
            f"learner.init_from {path}: " + "; ".join(problems) + "; fix learner.init_keys "
            "(module or module.entry names) or " + fix[0].lower() + fix[1:])
    return {"path": str(path), "env_steps": meta.get("env_steps"), "entries": entries,
            "normalizer": stats if want_stats is not None else None}


def _shapes(tree, prefix: str = "") -> dict:
    """{"obs.mean": (4,), ...} of a nested dict of tensors."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _shapes(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tuple(getattr(tree, "shape", ()))}


def apply(learner, exp, init: dict | None) -> None:
    """Copy the entries ``read`` returned into the learner (in the driver or a Ray actor), and
    each target network whose online module was copied from its online module."""
    if init is None:
        return
    state = learner.state_tensors()
    modules = state["modules"]
    for (module, entry), value in init["entries"].items():
        modules[module][entry] = value.to(modules[module][entry].dtype)
    touched = {module for module, _ in init["entries"]}
    targets = exp.plugin.targets
    for target, online in (targets(exp.algo) if callable(targets) else targets).items():
        if online in touched and target not in touched:
            modules[target] = {k: v.clone() for k, v in modules[online].items()}
    if init["normalizer"] is not None and "normalizer" in state:
        state["normalizer"] = init["normalizer"]
    learner.load_state_tensors(state)
