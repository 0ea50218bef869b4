"""Atomic, versioned checkpoints without pickle: tensors via ``torch.save`` loaded with
``weights_only=True``, everything else as JSON.

Layout: ``RUN_DIR/checkpoints/step_000000012345/{weights.pt, meta.json}`` (and the files a data
regime adds: ``replay.npz``, ``games.npz``). A checkpoint is written into a hidden temporary
folder and renamed into place, so a crash mid-write leaves the previous checkpoint as the latest
complete one. Rewriting a step (the final save after a periodic one) first moves the old folder
aside to ``.replaced-step_N-*``, which counts as that step's checkpoint until the new one is in
place.

Format and compatibility
------------------------
``meta.json`` carries ``format``, the checkpoint format (``FORMAT_VERSION``), and what wrote the
checkpoint: ``versions`` (rlcore, torch, gymnasium, numpy, ray) and ``plugin`` (the algorithm's
name, ``module:attr``, and the package and version it was installed from, when known).

- No ``format`` field: written before checkpoints were versioned, read as format 0. Format 0 is
  format 1 without ``format`` and ``plugin`` (``versions`` may be missing too); it loads when
  its fields validate like format 1's.
- ``format`` <= ``FORMAT_VERSION``: loads; an older format is read through its step in
  ``_MIGRATIONS`` (format 0 -> 1 only fills in the format number).
- ``format`` > ``FORMAT_VERSION``: refused by name, with both versions ("written by rlcore X
  with checkpoint format N; this rlcore reads up to M; upgrade rlcore"). Such a checkpoint is
  not skipped for an older one: continuing or evaluating an older checkpoint with this rlcore
  would silently drop what the newer rlcore trained.
- A new format number is due only when a reader of the previous format would misread the files
  (a field renamed or retyped, another weights layout); a new optional field needs none.

Which checkpoint is used
------------------------
``load_latest`` tries the complete checkpoints newest first. One is skipped, with its reason,
when its ``meta.json`` is unreadable or a field is invalid, when it is of another algorithm or
other spaces (a checkpoint swapped in from another run), when ``weights.pt`` is unreadable, or
when the caller's ``Fit`` refuses it (``rlcore.run.fit``: every field of ``meta.json``; the
tensors against the experiment's learner, shapes and finiteness; the regime's files). The first
one that passes is used and the skipped ones are named in ``meta['skipped']``; all checks run
before any state is touched. When none passes: ``CheckpointError`` listing each checkpoint and
why; when every checkpoint is of another algorithm or other spaces, the run folder belongs to
another experiment and the error says that alone.

Skipped checkpoints and ``checkpoint.keep``
-------------------------------------------
A resumed run moves each checkpoint it skipped to ``bad-<name>`` inside ``checkpoints/``
(``set_aside``): never loaded again, never counted toward ``checkpoint.keep`` (so a later save
cannot prune the oldest good checkpoint because of a broken newer one), never deleted by rlcore;
kept for inspection. ``rlcore eval`` and ``rlcore play`` only read: they name what they skipped
and move nothing.

The best checkpoint and a chosen one: ``rlcore.run.chosen``.

Weights stay in ``torch.save``'s format: measured on this project's checkpoints (2 shared CPU
cores, median of 200 loads, every tensor read), ``torch.load(weights_only=True)`` reads a PPO
CartPole checkpoint (0.13 MB, 50 tensors) in 7 ms, safetensors in 1.3 ms; SAC HalfCheetah
(3.0 MB, 90 tensors) 14-17 ms against 2.4-2.6 ms; an Atari-sized DQN checkpoint (27 MB) 28 ms
against 3.6 ms. Both are far below a command's start-up (importing torch alone takes 1.7 s),
while safetensors would need the nested tree (optimizer state keyed by integers, its
non-tensor settings) flattened into names and JSON, a second reader kept for every existing
``weights.pt``, and one more dependency. ``weights_only=True`` already refuses anything but
tensors and plain containers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from rlcore.errors import CheckpointError

WEIGHTS, META = "weights.pt", "meta.json"
FORMAT_VERSION = 1  # the checkpoint format this rlcore writes, and the newest it reads
BAD_PREFIX = "bad-"  # checkpoints a resume skipped, set aside (see the module docstring)

# format N -> N + 1, applied to a validated meta dict of an older format
_MIGRATIONS = {0: lambda meta: {**meta, "format": 1}}


class OtherExperimentError(CheckpointError):
    """A checkpoint of another algorithm or other spaces than the experiment's; ``short``: the
    reason without the path and the fix, for the list of skipped checkpoints."""

    def __init__(self, message: str, short: str = ""):
        super().__init__(message)
        self.short = short or message


class NewerFormatError(CheckpointError):
    """A checkpoint of a newer format than this rlcore reads."""


class Fit:
    """What a reader requires of a checkpoint beyond its format, algorithm and spaces; each
    method raises ``CheckpointError`` (its message says what, expected and found). This base
    requires nothing more; ``rlcore.run.fit.RunFit`` is the one runs, eval and play use."""

    def meta(self, path: Path, meta: dict) -> None:
        """Checked before ``weights.pt`` is read."""

    def tensors(self, path: Path, meta: dict, tensors: dict) -> None:
        """Checked after ``weights.pt`` is read, before any of it is used."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder(root: Path, name: str, tensors: dict, meta: dict) -> Path:
    """Write ``root/name`` through a temporary folder renamed into place; an existing
    ``root/name`` is moved aside to ``.replaced-<name>-*`` until the new one is in place."""
    import torch

    meta = {"format": FORMAT_VERSION, **{k: v for k, v in meta.items() if k != "format"}}
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
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
    return final


def save(run_dir: str | Path, env_steps: int, tensors: dict, meta: dict, keep: int = 3) -> Path:
    """Write the checkpoint of step ``env_steps`` (``meta`` gets ``format``) and keep the newest
    ``keep`` complete ones; folders set aside (``bad-*``) and ``best`` are neither counted nor
    deleted."""
    root = Path(run_dir) / "checkpoints"
    final = write_folder(root, f"step_{env_steps:012d}", tensors, meta)
    kept = complete_checkpoints(run_dir)
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in [*root.glob(".tmp-*"), *root.glob(".replaced-*")]:  # from earlier crashes
        if leftover not in kept:
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders holding both files, oldest first (one per step); those set aside
    (``bad-*``) are not among them."""
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


def step_of(path: Path) -> int | None:
    """The env step in a checkpoint folder's name (``step_N``, ``.replaced-step_N-*``)."""
    m = re.search(r"step_(\d+)", path.name)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------- reading


def show_value(value) -> str:
    """A value as a message shows it: short, with its JSON type."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kinds.get(type(value), type(value).__name__)})"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_meta(path: Path) -> dict:
    """``meta.json`` of the checkpoint folder ``path``: a JSON object of a format this rlcore
    reads, with ``algorithm`` and ``spaces``, migrated to ``FORMAT_VERSION``."""
    file = f"{path.name}/{META}"
    try:
        meta = json.loads((path / META).read_bytes())
    except OSError as exc:
        raise CheckpointError(f"{file}: unreadable ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
        raise CheckpointError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file}: expected a JSON object, found {show_value(meta)}")
    fmt = meta.get("format", 0)
    if not is_int(fmt) or fmt < 0:
        raise CheckpointError(f"{file}: field 'format': expected an integer >= 0 (the checkpoint "
                              f"format), found {show_value(fmt)}")
    if fmt > FORMAT_VERSION:
        import rlcore

        versions = meta.get("versions")
        writer = versions.get("rlcore") if isinstance(versions, dict) else None
        raise NewerFormatError(
            f"checkpoint {path} was written by rlcore {writer or '(version not recorded)'} with "
            f"checkpoint format {fmt}; this rlcore ({rlcore.__version__}) reads up to format "
            f"{FORMAT_VERSION}; upgrade rlcore (pip install -U rlcore) to use it")
    problems = []
    if not (isinstance(meta.get("algorithm"), str) and meta["algorithm"]):
        problems.append(f"field 'algorithm': expected a non-empty string, found "
                        f"{show_value(meta.get('algorithm'))}")
    if not isinstance(meta.get("spaces"), dict):
        problems.append(f"field 'spaces': expected an object, found {show_value(meta.get('spaces'))}")
    if problems:
        raise CheckpointError(f"{file}: {'; '.join(problems)}")
    while meta.get("format", 0) < FORMAT_VERSION:
        meta = _MIGRATIONS[meta.get("format", 0)](meta)
    meta["format_read"] = fmt  # the format of the file, before migration
    return meta


def check_compatible(meta: dict, algorithm: str, spaces_json: dict, path: Path) -> None:
    if meta.get("algorithm") != algorithm:
        raise OtherExperimentError(
            f"checkpoint {path} was written by algorithm '{meta.get('algorithm')}', not "
            f"'{algorithm}'; point at a run of '{algorithm}' or change the experiment's algorithm",
            short=f"written by algorithm '{meta.get('algorithm')}', not '{algorithm}'")
    if meta.get("spaces") != spaces_json:
        raise OtherExperimentError(
            f"checkpoint {path} was trained on spaces {meta.get('spaces')}, but the environment "
            f"has {spaces_json}; use the same env",
            short=f"trained on spaces {meta.get('spaces')}, the environment has {spaces_json}")


def read_tensors(path: Path, device) -> dict:
    """``weights.pt`` of the checkpoint folder ``path``, read without pickle."""
    import torch

    file = f"{path.name}/{WEIGHTS}"
    try:
        tensors = torch.load(path / WEIGHTS, map_location=device, weights_only=True)
    except Exception as exc:  # truncated, corrupted, or not a torch file
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{file}: unreadable, truncated or damaged ({type(exc).__name__}: "
                              f"{first[:200]})") from None
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{file}: expected a dict of tensors, found "
                              f"{type(tensors).__name__}")
    return tensors


def load_one(path: Path, algorithm: str, spaces_json: dict, device,
             fit: Fit | None = None) -> tuple[dict, dict]:
    """(meta, tensors) of the checkpoint folder ``path`` when it passes every check, else
    ``CheckpointError`` (``OtherExperimentError``, ``NewerFormatError``) saying why."""
    fit = fit or Fit()
    meta = read_meta(path)
    check_compatible(meta, algorithm, spaces_json, path)
    fit.meta(path, meta)
    tensors = read_tensors(path, device)
    fit.tensors(path, meta, tensors)
    return meta, tensors


def load_latest(run_dir: str | Path, algorithm: str, spaces_json: dict, device,
                fit: Fit | None = None) -> tuple[Path, dict, dict]:
    """The newest checkpoint of ``run_dir`` that passes every check: (path, meta, tensors).

    Those skipped on the way, newest first, are named with their reasons in ``meta['skipped']``
    (and their folders in ``meta['skipped_paths']``); the rules are in the module docstring.
    """
    root = Path(run_dir) / "checkpoints"
    candidates = complete_checkpoints(run_dir)
    skipped: list[tuple[Path, str]] = []
    other: list[OtherExperimentError] = []
    for path in reversed(candidates):
        try:
            meta, tensors = load_one(path, algorithm, spaces_json, device, fit)
        except NewerFormatError:
            raise
        except OtherExperimentError as exc:
            other.append(exc)
            skipped.append((path, f"{path.name}/{META}: {exc.short} (a checkpoint of another "
                                  "experiment)"))
            continue
        except CheckpointError as exc:
            reason = str(exc)
            skipped.append((path, reason if reason.startswith(path.name)
                            else f"{path.name}: {reason}"))
            continue
        meta["skipped"] = [reason for _, reason in skipped]
        meta["skipped_paths"] = [str(p) for p, _ in skipped]
        return path, meta, tensors
    if not candidates:
        raise CheckpointError(f"no loadable checkpoint in {root} (none complete: each needs "
                              f"{WEIGHTS} and {META}); start the run again with `rlcore run`")
    if len(other) == len(candidates):  # the run folder belongs to another experiment
        note = (f" (and so are the {len(candidates) - 1} older checkpoint(s))"
                if len(candidates) > 1 else "")
        raise OtherExperimentError(f"{other[0]}{note}", short=other[0].short)
    lines = "\n".join(f"  {reason}" for _, reason in skipped)
    which = "its only checkpoint was" if len(candidates) == 1 else \
        f"each of its {len(candidates)} checkpoints was"
    raise CheckpointError(
        f"no loadable checkpoint in {root}: {which} skipped:\n{lines}\n"
        "undo the change that makes them not fit (config.yaml, --set overrides), restore "
        "damaged files from a copy, or start a new run with `rlcore run`")


def set_aside(paths) -> list[Path]:
    """Rename each checkpoint folder in ``paths`` to ``bad-<name>`` beside it (``-2``, ``-3``
    when taken); returns the new paths. See "Skipped checkpoints" in the module docstring."""
    moved = []
    for p in map(Path, paths):
        if not p.exists():
            continue
        base = p.parent / f"{BAD_PREFIX}{p.name.lstrip('.')}"
        target, i = base, 2
        while target.exists():
            target, i = base.with_name(f"{base.name}-{i}"), i + 1
        try:
            os.rename(p, target)
        except OSError as exc:
            raise CheckpointError(
                f"cannot set aside the skipped checkpoint {p} ({exc.strerror or exc}); a later "
                f"save would count it toward checkpoint.keep. Fix the folder's permissions, or "
                f"move it out of {p.parent}, then resume again") from None
        moved.append(target)
    return moved
