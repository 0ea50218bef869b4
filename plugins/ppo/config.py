"""The ``algo:`` section of a ppo experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rlcore.config import Widths


class PPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    variant: Literal["clip", "kl"] = Field(
        "clip", description="clipped surrogate, or the adaptive KL-penalty surrogate")
    clip_coef: float = Field(0.2, gt=0, lt=1, description="ratio clip epsilon (variant: clip)")
    clip_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear anneals clip_coef to 0 over the run")
    kl_target: float = Field(0.01, gt=0, description="target KL per update (variant: kl)")
    kl_coef: float = Field(1.0, ge=0, description="initial KL penalty beta (variant: kl)")
    normalize_advantage: bool = Field(True, description="standardize advantages per batch")
    vf_coef: float = Field(0.5, ge=0, description=(
        "weight of the value loss 0.5 (V - R)^2 (CleanRL's; SB3's and RLlib's vf_coef weighs "
        "(V - R)^2: twice theirs is the same weighting)"))
    vf_clip_coef: float | None = Field(
        None, gt=0, description="clip value updates around the old values; null = off")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus weight")
    hidden_sizes: Widths = Field((64, 64), description="MLP widths (vector observations)")
    value_hidden_sizes: Widths | None = Field(
        None, description="value MLP widths (vector observations); default: hidden_sizes")
    activation: Literal["tanh", "relu"] = Field("tanh", description="MLP activation")
    squash: bool = Field(False, description="Box actions: tanh-squash the Gaussian (else clip to bounds)")
    log_std_init: float = Field(0.0, ge=-5, le=2, description="Box actions: initial log std (policy range [-1, 1])")
