"""Experiment schema and strict YAML loading.

One YAML file = one experiment. Every field is typed, has a default, a bound and a one-line
description (``rlcore schema`` prints them all). Validation reports every problem at once with
file, line and key, before anything starts. YAML is loaded with ``yaml.SafeLoader`` (data only)
extended so that ``3e-4`` and ``1e6`` are numbers, as in YAML 1.2.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from rlcore.errors import ConfigError, RegistryError
from rlcore.config.yamlio import _parse, apply_override


# Layer widths of an MLP (``hidden_sizes`` in the algorithm sections): each at least 1.
Widths = tuple[Annotated[int, Field(ge=1)], ...]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bools_as_numbers(cls, value, info):
        """Pydantic reads true/yes as 1 for an int; in a config that is always a mistake."""
        ann = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and ann in (int, float, int | None, float | None):
            kind = "int" if ann in (int, int | None) else "float"
            raise PydanticCustomError(f"{kind}_type", "expected a number")
        return value


class EnvConfig(Section):
    id: str = Field(description="Gymnasium id, e.g. CartPole-v1 or rlcore/Pong-v5")
    num_envs: int = Field(8, ge=1, le=4096, description="sub-environments in all, split over the rollout actors (inline: all in the driver)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to gymnasium.make")
    clip_rewards: bool = Field(False, description="train on sign(reward); episode returns stay raw")
    normalize_obs: bool = Field(
        False, description="running mean/std observation normalization, one set of statistics for the run")
    normalize_reward: bool = Field(
        False, description="divide rewards by the running std of the discounted return")
    obs_clip: float = Field(10.0, gt=0, description="normalized observations are clipped to +-this")
    reward_clip: float = Field(10.0, gt=0, description="scaled rewards are clipped to +-this")
    reward_gamma: float | None = Field(
        None, gt=0, le=1, description="discount of the return whose std scales rewards; null = algo.gamma")


class RolloutConfig(Section):
    num_actors: int = Field(0, ge=0, le=4096,
                            description="Ray rollout actors; 0 runs the rollout loop inline")
    fragment_length: int = Field(128, ge=1, le=100_000,
                                 description="steps per sub-environment in one fragment")
    num_cpus_per_actor: float = Field(1.0, gt=0, le=256, description="CPUs each actor reserves")
    sample_timeout_s: float = Field(
        300.0, gt=0, description="longest wait for an actor's answer (a silent actor is replaced); inline and in evaluation, for one env.step/reset (the run stops)")
    max_actor_restarts: int = Field(
        3, ge=0, le=1000, description="replace a dead, hung or failing worker up to N times in a row, then stop")
    restart_budget: int = Field(
        10, ge=0, le=100_000, description="at most N worker replacements within restart_window_s (all workers), then stop")
    restart_window_s: float = Field(
        600.0, gt=0, description="the window of restart_budget, in seconds")
    nonfinite: Literal["stop", "drop"] = Field(
        "stop", description="NaN/inf obs or reward: stop the run, or drop the fragment and reset the envs")
    max_nonfinite_drops: int = Field(
        10, ge=1, le=100_000, description="nonfinite: drop stops after N dropped fragments in a row")


class LearnerConfig(Section):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto picks cuda if present")
    num_gpus: float = Field(
        0.0, ge=0, le=64, description="> 0: the learner runs in a Ray actor holding this many GPUs, on whichever node has them; 0 = in the driver")
    resources: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources (amounts > 0) the learner actor asks for, e.g. {learner_node: 1}; non-empty = learner in a Ray actor")
    lr: float = Field(3e-4, gt=0, le=1, description="Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear anneals lr to 0 at stop.num_env_steps")
    adam_eps: float = Field(1e-5, gt=0, le=1, description="Adam epsilon")
    num_epochs: int = Field(4, ge=1, le=1000, description="passes over each batch")
    minibatch_size: int = Field(256, ge=0, description="samples per optimizer step; 0 = whole batch")
    max_grad_norm: float | None = Field(0.5, gt=0, description="global grad-norm clip; null = off")
    gns_microbatches: int = Field(
        4, ge=2, le=1024, description="gradient noise scale: pieces one minibatch is split into")
    gns_every: int = Field(1, ge=1, description="measure the gradient noise scale every N updates")
    gns_ema: float = Field(0.95, ge=0, lt=1, description="EMA decay of the noise-scale estimates")
    torch_threads: int = Field(0, ge=0, le=1024, description="torch threads in the learner; 0 = the cores local actors leave free (1 if <= 2)")
    nonfinite: Literal["skip", "stop"] = Field(
        "skip", description="NaN/inf loss or gradient: skip the optimizer step (counted), or stop")
    max_nonfinite_steps: int = Field(
        10, ge=1, le=100_000, description="nonfinite: skip stops after N skipped steps in a row")

    @field_validator("resources")
    @classmethod
    def _positive_amounts(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not v > 0]
        if bad:
            raise ValueError(f"the amounts of {', '.join(bad)} must be > 0 (a resource the "
                             "learner does not need is left out)")
        return value


class StopConfig(Section):
    num_env_steps: int = Field(100_000, ge=1, description="total environment steps")
    eval_return: float | None = Field(None, description="stop at the first eval mean >= this")
    wall_s: float | None = Field(None, gt=0, description="stop after this many seconds")


class EvalConfig(Section):
    every_env_steps: int = Field(0, ge=0, description="evaluate every N env steps; 0 = at the end")
    episodes: int = Field(10, ge=1, le=100_000, description="episodes per evaluation")
    deterministic: bool = Field(True, description="greedy / mean action")
    env_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="merged over env.kwargs for evaluation, e.g. {split: test}")


class LoggingConfig(Section):
    root: str = Field("runs", description="run directories are created under this folder")
    progress_every_s: float = Field(1.0, ge=0, description="console progress line period; 0 = off")


class CheckpointConfig(Section):
    every_env_steps: int = Field(0, ge=0, description="checkpoint period; 0 = only at the end")
    keep: int = Field(3, ge=1, le=1000, description="how many recent checkpoints to keep")


class RayConfig(Section):
    address: str | None = Field(None, description="null: local Ray on 127.0.0.1; auto | host:port")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray; null = all")
    connect_timeout_s: float = Field(30.0, gt=0, le=600, description="give up joining after this")


class ExperimentConfig(Section):
    algorithm: str = Field(description="registered algorithm name, e.g. ppo")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seeds envs, policies and the learner")
    env: EnvConfig
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    algo: dict[str, Any] = Field(default_factory=dict, description="the algorithm's own section")
    stop: StopConfig = Field(default_factory=StopConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @property
    def eval_env_kwargs(self) -> dict:
        """The kwargs of the evaluation env: env.kwargs with eval.env_kwargs on top."""
        return {**self.env.kwargs, **self.eval.env_kwargs}

    @property
    def batch_size(self) -> int:
        """Environment steps per update of the trajectory regime, whatever the placement."""
        return self.env.num_envs * self.rollout.fragment_length


@dataclass
class Experiment:
    """A validated experiment: the core config, the plugin and its typed ``algo`` section."""

    config: ExperimentConfig
    algo: Any
    plugin: Any
    source: str
    marks: dict = field(default_factory=dict)  # key path -> line in ``source`` (or "--set key")

    def where(self, *key: str) -> str:
        """``file:line`` (or ``--set key``) where ``key`` was given, for messages."""
        return _where(self.source, self.marks, tuple(key))

    @property
    def plugin_target(self) -> str:
        from rlcore.registry import algorithm_target

        return algorithm_target(self.config.algorithm)

    def resolved(self) -> dict:
        data = self.config.model_dump(mode="json")
        data["algo"] = self.algo.model_dump(mode="json")
        return data


# ---------------------------------------------------------------- validation


def _where(source: str, marks: dict, path: tuple) -> str:
    """``file:line`` of ``path`` or of its nearest given parent; ``--set key`` for overrides."""
    for n in range(len(path), 0, -1):
        mark = marks.get(path[:n])
        if mark is not None:
            return mark if isinstance(mark, str) else f"{source}:{mark}"
    return source


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


def _bounds(info) -> str:
    lo = hi = None
    lo_b, hi_b = "[", "]"
    for m in getattr(info, "metadata", []):
        for attr, br in (("ge", "["), ("gt", "(")):
            if getattr(m, attr, None) is not None:
                lo, lo_b = getattr(m, attr), br
        for attr, br in (("le", "]"), ("lt", ")")):
            if getattr(m, attr, None) is not None:
                hi, hi_b = getattr(m, attr), br
    if lo is not None and hi is not None:
        return f"in {lo_b}{lo}, {hi}{hi_b}"
    if lo is not None:
        return f"{'>=' if lo_b == '[' else '>'} {lo}"
    if hi is not None:
        return f"{'<=' if hi_b == ']' else '<'} {hi}"
    return "in range"


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
    if etype == "literal_error":
        return full, f"{key}: {err['msg'].replace('Input should be', 'must be')} (got {got!r})"
    for word, text in _TYPE_WORDS.items():
        if etype.startswith(word) or etype == f"{word}_type":
            return full, f"{key}: expected {text}, got {got!r}"
    return full, f"{key}: {err['msg']} (got {got!r})"


def _validate(model: type[BaseModel], data: dict, prefix: tuple, marks: dict, source: str,
              problems: list, owner: str = "", known: dict | None = None):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            full, msg = _describe_error(err, model, prefix, owner, known or {})
            problems.append(f"{_where(source, marks, full)}: {msg}")
        return None


def _cross_checks(cfg: ExperimentConfig, source: str, marks: dict, plugin=None) -> list[str]:
    problems = []
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


def _read(path: str | Path, source: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                           f"{exc.start}); is this the experiment file? Save it as UTF-8"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read the experiment file "
                           f"({exc.strerror or exc})"]) from None


def load_experiment(path: str | Path | None = None, overrides: list[str] = (), *,
                    data: dict | None = None) -> Experiment:
    """Read, override and validate an experiment. Raises ConfigError listing every problem."""
    from rlcore import registry

    source = str(path) if path is not None else "<config>"
    marks: dict = {}
    problems: list[str] = []
    if data is None:
        data, marks, problems = _parse(_read(path, source), source)
    else:
        data = copy.deepcopy(data)
    for item in overrides:
        try:
            apply_override(data, marks, item)
        except ConfigError as exc:
            problems += exc.problems
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
    if cfg is not None:
        problems += _cross_checks(cfg, source, marks, plugin)
    if problems:
        raise ConfigError(sorted(problems, key=_problem_order(source)))
    return Experiment(cfg, algo, plugin, source, marks)


def _type_name(ann) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is Annotated:  # an item with bounds, as in Widths: "int >= 1"
        return f"{_type_name(args[0])} {_bounds(args[1])}"
    if "Annotated" in str(ann):  # a container or union of bounded items
        parts = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        if origin is tuple:
            return f"tuple[{parts}]"
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    if not args and hasattr(ann, "__name__"):
        return ann.__name__
    return str(ann).replace("typing.", "")


def schema_lines(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> list[str]:
    """One line per key: name, type, default, bounds, description (for ``rlcore schema``).
    A model's plain keys come first, then its sections."""
    lines, sections = [], []
    for name, info in model.model_fields.items():
        ann = info.annotation
        key = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections += [f"{key}:"] + schema_lines(ann, key + ".")
            continue
        default = "required" if info.is_required() else (
            info.default_factory() if info.default_factory else info.default)
        bounds = _bounds(info)
        bounds = "" if bounds == "in range" else f"  {bounds}"
        lines.append(f"  {key}: {_type_name(ann)} = {default!r}{bounds}  # {info.description or ''}")
    return lines + sections
