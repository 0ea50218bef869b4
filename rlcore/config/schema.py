"""The experiment schema: one YAML file = one experiment. Every field is typed, has a default,
a bound and a one-line description (``rlcore schema`` prints them all, ``schema_lines``).
Loading and validation are in ``rlcore.config.loading``; YAML reading in ``yamlio``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rlcore.config.fields import Widths  # noqa: F401 (imported from here too)


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
    inference: Literal["numpy", "torch"] = Field(
        "numpy", description="actors run the plugin's numpy policy where it has one (no torch in the actor), or its torch modules")
    inline_start: bool = Field(
        True, description="local Ray, learner in the driver: step inline from the start while Ray and the actors start, then hand over to them (where early rounds run depends on timing: false for runs that repeat bit for bit)")
    overlap: bool = Field(
        False, description="each worker's sub-envs in two halves: one half steps (in a native vector env's own threads, e.g. rlcore/<Game>Native-v5) while the policy acts for the other; sampled actions then differ from an unsplit run's")
    min_actors: int | None = Field(
        None, ge=1, le=4096, description="start once the cluster has room for this many actors (null = all num_actors); the other slots run inside them and get actors of their own as nodes join")

    @model_validator(mode="after")
    def _min_actors_fit(self):
        if self.min_actors is not None and self.min_actors > self.num_actors:
            raise ValueError(f"rollout.min_actors ({self.min_actors}) must be at most "
                             f"rollout.num_actors ({self.num_actors}): it is how many of them "
                             "the run starts with; lower it, or raise num_actors")
        return self


class GroupConfig(Section):
    """Settings of one optimizer group (``learner.groups.<name>``); null = the learner's."""

    lr: float | None = Field(None, gt=0, le=1, description="Adam learning rate of this group")
    lr_schedule: Literal["constant", "linear"] | None = Field(None, description="its lr schedule")
    adam_eps: float | None = Field(None, gt=0, le=1, description="its Adam epsilon")
    max_grad_norm: float | None = Field(None, ge=0, description="its grad-norm clip; 0 = off")


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
    fused_adam: bool = Field(
        False, description="torch's fused Adam (one kernel per step, faster on CPU and GPU); rounds differently from the default multi-tensor kernels, so a seed gives other numbers")
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
    groups: dict[str, GroupConfig] = Field(
        default_factory=dict, description="per optimizer group of the plugin (e.g. actor, critic): lr, lr_schedule, adam_eps, max_grad_norm")
    max_nonfinite_steps: int = Field(
        10, ge=1, le=100_000, description="nonfinite: skip stops after N skipped steps in a row")
    init_from: str | None = Field(
        None, description="start from the weights of a run folder (its latest checkpoint) or a checkpoint folder of the same algorithm and env; optimizer, counters and replay start fresh")
    init_keys: list[str] = Field(
        default_factory=list, description="init_from: the modules (q) or state-dict entries (q.q) copied; empty = every module")

    @field_validator("resources")
    @classmethod
    def _positive_amounts(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not v > 0]
        if bad:
            raise ValueError(f"the amounts of {', '.join(bad)} must be > 0 (a resource the "
                             "learner does not need is left out)")
        return value

    @model_validator(mode="after")
    def _keys_need_a_source(self):
        if self.init_keys and not self.init_from:
            raise ValueError("learner.init_keys picks what learner.init_from copies: set "
                             "init_from too, or remove init_keys")
        return self


class StopConfig(Section):
    num_env_steps: int = Field(100_000, ge=1, description="total environment steps")
    eval_return: float | None = Field(None, description="stop at the first eval mean >= this")
    wall_s: float | None = Field(None, gt=0, description="stop after this many seconds")


class EvalConfig(Section):
    every_env_steps: int = Field(0, ge=0, description="evaluate every N env steps; 0 = at the end")
    episodes: int = Field(10, ge=1, le=100_000, description="episodes per evaluation")
    deterministic: bool = Field(True, description="greedy / mean action")
    video_every_env_steps: int = Field(
        0, ge=0, description="a greedy episode as an animated GIF in TensorBoard (eval/video) at "
        "the first evaluation and at each that passes a multiple of N env steps; 0 = never")
    env_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="merged over env.kwargs for evaluation, e.g. {split: test}")


class LoggingConfig(Section):
    root: str = Field("runs", description="run directories are created under this folder")
    progress_every_s: float = Field(1.0, ge=0, description="console progress line period; 0 = off")


class CheckpointConfig(Section):
    every_env_steps: int = Field(0, ge=0, description="checkpoint period; 0 = only at the end")
    keep: int = Field(3, ge=1, le=1000, description="how many recent checkpoints to keep")
    keep_best: bool = Field(True, description="also keep the weights of the best evaluation so "
                            "far in checkpoints/best (rlcore eval --checkpoint best)")


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


def flatten(tree: dict, prefix: str = "") -> dict:
    """A resolved config's keys joined by dots (``{"algo.lr": 0.001, "env.id": ...}``); an empty
    section stays one key holding ``{}``."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _where(source: str, marks: dict, path: tuple) -> str:
    """``file:line`` of ``path`` or of its nearest given parent; ``--set key`` for overrides."""
    for n in range(len(path), 0, -1):
        mark = marks.get(path[:n])
        if mark is not None:
            return mark if isinstance(mark, str) else f"{source}:{mark}"
    return source


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


def _type_name(ann) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is Annotated:  # an item with bounds, as in Widths: "int >= 1"
        bounds = _bounds(args[1])
        if bounds == "in range":  # a length bound (Widths): non-empty
            least = getattr(args[1], "min_length", None) or next(
                (m.min_length for m in getattr(args[1], "metadata", [])
                 if getattr(m, "min_length", None)), None)
            return f"{_type_name(args[0])}" + (f" (at least {least})" if least else "")
        return f"{_type_name(args[0])} {bounds}"
    if "Annotated" in str(ann):  # a container or union of bounded items
        parts = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        if origin is tuple:
            return f"tuple[{parts}]"
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    if not args and hasattr(ann, "__name__"):
        return ann.__name__
    return str(ann).replace("typing.", "").replace(f"{__name__}.", "")


def schema_lines(model: type[BaseModel] = ExperimentConfig, prefix: str = "",
                 defaults: dict | None = None) -> list[str]:
    """One line per key: name, type, default, bounds, description (for ``rlcore schema``).
    A model's plain keys come first, then its sections. ``defaults`` ({"learner.lr": 1e-3})
    are the defaults a plugin sets in place of the core's (``learner_defaults``)."""
    lines, sections, defaults = [], [], defaults or {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        key = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections += [f"{key}:"] + schema_lines(ann, key + ".", defaults)
            continue
        default = "required" if info.is_required() else (
            info.default_factory() if info.default_factory else info.default)
        if key in defaults:
            default = defaults[key]
        bounds = _bounds(info)
        bounds = "" if bounds == "in range" else f"  {bounds}"
        lines.append(f"  {key}: {_type_name(ann)} = {default!r}{bounds}  # {info.description or ''}")
    return lines + sections
