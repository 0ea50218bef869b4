"""The ``algo:`` section of a pg experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rlcore.config import Widths


class PGConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    advantage: Literal["reward_to_go", "gae"] = Field(
        "reward_to_go", description="reward-to-go minus the learned baseline, or GAE")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (advantage: gae only)")
    normalize_advantage: bool = Field(True, description="standardize advantages per batch")
    vf_coef: float = Field(0.5, ge=0, description="weight of the baseline's regression loss")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus weight")
    hidden_sizes: Widths = Field((64, 64), description="MLP widths (vector observations)")
    value_hidden_sizes: Widths | None = Field(
        None, description="value MLP widths (vector observations); default: hidden_sizes")
    activation: Literal["tanh", "relu"] = Field("tanh", description="MLP activation")
    squash: bool = Field(False, description="Box actions: tanh-squash the Gaussian (else clip to bounds)")
    log_std_init: float = Field(0.0, ge=-5, le=2, description="Box actions: initial log std (policy range [-1, 1])")
