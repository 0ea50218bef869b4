"""The ``algo:`` sections of cem_mpc and ilqr_mpc experiments (replay keys:
rlcore.regimes.transition_config). ``ModelConfig`` holds what both share (task, dynamics
ensemble, replay and fitting, horizon, diagnostics); each planner adds its own keys.

Defaults follow PETS (Chua et al. 2018) for Pendulum: 5 probabilistic members, horizon 25,
CEM with 400 candidates, 40 elites, 5 iterations and smoothing 0.1."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from rlcore.config import Widths
from rlcore.regimes.transition_config import ReplayConfig

from rlcore.plugins.mpc.rewards import TASKS


class ModelConfig(ReplayConfig):
    task: str = Field("Pendulum-v1", description="the env whose reward code the planner scores "
                      "with (plugins/mpc/rewards.py)")
    # dynamics model
    ensemble_size: int = Field(5, ge=1, le=64, description="members of the dynamics ensemble")
    hidden_sizes: Widths = Field((200, 200), description="each member's MLP widths (SiLU)")
    max_logvar_init: float = Field(0.5, ge=-20, le=20, description="initial soft upper bound "
                                   "of the predicted log-variance (normalized targets)")
    min_logvar_init: float = Field(-10.0, ge=-40, le=20, description="initial soft lower bound")
    logvar_bound_coef: float = Field(0.01, ge=0, description="weight of sum(max_logvar) - "
                                     "sum(min_logvar) in the loss (keeps the bounds tight)")
    weight_decay: float = Field(5e-5, ge=0, description="L2 weight of the members' weights")
    stats_window: int = Field(100, ge=1, description="normalization statistics: the mean over "
                              "the first N fits' samples, then an EMA with rate 1/N")
    # replay and fitting
    batch_size: int = Field(256, ge=1, le=65_536, description="transitions per model step; "
                            "each member trains on its own bootstrap resample of them")
    buffer_size: int = Field(100_000, ge=1, le=100_000_000, description="replay capacity")
    learning_starts: int = Field(250, ge=0, description="env steps before the first model step")
    replay_ratio: float = Field(1.0, gt=0, le=256, description="model steps per env step")
    random_steps: int = Field(250, ge=0, description="env steps of uniformly random actions "
                              "(also until the first model step)")
    horizon: int = Field(25, ge=1, le=1000, description="planning horizon H (env steps)")
    # diagnostics (plugins/mpc/diagnostics.py)
    holdout_every: int = Field(10, ge=0, description="one block of holdout_block consecutive "
                               "replay slots in every holdout_every is never trained on: the "
                               "held-out data of the diagnostics (0: none held out)")
    holdout_block: int = Field(20, ge=1, description="replay slots per held-out block "
                               "(at least diagnostic_steps, so open-loop chains fit in one)")
    diagnostic_steps: int = Field(10, ge=1, le=1000, description="k of the k-step open-loop "
                                  "prediction errors (and of the planned-vs-random comparison, "
                                  "at most horizon steps there)")
    diagnostic_chains: int = Field(256, ge=0, description="replay chains per diagnostic "
                                   "(0: no diagnostics)")
    diagnostic_states: int = Field(4, ge=0, description="real states the planner plans from "
                                   "in the planned-vs-random comparison (0: skipped)")

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"no reward code for '{value}'; cem_mpc and ilqr_mpc support "
                             f"{', '.join(sorted(TASKS))} (plugins/mpc/rewards.py)")
        return value

    @model_validator(mode="after")
    def _model_consistent(self):
        if self.n_step != 1:
            raise ValueError(f"n_step ({self.n_step}) must be 1: the model learns one-step "
                             "transitions s -> s'")
        if self.holdout_every == 1:
            raise ValueError("holdout_every (1) would hold out every transition and the model "
                             "would never train: set 0 (none held out) or at least 2")
        if self.holdout_every and self.holdout_block < self.diagnostic_steps:
            raise ValueError(f"holdout_block ({self.holdout_block}) must be at least "
                             f"diagnostic_steps ({self.diagnostic_steps}): a held-out open-loop "
                             "chain lies inside one block")
        return self


class CEMMPCConfig(ModelConfig):
    # planner
    population: int = Field(400, ge=2, le=100_000, description="CEM candidates per iteration")
    elites: int = Field(40, ge=1, description="CEM elites refitted to")
    iterations: int = Field(5, ge=1, le=100, description="CEM iterations per env step")
    cem_alpha: float = Field(0.1, ge=0, lt=1, description="CEM smoothing: new = alpha old + "
                             "(1 - alpha) elite statistic")
    init_std: float = Field(0.5, gt=0, le=2, description="CEM's initial std per action "
                            "(actions in [-1, 1]; 0.5 = a quarter of the range, as PETS)")
    particles: int = Field(5, ge=1, le=1000, description="trajectory samples per candidate, "
                           "spread evenly over the members (a multiple of ensemble_size)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.elites > self.population:
            raise ValueError(f"elites ({self.elites}) must be at most population "
                             f"({self.population})")
        if self.particles % self.ensemble_size:
            raise ValueError(f"particles ({self.particles}) must be a multiple of ensemble_size "
                             f"({self.ensemble_size}): every member propagates the same number "
                             "of each candidate's particles")
        return self


class ILQRMPCConfig(ModelConfig):
    # planner
    iterations: int = Field(5, ge=1, le=1000, description="iLQR iterations per env step "
                            "(warm-started from the previous plan shifted by one step)")
    disagreement_coef: float = Field(0.0, ge=0, description="cost per unit of ensemble "
                                     "disagreement: the members' predicted mean state changes' "
                                     "variance, normalized and averaged over dimensions")
    mu_init: float = Field(0.0, ge=0, description="iLQR's initial Levenberg-Marquardt term")
    backtracks: int = Field(10, ge=0, le=60, description="line-search halvings per iteration")
    action_noise: float = Field(0.0, ge=0, le=2, description="exploring only: std of Gaussian "
                                "noise added to the planned action (clipped to [-1, 1])")
    warm_clip: float | None = Field(0.995, gt=0, le=0.9999, description="the previous plan's "
                                    "actions are clipped to +-warm_clip before it warm-starts "
                                    "the next step (null: not clipped). iLQR plans a = tanh(v); "
                                    "a saturated v (|a| -> 1) has tanh'(v) -> 0 and no step can "
                                    "reverse it: 0.995 keeps tanh' >= 0.01")
    restarts: list[float] = Field(default_factory=list, description="extra iLQR starts at "
                                  "every env step from constant action sequences a = value "
                                  "(every action dimension, |value| < 1), beside the warm "
                                  "start; the plan of lowest cost is taken. [-0.75, 0.75]: "
                                  "push both ways, out of the local optimum of a symmetric "
                                  "start")

    @field_validator("restarts")
    @classmethod
    def _inside_bounds(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not -1 < v < 1]
        if bad:
            raise ValueError(f"restarts {bad}: each start is a constant action strictly inside "
                             "(-1, 1) (iLQR plans a = tanh(v), which never reaches +-1)")
        return value

    @model_validator(mode="after")
    def _smooth_reward(self):
        if not TASKS[self.task].smooth:
            smooth = ", ".join(sorted(name for name, t in TASKS.items() if t.smooth))
            raise ValueError(f"ilqr_mpc plans by the gradients of the reward, and {self.task}'s "
                             "is an indicator (1 while the episode goes on) with none: use "
                             f"algorithm: cem_mpc for {self.task}; ilqr_mpc supports {smooth}")
        return self
