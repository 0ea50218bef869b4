"""The ``algo:`` section of a supervised experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rlcore.config import Widths


class SupervisedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden_sizes: Widths = Field((64, 64), description="MLP widths (vector observations)")
    activation: Literal["tanh", "relu"] = Field("tanh", description="MLP activation")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
