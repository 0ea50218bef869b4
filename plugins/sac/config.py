"""The ``algo:`` section of a sac experiment (replay keys: rlcore.regimes.transition_config)."""

from __future__ import annotations

from pydantic import Field

from rlcore.config import Widths
from rlcore.regimes.transition_config import ReplayConfig


class SACConfig(ReplayConfig):
    hidden_sizes: Widths = Field((256, 256), description="actor and critic MLP widths")
    batch_size: int = Field(256, ge=1, le=65_536, description="transitions per optimizer step")
    replay_ratio: float = Field(1.0, gt=0, le=256, description="optimizer steps per env step")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak step of the target critics")
    init_alpha: float = Field(1.0, gt=0, le=1e3, description="initial entropy temperature")
    autotune_alpha: bool = Field(True, description="learn alpha so the entropy tracks the target")
    target_entropy: float | None = Field(
        None, description="entropy the temperature aims at; null = -(action dimensions)")
    random_steps: int = Field(0, ge=0, description="env steps of uniformly random actions at the start")
    log_std_min: float = Field(-20.0, ge=-100, le=0, description="lower clamp of the policy's log std")
    log_std_max: float = Field(2.0, ge=-10, le=10, description="upper clamp of the policy's log std")
