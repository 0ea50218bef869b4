"""Sweeps: experiment values that stand for several, and the trials they expand to.

A mapping with one of these keys, anywhere in an experiment (or given with ``--set``), is a
sweep value; a top-level ``seeds`` runs every setting once per seed::

    seeds: [0, 1, 2]                      # or "0-4"; on the command line --seeds 0-4
    learner:
      lr: {grid_search: [1.0e-4, 3.0e-4]} # every value, crossed with the other grids
    algo:
      ent_coef: {choice: [0.0, 0.01]}     # drawn: one of them per sample (--num-samples N)
      clip_coef: {uniform: [0.1, 0.3]}    # also {loguniform: [1.0e-5, 1.0e-3]}

    --set learner.lr='grid(1e-4,3e-4)'    # also choice(...), uniform(lo,hi), loguniform(lo,hi)

``expand`` is pure: the same file, overrides, seeds and sample count give the same trials in the
same order (grids in file order, the first varying slowest, then samples, then seeds) with the
same names. Drawn values come from a generator seeded with ``SAMPLE_SEED`` and are rounded to 4
significant digits, so a trial's name states its values exactly.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass

from rlcore.config.schema import _where
from rlcore.config.yamlio import _parse, apply_override, read_file
from rlcore.errors import ConfigError

KINDS = ("grid_search", "choice", "uniform", "loguniform")
RANDOM = ("choice", "uniform", "loguniform")
CALLS = {"grid": "grid_search", "grid_search": "grid_search", "choice": "choice",
         "uniform": "uniform", "loguniform": "loguniform"}
_CALL = re.compile(r"^\s*(" + "|".join(CALLS) + r")\((.*)\)\s*$", re.S)
_CALL_START = re.compile(r"^\s*(" + "|".join(CALLS) + r")\s*\(")
SAMPLE_SEED = 0
MAX_TRIALS = 10_000
MAX_NAME = 200  # characters of a trial's folder name
SHARED = ("ray", "logging")  # sections every trial shares: one Ray, one sweep folder


@dataclass(frozen=True)
class Axis:
    """One swept key: its path in the experiment, the kind, the values (or low and high)."""

    path: tuple[str, ...]
    kind: str
    values: tuple
    where: str  # file:line, or --set key

    @property
    def key(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Trial:
    name: str  # its folder in the sweep folder, e.g. lr=0.0003,seed=1
    setting: str  # the name without the seed: one row of the summary table
    params: dict  # swept key -> value, and "seed"
    data: dict  # the experiment, every value concrete


@dataclass
class Sweep:
    source: str
    base: dict  # the experiment with its sweep values in place, without seeds
    marks: dict  # key path -> line, as load_experiment takes them
    axes: list[Axis]
    seeds: list[int]
    num_samples: int
    trials: list[Trial]


# ---------------------------------------------------------------------- reading


def is_sweep(data: dict) -> bool:
    return "seeds" in data or bool(_sweep_paths(data, ()))


def read_sweep(path, overrides=(), seeds: str | None = None,
               num_samples: int | None = None) -> Sweep:
    """Read a sweep file with its overrides and expand it; ConfigError with every problem,
    each located (file:line or --set, and the key)."""
    source = str(path)
    data, marks, problems = _parse(read_file(path, source), source)
    for item in overrides:
        rewritten = item
        try:
            rewritten = sweep_override(item)
            apply_override(data, marks, rewritten)
        except ConfigError as exc:
            problems += [p.replace(f"--set {rewritten}", f"--set {item}", 1)
                         for p in exc.problems]
    return expand(data, marks, source, seeds, num_samples, problems)


def sweep_override(item: str) -> str:
    """``key=grid(a,b)`` as ``key={grid_search: [a,b]}`` (``choice``, ``uniform``,
    ``loguniform`` alike); any other ``--set`` item as it is."""
    key, sep, raw = item.partition("=")
    m = _CALL.match(raw) if sep else None
    if sep and m is None and _CALL_START.match(raw):
        raise ConfigError([f"--set {item}: cannot read {raw.strip()!r} as a sweep; write "
                           "grid(a,b), choice(a,b), uniform(lo,hi) or loguniform(lo,hi)"])
    return f"{key}={{{CALLS[m[1]]}: [{m[2]}]}}" if m else item


def expand(data: dict, marks: dict, source: str, seeds: str | None = None,
           num_samples: int | None = None, problems: list | None = None) -> Sweep:
    """The trials of a parsed sweep (``data`` as ``yamlio`` reads it, with its marks)."""
    problems = list(problems or [])
    data = copy.deepcopy(data)
    given = data.pop("seeds", None)
    if seeds is not None:
        seed_list = parse_seeds(seeds, "--seeds", problems)
    elif given is not None:
        seed_list = parse_seeds(given, _where(source, marks, ("seeds",)) + ": seeds", problems)
    else:  # the file's seed (a bad one is reported when the trials are validated)
        seed_list = [data.get("seed", 0)]
    axes = []
    for p in _sweep_paths(data, ()):
        axes += _axis(p, _get(data, p), _where(source, marks, p), problems)
    samples = 1 if num_samples is None else num_samples
    if num_samples is not None and not 1 <= num_samples <= MAX_TRIALS:
        problems.append(f"--num-samples {num_samples}: must be in [1, {MAX_TRIALS:,}]")
    elif samples > 1 and not any(a.kind in RANDOM for a in axes):
        problems.append(f"--num-samples {samples}: draws values of choice/uniform/loguniform "
                        "keys, and this sweep has none; add one, or drop --num-samples (grids "
                        "and seeds are run in full)")
    if problems:
        raise ConfigError(problems)
    grids = [a for a in axes if a.kind == "grid_search"]
    count = math.prod(len(a.values) for a in grids) * samples * len(seed_list)
    if count > MAX_TRIALS:
        raise ConfigError([f"{source}: the sweep expands to {count:,} trials; rlcore runs up to "
                           f"{MAX_TRIALS:,} at once: fewer grid values, seeds or samples"])
    trials = _trials(data, axes, seed_list, samples)
    _check_names(trials, axes)
    return Sweep(source, data, marks, axes, seed_list, samples, trials)


def parse_seeds(value, where: str, problems: list) -> list[int]:
    """``[0, 1, 2]``, ``3``, ``"0-4"`` or ``"0-2,7"`` as a list of distinct seeds."""
    items = value if isinstance(value, list) else [value]
    seeds: list[int] = []
    for item in items:
        if isinstance(item, str):
            for part in item.split(","):
                m = re.fullmatch(r"\s*(\d{1,10})\s*(?:-\s*(\d{1,10})\s*)?", part)
                if m is None or (m[2] is not None and int(m[2]) < int(m[1])):
                    problems.append(f"{where}: cannot read {part.strip()!r} as seeds; write a "
                                    "list [0, 1, 2], a range 0-4 or both: 0-2,7")
                    return []
                seeds += range(int(m[1]), int(m[2] or m[1]) + 1)
        elif isinstance(item, int) and not isinstance(item, bool):
            seeds.append(item)
        else:
            problems.append(f"{where}: expected seeds (integers), got {item!r}; write a list "
                            "[0, 1, 2] or a range 0-4")
            return []
    bad = [s for s in seeds if not 0 <= s <= 2**31 - 1]
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if not seeds or bad or twice or len(seeds) > MAX_TRIALS:
        why = ("no seeds" if not seeds else f"{bad[0]} is outside [0, 2147483647]" if bad else
               f"{twice[0]} is listed twice" if twice else f"{len(seeds):,} seeds")
        problems.append(f"{where}: {why}; give distinct seeds in [0, 2147483647], e.g. 0-4")
        return []
    return seeds


def _sweep_paths(node, path: tuple) -> list[tuple]:
    """Paths of the sweep values in ``node``, in file order; a sweep value's own values are not
    searched (``_axis`` refuses sweeps nested in them)."""
    if isinstance(node, dict):
        if any(k in KINDS for k in node):
            return [path]
        return [p for k, v in node.items() for p in _sweep_paths(v, path + (str(k),))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _sweep_paths(v, path + (str(i),))]
    return []


def _axis(path: tuple, node: dict, where: str, problems: list) -> list[Axis]:
    key = ".".join(path) or "the top level"
    kind = next(k for k in node if k in KINDS)
    values = node[kind]
    example = "[0.1, 0.3]" if kind in ("uniform", "loguniform") else "[1.0e-4, 3.0e-4]"
    n = len(problems)
    at = where if where.startswith("--set ") else f"{where}: {key}"  # --set names the key
    if len(node) != 1:
        others = ", ".join(str(k) for k in node if k != kind)
        problems.append(f"{at}: a sweep value is a mapping with one key "
                        f"({{{kind}: {example}}}); remove {others}")
    elif path == ("seed",):
        problems.append(f"{at}: sweep seeds with a top-level 'seeds: [0, 1, 2]' (or "
                        "--seeds 0-2), which the summary collapses")
    elif path[:1] in [(s,) for s in SHARED]:
        problems.append(f"{at}: every trial of a sweep shares one Ray and one sweep "
                        f"folder; give {path[0]}.* one value")
    elif not isinstance(values, list) or not values:
        problems.append(f"{at}: {kind} takes a list, e.g. {{{kind}: {example}}}; "
                        f"got {values!r}")
    elif any(_sweep_paths(v, ()) for v in values):
        problems.append(f"{at}: a sweep value inside {kind}'s values; sweep each key "
                        "where it stands (the grids are crossed)")
    elif kind in ("uniform", "loguniform"):
        num = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  for v in values)
        if len(values) != 2 or not num or values[0] >= values[1] or (
                kind == "loguniform" and values[0] <= 0):
            least = "0 < low < high" if kind == "loguniform" else "low < high"
            problems.append(f"{at}: {kind} takes [low, high], two numbers with "
                            f"{least}; got {values!r}")
    elif kind == "grid_search":
        shown = [value_key(v) for v in values]
        twice = [v for v, s in zip(values, shown) if shown.count(s) > 1]
        if twice:
            problems.append(f"{at}: {twice[0]!r} is listed twice in grid_search; "
                            "list each value once (seeds go in seeds:)")
    if len(problems) > n:
        return []
    return [Axis(path, kind, tuple(values), where)]


# ---------------------------------------------------------------------- trials


def _trials(data: dict, axes: list[Axis], seeds: list[int], samples: int) -> list[Trial]:
    import numpy as np

    rng = np.random.default_rng(SAMPLE_SEED)
    grids = [a for a in axes if a.kind == "grid_search"]
    trials = []
    for combo in itertools.product(*[a.values for a in grids]):
        for sample in range(samples):
            values = dict(zip([a.path for a in grids], combo))
            values.update({a.path: _draw(a, rng) for a in axes if a.kind in RANDOM})
            trials += [trial_of(data, axes, values, seed, sample if samples > 1 else None)
                       for seed in seeds]
    return trials


def trial_of(data: dict, axes: list[Axis], values: dict, seed: int,
             sample: int | None = None) -> Trial:
    """The trial that gives each axis (by path) its value in ``values``, with ``seed``."""
    labels = _labels(axes)
    parts = [f"{labels[a.path]}={_show(values[a.path])}" for a in axes]
    if sample is not None:
        parts.append(f"sample={sample}")
    setting = _folder(",".join(parts))
    trial = copy.deepcopy(data)
    for path, value in values.items():
        _set(trial, path, copy.deepcopy(value))
    trial["seed"] = seed
    params = {".".join(p): v for p, v in values.items()} | {"seed": seed}
    name = f"{setting},seed={seed}" if setting else f"seed={seed}"
    return Trial(_shorten(name), setting, params, trial)


def corner_trials(sweep: Sweep) -> list[Trial]:
    """For a search algorithm, whose trials are known only as it suggests them: a trial for
    each choice value and each bound of each range, the other keys at their first value."""
    first = {a.path: a.values[0] for a in sweep.axes}
    out: dict[str, Trial] = {}
    for a in sweep.axes:
        for v in a.values:
            t = trial_of(sweep.base, sweep.axes, first | {a.path: v}, sweep.seeds[0])
            out.setdefault(t.name, t)
    return list(out.values())


def _draw(axis: Axis, rng):
    if axis.kind == "choice":
        return axis.values[int(rng.integers(len(axis.values)))]
    low, high = axis.values
    if axis.kind == "uniform":
        x = rng.uniform(low, high)
    else:
        x = math.exp(rng.uniform(math.log(low), math.log(high)))
    return float(f"{x:.4g}")


def _labels(axes: list[Axis]) -> dict[tuple, str]:
    """The shortest dotted tail of each swept key that no other swept key ends with."""
    out = {}
    for a in axes:
        for k in range(1, len(a.path) + 1):
            tail = a.path[-k:]
            clash = any(b.path[-k:] == tail for b in axes if b is not a)
            if k == len(a.path) or not (clash or ".".join(tail) in ("seed", "sample")):
                out[a.path] = ".".join(tail)
                break
    return out


def value_key(value) -> str:
    """A text that is equal for equal values (YAML mappings may mix key types)."""
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _show(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "x".join(_show(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def _folder(text: str) -> str:
    """Letters, digits and ``._+-=,`` only: a folder name any shell and tool takes as it is."""
    return re.sub(r"[^A-Za-z0-9._+=,-]+", "-", text)


def _shorten(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[:MAX_NAME - 11]}-{digest}"


def _check_names(trials: list[Trial], axes: list[Axis]) -> None:
    first: dict[str, Trial] = {}
    for t in trials:
        other = first.setdefault(t.name, t)
        if other is not t:
            key = next((k for k, v in t.params.items() if other.params[k] != v), "?")
            axis = next((a for a in axes if a.key == key), None)
            raise ConfigError([f"{axis.where if axis else key}: {key}: the values "
                               f"{other.params[key]!r} and {t.params[key]!r} give the same "
                               f"trial folder '{t.name}'; make them differ in letters or digits"])


def _get(data, path: tuple):
    for part in path:
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _set(data, path: tuple, value) -> None:
    parent = _get(data, path[:-1])
    if isinstance(parent, list):
        parent[int(path[-1])] = value
    else:
        parent[path[-1]] = value


def refuse_in_run(data: dict, marks: dict, source: str) -> list[str]:
    """Problems for a file with sweep values given to a command that runs one experiment."""
    found = (["seeds"] if "seeds" in data else []) + [
        ".".join(p) for p in _sweep_paths(data, ())] + [
        ".".join(p) for p, mark in marks.items() if isinstance(mark, str)
        and isinstance(_get_or_none(data, p), str) and _CALL.match(_get_or_none(data, p))]
    if not found:
        return []
    where = _where(source, marks, tuple(found[0].split(".")))
    name = source if source != "<config>" else "FILE"
    head = where if len(found) == 1 and where.startswith("--set ") else f"{where}: {', '.join(found)}"
    return [f"{head}: sweep values (several values for one key, or "
            f"seeds:); this command runs one experiment. Run every trial with `rlcore sweep "
            f"{name}` (`rlcore validate {name}` checks them), or give each key one value"]


def _get_or_none(data, path: tuple):
    try:
        return _get(data, path)
    except (KeyError, IndexError, ValueError, TypeError):
        return None
