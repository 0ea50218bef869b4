"""The ``algo:`` section of a trpo experiment. The value function's Adam regression uses the
``learner:`` section (lr, num_epochs, minibatch_size, max_grad_norm)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rlcore.config import Widths


class TRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    max_kl: float = Field(0.01, gt=0, description="trust region: mean KL(pi_old || pi) per update")
    max_kl_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear: the trust region shrinks to 0 over the run")
    damping: float = Field(0.1, ge=0, description="added to the Fisher: (F + damping I) v")
    cg_iters: int = Field(10, ge=1, le=1000, description="conjugate-gradient iterations")
    cg_residual_tol: float = Field(1e-10, ge=0, description="stop CG when |r|^2 falls below this")
    max_backtracks: int = Field(10, ge=1, le=100, description="line search: step sizes tried")
    backtrack_coef: float = Field(
        0.5, gt=0, lt=1, description="line search: each try shrinks the step by this factor")
    accept_ratio: float = Field(
        0.1, ge=0, le=1, description="accept a step improving the surrogate by > this x predicted")
    normalize_advantage: bool = Field(True, description="standardize advantages per batch")
    hidden_sizes: Widths = Field((64, 64), description="MLP widths (vector observations)")
    value_hidden_sizes: Widths | None = Field(
        None, description="value MLP widths (vector observations); default: hidden_sizes")
    activation: Literal["tanh", "relu"] = Field("tanh", description="MLP activation")
    squash: bool = Field(False, description="Box actions: tanh-squashed Gaussian instead of clipping")
    log_std_init: float = Field(0.0, ge=-5, le=2, description="Box actions: initial log-std")
