"""The ``algo:`` section of an alphazero experiment."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from rlcore.regimes.game_config import GameConfig

OPPONENT = re.compile(r"^(random|minimax|mcts:[1-9][0-9]*)$")


class AlphaZeroConfig(GameConfig):
    # network: a residual CNN with batch norm, policy and value heads
    channels: int = Field(32, ge=1, le=1024, description="convolution channels of the trunk")
    blocks: int = Field(2, ge=0, le=64, description="residual blocks in the trunk")
    value_hidden: int = Field(32, ge=1, le=4096, description="hidden units of the value head")
    # search
    num_simulations: int = Field(50, ge=1, le=100_000, description="self-play simulations per move")
    c_puct: float = Field(1.5, gt=0, le=100, description="exploration weight c_puct in U(s,a)")
    dirichlet_alpha: float = Field(0.5, gt=0, le=100, description="root noise Dir(alpha)")
    dirichlet_eps: float = Field(0.25, ge=0, le=1, description="root prior weight of the noise")
    temperature_moves: int = Field(
        4, ge=0, le=10_000, description="moves per game played at tau=1; later moves at tau->0")
    parallel_games: int = Field(
        16, ge=1, le=4096, description="games one actor plays at once (one forward pass for all)")
    leaves_per_game: int = Field(
        1, ge=1, le=256, description="leaves per game per forward pass, under a virtual loss")
    virtual_loss: float = Field(1.0, ge=0, le=100, description="visits-that-lost per pending edge")
    cache_size: int = Field(
        100_000, ge=0, description="positions whose network output an actor caches per weights")
    # data and training: the game regime's knobs come from GameConfig
    weight_decay: float = Field(1e-4, ge=0, le=1, description="L2 penalty c * |theta|^2 in the loss")
    # evaluation
    eval_opponents: tuple[str, ...] = Field(
        ("random",), min_length=1,
        description="random | minimax (tic-tac-toe) | mcts:N (N random rollouts); weakest first")
    eval_simulations: int = Field(100, ge=1, le=100_000, description="network simulations per move in eval")

    @field_validator("eval_opponents")
    @classmethod
    def _opponents(cls, value):
        bad = [v for v in value if not OPPONENT.match(v)]
        if bad:
            raise ValueError(f"unknown opponent(s) {bad}: use random, minimax or mcts:N "
                             "(N >= 1 rollouts per move)")
        return value
