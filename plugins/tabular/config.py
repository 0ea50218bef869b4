"""The ``algo:`` section of a tabular experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TabularConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["q_learning", "sarsa", "soft_q_learning"] = Field(
        "q_learning", description="off-policy max target, on-policy next-action target, or the "
        "entropy-regularized soft target r + gamma/beta log mean_a' exp(beta Q(s', a'))")
    beta: float = Field(
        1.0, gt=0, le=1e6, description="inverse temperature of soft_q_learning's target and of "
        "Boltzmann exploration (large: Q-learning; small: the uniform prior's values)")
    bounds: Literal["none", "empirical"] = Field(
        "none", description="soft_q_learning: after each update project the table into "
        "double-sided bounds on the soft optimum from the table and the empirical model of the "
        "transitions seen (Adamczyk et al. 2024; tabular/bounds.py); keeps N(s, a, s') counts, "
        "states^2 x actions entries")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor (0: a bandit learner)")
    step_size: Literal["constant", "visits"] = Field(
        "constant", description="alpha, or N(s, a) ** -visit_power after N visits of (s, a)")
    alpha: float = Field(0.1, gt=0, le=1, description="TD step size (step_size: constant only)")
    visit_power: float = Field(
        1.0, gt=0.5, le=1, description="step_size: visits; 1 = sample averages (bandits), "
        "0.5-0.8 converges faster for bootstrapped targets (Even-Dar & Mansour 2003)")
    exploration: Literal["epsilon_greedy", "ucb", "boltzmann"] = Field(
        "epsilon_greedy", description="behaviour policy; ucb adds c*sqrt(ln n(s) / N(s, a)); "
        "boltzmann samples pi(a|s) proportional to exp(beta Q(s, a)) (the soft optimum's form)")
    epsilon: float = Field(0.1, ge=0, le=1, description="random-action probability at the start")
    epsilon_final: float = Field(0.1, ge=0, le=1, description="random-action probability after decay")
    epsilon_decay_fraction: float = Field(
        0.0, ge=0, le=1, description="fraction of stop.num_env_steps over which epsilon decays linearly")
    ucb_c: float = Field(1.414, ge=0, description="UCB exploration coefficient (exploration: ucb)")
    init_q: float = Field(0.0, description="initial Q value of every (state, action)")
    max_states: int = Field(
        4096, ge=1, le=10_000_000,
        description="rows of the Q table when the observation space does not say its size")

    @model_validator(mode="after")
    def _sarsa_is_epsilon_greedy(self):
        if self.method == "sarsa" and self.exploration != "epsilon_greedy":
            raise ValueError("algo.method: sarsa evaluates the epsilon-greedy behaviour policy; "
                             "use exploration: epsilon_greedy with sarsa, or method: q_learning")
        if self.bounds != "none" and (self.method != "soft_q_learning" or self.gamma >= 1):
            raise ValueError("algo.bounds bounds the soft optimum: it needs method: "
                             "soft_q_learning and gamma < 1; or set bounds: none")
        return self
