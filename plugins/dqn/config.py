"""The ``algo:`` section of a dqn experiment (replay and exploration keys: rlcore.regimes.transition_config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlcore.regimes.transition_config import ActionGapConfig, ValueRangeConfig


class DQNConfig(ActionGapConfig, ValueRangeConfig):
    double_q: bool = Field(False, description="double Q-learning: online argmax, target value")
    dueling: bool = Field(False, description="dueling head: V + A - mean A")
    loss: Literal["huber", "mse"] = Field("huber", description="TD loss")
    huber_delta: float = Field(1.0, gt=0, description="Huber loss threshold")
    target_update_period: int = Field(1000, ge=1, description="optimizer steps between target updates")
    soft_beta: float | None = Field(
        None, gt=0, le=1e6, description="soft (entropy-regularized) Q-learning at this inverse "
        "temperature: target r + gamma/beta log mean_a' exp(beta Q_target(s', a')), and the "
        "actors sample exp(beta Q) where they do not act at random; null = hard max")
    soft_bounds: Literal["none", "clip"] = Field(
        "none", description="soft_beta: clip each target into the double-sided bounds on the "
        "soft optimum from the online network's soft Bellman residuals on the batch (Adamczyk "
        "et al., RLC 2024; plugins/dqn/README.md says which)")

    @model_validator(mode="after")
    def _soft_is_not_double(self):
        if self.soft_beta is not None and self.double_q:
            raise ValueError("algo.soft_beta: the soft target averages over every next action, "
                             "so double_q's argmax has nothing to pick; set double_q: false")
        if self.soft_bounds != "none" and self.soft_beta is None:
            raise ValueError("algo.soft_bounds bounds the soft optimum: set algo.soft_beta too, "
                             "or soft_bounds: none")
        return self
