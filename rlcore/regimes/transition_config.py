"""What the transition-regime plugins share in their ``algo:`` section, and the exploration
schedules it sets.

The transition regime reads its knobs (buffer size, learning starts, replay ratio, batch
size, n-step, prioritized replay, weight publication) from the plugin's config, which extends
``ReplayConfig``; value-based plugins extend ``EpsilonGreedyConfig``, whose schedules the
epsilon-greedy policy (``rlcore.networks.value.EpsilonGreedyPolicy``) follows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlcore.config import Widths


class ReplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    buffer_size: int = Field(100_000, ge=1, le=100_000_000, description="replay capacity in transitions")
    learning_starts: int = Field(1000, ge=0, description="env steps collected before the first update")
    batch_size: int = Field(32, ge=1, le=65_536, description="transitions per optimizer step")
    replay_ratio: float = Field(0.25, gt=0, le=256,
                                description="optimizer steps per env step (DQN's 1/train_freq)")
    n_step: int = Field(1, ge=1, le=100, description="n-step returns (computed on the learner)")
    prioritized: bool = Field(False, description="proportional prioritized replay (Schaul et al. 2016)")
    priority_alpha: float = Field(0.6, ge=0, le=1, description="priority exponent")
    priority_beta: float = Field(0.4, ge=0, le=1,
                                 description="importance-weight exponent, annealed to 1 over the run")
    priority_eps: float = Field(1e-6, gt=0, description="added to |TD error| for priorities")
    frame_dedup: bool = Field(True, description="stacked image observations: store each frame once")
    target_update_period: int = Field(1, ge=1, description="optimizer steps between target updates")
    tau: float = Field(1.0, gt=0, le=1, description="target update: 1 = hard copy, < 1 = Polyak step")
    publish_every: int = Field(1, ge=1, description="optimizer steps between weight publications to actors")
    hidden_sizes: Widths = Field((64, 64), description="MLP widths (vector observations)")
    checkpoint_replay: bool = Field(False, description="save replay beside each checkpoint (replay.npz)")


class EpsilonGreedyConfig(ReplayConfig):
    exploration: Literal["auto", "linear", "apex"] = Field(
        "auto", description="linear decay, or Ape-X per-actor epsilons; auto: apex with >= 2 actors")
    eps_start: float = Field(1.0, ge=0, le=1, description="linear: epsilon at step 0")
    eps_end: float = Field(0.05, ge=0, le=1, description="linear: epsilon after exploration_steps")
    exploration_steps: int = Field(10_000, ge=1, description="linear: env steps of the decay")
    apex_eps: float = Field(0.4, gt=0, le=1, description="apex: eps_i = apex_eps^(1 + apex_alpha i/(N-1))")
    apex_alpha: float = Field(7.0, ge=0, description="apex: spread of the actors' epsilons")
    eval_eps: float = Field(0.0, ge=0, le=1, description="epsilon of the evaluation policy")


def linear_epsilon(env_steps: int, start: float, end: float, steps: int) -> float:
    frac = min(1.0, env_steps / steps)
    return start + frac * (end - start)


def apex_epsilon(actor_id: int, num_actors: int, eps: float = 0.4, alpha: float = 7.0) -> float:
    """Ape-X (Horgan et al. 2018): actor i of N explores with eps^(1 + alpha i / (N - 1))."""
    if num_actors <= 1:
        return eps
    return eps ** (1.0 + alpha * actor_id / (num_actors - 1))


def exploration_epsilon(cfg: EpsilonGreedyConfig, env_steps: int, actor_id: int,
                        num_actors: int) -> float:
    mode = cfg.exploration
    if mode == "auto":
        mode = "apex" if num_actors >= 2 else "linear"
    if mode == "apex":
        return apex_epsilon(actor_id, num_actors, cfg.apex_eps, cfg.apex_alpha)
    return linear_epsilon(env_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_steps)


class ActionGapConfig(EpsilonGreedyConfig):
    """The Munchausen term of value-based targets (dqn, c51, qrdqn)."""

    munchausen_alpha: float = Field(
        0.0, ge=0, le=1, description="Munchausen term: add alpha * clip(tau log pi(a|s), "
        "munchausen_clip, 0) to the reward, pi = softmax(soft_beta Q_target(s, .)) (Vieillard et "
        "al. 2020; 0.9 in the paper); without soft_beta (and always for c51/qrdqn, on the "
        "expected values), the tau -> 0 limit alpha * (Q_target(s, a) - max_b Q_target(s, b)): "
        "advantage learning, which widens the action gap. 0 = off")
    munchausen_clip: float = Field(
        -1.0, le=0, description="lower clip l0 of tau log pi (the paper's -1)")
    eval_network: Literal["online", "target"] = Field(
        "online", description="the Q-network the evaluation policy acts greedily on: the "
        "online one, or the target network (with tau < 1 a Polyak average of the online "
        "weights, smoother from one evaluation to the next); the actors always act on the "
        "online one")


class ValueRangeConfig(BaseModel):
    """Targets clipped into the returns the task can have (dqn, qrdqn; c51's support bounds
    its atoms the same way)."""

    value_range: tuple[float, float] | None = Field(
        None, description="[low, high]: every target (each target quantile sample for qrdqn) "
        "is clipped into it, the values the task's returns can have (e.g. [0, 100] for rewards "
        "in [0, 1] at gamma 0.99), as c51's v_min/v_max bound its support; null = no clip")

    @model_validator(mode="after")
    def _value_range_order(self):
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ValueError(f"algo.value_range {list(self.value_range)}: low must be below high")
        return self
