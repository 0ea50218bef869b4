"""The ``algo:`` sections of c51 and qrdqn (replay and exploration keys: rlcore.regimes.transition_config)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rlcore.regimes.transition_config import ActionGapConfig, ValueRangeConfig


class C51Config(ActionGapConfig):
    num_atoms: int = Field(51, ge=2, le=1001, description="atoms of the fixed support")
    v_min: float = Field(-10.0, description="lowest atom (returns below are projected onto it)")
    v_max: float = Field(10.0, description="highest atom (returns above are projected onto it)")
    double_q: bool = Field(False, description="pick the next action with the online network")
    dueling: bool = Field(False, description="dueling head: V + A - mean A, per atom")
    target_update_period: int = Field(1000, ge=1, description="optimizer steps between target updates")

    @model_validator(mode="after")
    def _support(self):
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min ({self.v_min}) must be below v_max ({self.v_max})")
        return self


class QRDQNConfig(ActionGapConfig, ValueRangeConfig):
    num_quantiles: int = Field(200, ge=1, le=1000, description="quantiles per action")
    kappa: float = Field(1.0, gt=0, description="quantile Huber threshold")
    double_q: bool = Field(False, description="pick the next action with the online network")
    dueling: bool = Field(False, description="dueling head: V + A - mean A, per quantile")
    target_update_period: int = Field(1000, ge=1, description="optimizer steps between target updates")
