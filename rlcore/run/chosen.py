"""Which checkpoint ``rlcore eval`` reads: the latest that fits, the best, or a step.

``checkpoints/best`` holds the weights (no replay, no regime files) of the evaluation with the
highest mean return so far, ``best_eval_return`` in its ``meta.json``; it is replaced only by a
strictly higher one, also across a resume. ``checkpoint.keep`` counts only ``step_*``, so the
best survives the rolling pruning; ``rlcore eval --checkpoint best`` reads it, a resume never
does (training continues from the latest).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rlcore.errors import CheckpointError
from rlcore.run.checkpoint import (META, WEIGHTS, Fit, complete_checkpoints, load_latest,
                                   load_one, step_of, write_folder)

BEST = "best"  # the folder under checkpoints/


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def save_best(run_dir: str | Path, eval_return: float, tensors: dict, meta: dict) -> Path:
    """Write ``checkpoints/best``: the weights of the evaluation with the highest mean return so
    far (``meta['best_eval_return']``). It is apart from the rolling ``step_*`` checkpoints:
    ``checkpoint.keep`` never prunes it, and resuming never loads it (it holds no replay)."""
    root = Path(run_dir) / "checkpoints"
    final = write_folder(root, BEST, tensors, {**meta, "best_eval_return": float(eval_return)})
    for leftover in root.glob(f".replaced-{BEST}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def best_path(run_dir: str | Path) -> Path | None:
    """``checkpoints/best``, or the copy a crash between its two renames left aside."""
    root = Path(run_dir) / "checkpoints"
    for p in [root / BEST, *sorted(root.glob(f".replaced-{BEST}-*"))]:
        if (p / WEIGHTS).is_file() and (p / META).is_file():
            return p
    return None


def best_eval_return(run_dir: str | Path) -> float:
    """The score the best checkpoint was kept for; -inf when there is none yet or it is
    unreadable (any evaluation then replaces it)."""
    path = best_path(run_dir)
    try:
        value = json.loads((path / META).read_text()).get("best_eval_return") if path else None
    except (OSError, ValueError, AttributeError):
        value = None
    return float(value) if is_number(value) else float("-inf")


def load_chosen(run_dir: str | Path, which: str, algorithm: str, spaces_json: dict, device,
                fit: Fit | None = None) -> tuple[Path, dict, dict]:
    """``rlcore eval --checkpoint``: ``latest`` (``load_latest``), ``best`` (``checkpoints/best``)
    or an env step (``step_N``). A chosen checkpoint that does not pass every check is an error,
    never replaced by another."""
    if which == "latest":
        return load_latest(run_dir, algorithm, spaces_json, device, fit)
    root = Path(run_dir) / "checkpoints"
    steps = [step_of(p) for p in complete_checkpoints(run_dir)]
    have = (f"it has {', '.join(map(str, steps))}" if steps else "it has no step checkpoint") + \
        (" and best" if best_path(run_dir) else "")
    if which == BEST:
        path = best_path(run_dir)
        if path is None:
            raise CheckpointError(
                f"no best checkpoint in {root}: it is written at each evaluation that beats the "
                "earlier ones (checkpoint.keep_best, eval.every_env_steps and the final "
                f"evaluation); {have}. Use --checkpoint latest or a step")
    else:
        step = int(which) if which.isdigit() else None
        found = [p for p in complete_checkpoints(run_dir) if step_of(p) == step]
        if step is None or not found:
            what = f"no checkpoint of step {which}" if step is not None else \
                f"--checkpoint {which!r} is not latest, best or an env step"
            raise CheckpointError(f"{what} in {root}; {have}")
        path = found[0]
    try:
        meta, tensors = load_one(path, algorithm, spaces_json, device, fit)
    except CheckpointError as exc:
        reason = str(exc)
        named = reason.startswith(path.name) or str(path) in reason
        raise type(exc)(reason if named else f"{path}: {reason}") from None
    meta["skipped"], meta["skipped_paths"] = [], []
    return path, meta, tensors
