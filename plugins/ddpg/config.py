"""The ``algo:`` sections of ddpg and td3 (replay keys: rlcore.regimes.transition_config). td3 is ddpg with
twin critics, target policy smoothing and delayed actor updates switched on."""

from __future__ import annotations

from pydantic import Field, model_validator

from rlcore.config import Widths
from rlcore.regimes.transition_config import ReplayConfig


class DDPGConfig(ReplayConfig):
    hidden_sizes: Widths = Field((256, 256), description="actor and critic MLP widths")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak step of the target networks")
    exploration_noise: float = Field(0.1, ge=0, le=10,
                                     description="std of the Gaussian action noise (actions in [-1, 1])")
    random_steps: int = Field(0, ge=0, description="env steps of uniformly random actions at the start")
    twin_critics: bool = Field(False, description="two critics, the target takes their minimum")
    policy_delay: int = Field(1, ge=1, le=100, description="critic steps per actor and target step")
    target_noise: float = Field(0.0, ge=0, le=10, description="std of the target policy smoothing noise")
    target_noise_clip: float = Field(0.5, ge=0, le=10, description="clip of the smoothing noise")

    @model_validator(mode="after")
    def _targets_follow_the_actor(self):
        """The targets take their Polyak step with the actor (every ``policy_delay`` updates)
        unless ``target_update_period`` is given."""
        if "target_update_period" not in self.model_fields_set:
            self.target_update_period = self.policy_delay
        return self


class TD3Config(DDPGConfig):
    twin_critics: bool = Field(True, description="two critics, the target takes their minimum")
    policy_delay: int = Field(2, ge=1, le=100, description="critic steps per actor and target step")
    target_noise: float = Field(0.2, ge=0, le=10, description="std of the target policy smoothing noise")
