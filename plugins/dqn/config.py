"""The ``algo:`` section of a dqn experiment (replay and exploration keys: rlcore.regimes.transition_config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlcore.regimes.transition_config import EpsilonGreedyConfig


class DQNConfig(EpsilonGreedyConfig):
    double_q: bool = Field(False, description="double Q-learning: online argmax, target value")
    dueling: bool = Field(False, description="dueling head: V + A - mean A")
    loss: Literal["huber", "mse"] = Field("huber", description="TD loss")
    huber_delta: float = Field(1.0, gt=0, description="Huber loss threshold")
    target_update_period: int = Field(1000, ge=1, description="optimizer steps between target updates")
