"""Atomic checkpoints without pickle: tensors via ``torch.save`` loaded with ``weights_only=True``,
everything else as JSON.

Layout: ``RUN_DIR/checkpoints/step_000000012345/{weights.pt, meta.json}``. A checkpoint is
written into a hidden temporary folder and renamed into place, so a crash mid-write leaves the
previous checkpoint as the latest complete one. Rewriting a step (the final save after a
periodic one) first moves the old folder aside to ``.replaced-step_N-*``, which counts as that
step's checkpoint until the new one is in place.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from rlcore.errors import CheckpointError

WEIGHTS, META = "weights.pt", "meta.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: str | Path, env_steps: int, tensors: dict, meta: dict, keep: int = 3) -> Path:
    import torch

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{env_steps:012d}"
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    replaced = None
    try:
        with open(tmp / WEIGHTS, "wb") as f:
            torch.save(tensors, f)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / META, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            replaced = root / f".replaced-{final.name}-{uuid.uuid4().hex}"
            os.rename(final, replaced)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if replaced is not None and replaced.exists() and not final.exists():
            os.rename(replaced, final)
        raise
    kept = complete_checkpoints(run_dir)
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in [*root.glob(".tmp-*"), *root.glob(".replaced-*")]:  # from earlier crashes
        if leftover not in kept:
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders holding both files, oldest first (one per step)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []

    def complete(p: Path) -> bool:
        return (p / WEIGHTS).is_file() and (p / META).is_file()

    found = {p.name: p for p in root.glob("step_*") if complete(p)}
    for p in root.glob(".replaced-step_*"):  # a save that rewrote this step was cut short
        step = p.name.split("-")[1]
        if step not in found and complete(p):
            found[step] = p
    return [found[k] for k in sorted(found)]


def load_latest(run_dir: str | Path, algorithm: str, spaces_json: dict, device) -> tuple[Path, dict, dict]:
    """The newest loadable checkpoint of ``run_dir``: (path, meta, tensors).

    Refuses, before any tensor is read, checkpoints of another algorithm or other spaces.
    Unreadable ones are skipped, newest first, and named in ``meta['skipped']``.
    """
    import torch

    skipped = []
    for path in reversed(complete_checkpoints(run_dir)):
        try:
            meta = json.loads((path / META).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            skipped.append(f"{path.name} ({exc})")
            continue
        check_compatible(meta, algorithm, spaces_json, path)
        try:
            tensors = torch.load(path / WEIGHTS, map_location=device, weights_only=True)
        except Exception as exc:  # truncated or corrupted file: fall back to an older one
            skipped.append(f"{path.name} ({type(exc).__name__}: {exc})")
            continue
        meta["skipped"] = skipped
        return path, meta, tensors
    raise CheckpointError(f"no loadable checkpoint in {Path(run_dir) / 'checkpoints'}"
                          + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))


def check_compatible(meta: dict, algorithm: str, spaces_json: dict, path: Path) -> None:
    if meta.get("algorithm") != algorithm:
        raise CheckpointError(f"checkpoint {path} was written by algorithm "
                              f"'{meta.get('algorithm')}', not '{algorithm}'; point at a run of "
                              f"'{algorithm}' or change the experiment's algorithm")
    if meta.get("spaces") != spaces_json:
        raise CheckpointError(f"checkpoint {path} was trained on spaces {meta.get('spaces')}, "
                              f"but the environment has {spaces_json}; use the same env")
