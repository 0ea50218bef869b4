"""Strict loading of an experiment: YAML (with positions), overrides, validation of every
section and the plugin's ``algo`` section, cross-checks; every problem at once, each with
file, line and key, before anything starts."""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path

from pydantic import BaseModel, ValidationError

from rlcore.config.schema import (Experiment, ExperimentConfig, LearnerConfig, _bounds,
                                  _where)
from rlcore.config.expand import refuse_in_run
from rlcore.config.yamlio import _parse, apply_override, read_file
from rlcore.errors import ConfigError, RegistryError


def _field_info(model: type[BaseModel], loc: tuple):
    for i, part in enumerate(loc):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return None
        info = fields[part]
        if i == len(loc) - 1:
            return info
        ann = info.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None:
            return None
    return None


def _known_keys(plugin) -> dict[str, list[str]]:
    """Leaf name -> every full key with that name (core sections and the plugin's algo)."""
    known: dict[str, list[str]] = {}

    def add(model, prefix):
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                add(ann, f"{prefix}{name}.")
            else:
                known.setdefault(name, []).append(f"{prefix}{name}")

    add(ExperimentConfig, "")
    if plugin is not None:
        add(plugin.config_cls, "algo.")
    return known


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false",
               "string": "a string", "dict": "a mapping", "model": "a mapping",
               "finite_number": "a finite number", "tuple": "a list", "list": "a list"}


def _describe_error(err: dict, model: type[BaseModel], prefix: tuple, owner: str,
                    known: dict) -> tuple[tuple, str]:
    loc = tuple(str(p) for p in err["loc"])
    full = prefix + loc
    key = ".".join(full)
    etype = err["type"]
    got = err.get("input")
    if etype == "extra_forbidden":
        parent = _field_info(model, loc[:-1]) if len(loc) > 1 else None
        parent_model = model
        if parent is not None:
            parent_model = parent.annotation
        candidates = list(getattr(parent_model, "model_fields", {}))
        elsewhere = [k for k in known.get(loc[-1], []) if k != key]
        close = difflib.get_close_matches(loc[-1], candidates, n=1, cutoff=0.6)
        if elsewhere:
            hint = f"; did you mean '{elsewhere[0]}'?"
        elif close:
            hint = f"; did you mean '{close[0]}'?"
        else:
            hint = f"; known keys: {', '.join(candidates)}"
        return full, f"unknown key '{key}'{owner}{hint}"
    if etype == "missing":
        return full, f"missing required key '{key}'"
    if etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        info = _field_info(model, loc)
        if info is None:  # an item of a list (algo.hidden_sizes[1]): the bound is in the error
            item = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            ops = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
            bound = " and ".join(f"{ops.get(k, k)} {v}" for k, v in (err.get("ctx") or {}).items())
            return full, f"{'.'.join(prefix)}{item} must be {bound or 'in range'} (got {got!r})"
        return full, f"{key} must be {_bounds(info)} (got {got!r})"
    if etype == "too_short":
        least = (err.get("ctx") or {}).get("min_length", 1)
        return full, f"{key} must have at least {least} item{'s' * (least != 1)} (got {got!r})"
    if etype == "literal_error":
        return full, f"{key}: {err['msg'].replace('Input should be', 'must be')} (got {got!r})"
    for word, text in _TYPE_WORDS.items():
        if etype.startswith(word) or etype == f"{word}_type":
            return full, f"{key}: expected {text}, got {got!r}"
    if etype == "value_error" and isinstance(got, dict):  # a section's own validator: its
        # message names the keys; the whole section's values would only bury it
        return full, err["msg"].removeprefix("Value error, ")
    return full, f"{key}: {err['msg']} (got {got!r})"


def _validate(model: type[BaseModel], data: dict, prefix: tuple, marks: dict, source: str,
              problems: list, owner: str = "", known: dict | None = None):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "too_short" and any(
                    len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc)]) == loc
                    for e in errors):
                continue  # the list is short only because an item of it failed: said already
            full, msg = _describe_error(err, model, prefix, owner, known or {})
            problems.append(f"{_where(source, marks, full)}: {msg}")
        return None


def _nonfinite_fields(model, prefix: tuple, source: str, marks: dict) -> list[str]:
    """Plugin configs take finite floats only (the core's sections refuse inf and nan in their
    model config), unless a field's ``json_schema_extra`` says ``{"allow_inf_nan": True}``."""
    import math

    out = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if isinstance(value, float) and not math.isfinite(value) and not extra.get("allow_inf_nan"):
            key = prefix + (name,)
            out.append(f"{_where(source, marks, key)}: {'.'.join(key)} must be a finite number "
                       f"(got {value!r})")
        elif isinstance(value, BaseModel):
            out += _nonfinite_fields(value, prefix + (name,), source, marks)
    return out


def _cross_checks(cfg: ExperimentConfig, source: str, marks: dict, plugin=None,
                  algo=None) -> list[str]:
    problems = []
    for name in cfg.learner.groups:
        declared = plugin.optimizer_groups if plugin is not None else {}
        if callable(declared):
            declared = declared(algo) if algo is not None else {name: ()}
        if plugin is not None and name not in declared:
            problems.append(
                f"{_where(source, marks, ('learner', 'groups', name))}: learner.groups.{name}: "
                f"{plugin.name} has no optimizer group '{name}' "
                f"({'its groups: ' + ', '.join(declared) if declared else 'it has one group'})")
    if cfg.rollout.num_actors > cfg.env.num_envs and (
            plugin is None or plugin.data_spec.regime != "game"):
        problems.append(
            f"{_where(source, marks, ('rollout', 'num_actors'))}: rollout.num_actors "
            f"({cfg.rollout.num_actors}) is more than env.num_envs ({cfg.env.num_envs}), the "
            "sub-environments split over the actors; each actor steps at least one: raise "
            "env.num_envs or lower rollout.num_actors")
    if plugin is not None and plugin.data_spec.regime != "trajectory":
        for key in ("normalize_obs", "normalize_reward"):
            if getattr(cfg.env, key):
                problems.append(
                    f"{_where(source, marks, ('env', key))}: env.{key} is for the on-policy "
                    f"algorithms (pg, ppo, trpo); {plugin.name} ({plugin.data_spec.regime} regime) "
                    "does not support it: remove it")
    if plugin is not None and plugin.data_spec.regime == "transition":
        # replay: one optimizer step per sampled batch of algo.batch_size, no noise scale; a
        # value other than the default was set by hand (a run's resolved config lists them all)
        for key in ("num_epochs", "minibatch_size", "gns_microbatches", "gns_every", "gns_ema"):
            default = plugin.learner_defaults.get(key, LearnerConfig.model_fields[key].default)
            if ("learner", key) in marks and getattr(cfg.learner, key) != default:
                problems.append(
                    f"{_where(source, marks, ('learner', key))}: learner.{key} does not apply to "
                    f"{plugin.name} (replay takes one optimizer step per sampled batch of "
                    "algo.batch_size); remove it, or set algo.batch_size / algo.replay_ratio")
        return problems
    batch, learner = cfg.batch_size, cfg.learner
    if learner.minibatch_size > batch:
        problems.append(
            f"{_where(source, marks, ('learner', 'minibatch_size'))}: learner.minibatch_size "
            f"({learner.minibatch_size}) is larger than the batch of one update: env.num_envs="
            f"{cfg.env.num_envs} x rollout.fragment_length={cfg.rollout.fragment_length} = "
            f"{batch}; lower it to at most {batch} (0 = whole batch) or collect more per update")
    minibatch = learner.minibatch_size or batch
    if learner.gns_microbatches > minibatch:
        problems.append(
            f"{_where(source, marks, ('learner', 'gns_microbatches'))}: learner.gns_microbatches "
            f"({learner.gns_microbatches}) is larger than the minibatch it splits "
            f"(learner.minibatch_size={learner.minibatch_size}: {minibatch} samples); "
            f"lower it to at most {minibatch}")
    return problems


_SECTIONS = [name for name, info in ExperimentConfig.model_fields.items()
             if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)]


def _problem_order(source: str):
    at_line = re.compile(re.escape(source) + r":(\d+)")

    def order(problem: str) -> tuple[int, int]:
        m = at_line.match(problem)
        return (1, 0) if problem.startswith("--set ") else (0, int(m.group(1)) if m else 0)

    return order


def load_experiment(path: str | Path | None = None, overrides: list[str] = (), *,
                    data: dict | None = None, marks: dict | None = None) -> Experiment:
    """Read, override and validate an experiment. Raises ConfigError listing every problem.
    With ``data`` (already read, e.g. one trial of a sweep), ``path`` and ``marks`` only locate
    the problems."""
    from rlcore import registry

    source = str(path) if path is not None else "<config>"
    problems: list[str] = []
    if data is None:
        data, marks, problems = _parse(read_file(path, source), source)
    else:
        data, marks = copy.deepcopy(data), dict(marks or {})
    for item in overrides:
        try:
            apply_override(data, marks, item)
        except ConfigError as exc:
            problems += exc.problems
    refused = refuse_in_run(data, marks, source)
    if refused:  # sweep values would only read as wrong types and an unknown key
        raise ConfigError(problems + refused)
    for name in _SECTIONS + ["algo"]:
        if name in data and data[name] is None:  # an empty section means "all defaults"
            data[name] = {}
    plugin = algo = None
    name = data.get("algorithm")
    if isinstance(name, str):
        try:
            plugin = registry.get_algorithm(name)
        except RegistryError as exc:
            problems.append(f"{_where(source, marks, ('algorithm',))}: {exc}")
    known = _known_keys(plugin)
    cfg = _validate(ExperimentConfig, data, (), marks, source, problems, known=known)
    if plugin is not None:
        if cfg is not None:  # the plugin's learner defaults apply where the file is silent
            given = data.get("learner") if isinstance(data.get("learner"), dict) else {}
            for key, value in plugin.learner_defaults.items():
                if key not in given:
                    setattr(cfg.learner, key, value)
        algo_data = data.get("algo") if isinstance(data.get("algo"), dict) else {}
        algo = _validate(plugin.config_cls, algo_data, ("algo",), marks, source, problems,
                         owner=f" for {plugin.name}", known=known)
        if algo is not None:
            problems += _nonfinite_fields(algo, ("algo",), source, marks)
    if cfg is not None:
        problems += _cross_checks(cfg, source, marks, plugin, algo)
    if problems:
        raise ConfigError(sorted(problems, key=_problem_order(source)))
    return Experiment(cfg, algo, plugin, source, marks)
