"""The game regime's knobs in a plugin's ``algo:`` section: a game-playing plugin's config
extends ``GameConfig`` (as transition plugins extend ``ReplayConfig``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GameConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    games_per_round: int = Field(
        32, ge=1, le=100_000, description="self-play games per round, all workers together (split over the actors)")
    updates_per_round: int = Field(20, ge=1, le=100_000, description="learner steps per round")
    batch_size: int = Field(256, ge=1, le=65_536, description="positions per learner step")
    window_games: int = Field(2000, ge=1, description="the game store keeps the last N games")
    checkpoint_games: bool = Field(
        True, description="save the game store beside each checkpoint (games.npz): a resumed run trains on the same games")
    min_positions: int = Field(500, ge=1, description="positions stored before training starts")
    augment: bool = Field(True, description="train on a random board symmetry of each position")
