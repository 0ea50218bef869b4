"""Model-predictive control by the cross-entropy method over action sequences, scored by
trajectory sampling through the ensemble (PETS, Chua et al. 2018).

At every env step and for every sub-env, CEM (``rlcore.ops.control.cem``) searches action
sequences A = (a_0, ..., a_{H-1}) in [-1, 1]^{H x m}: it samples ``population`` candidates
A_i ~ N(mean, std^2) (clipped to the bounds), scores them, refits mean and std to the
``elites`` best (smoothed by ``cem_alpha``) and repeats ``iterations`` times. The env gets the
first action of the final mean; the rest, shifted by one step with a zero appended, is the
next step's initial mean (the std restarts at ``init_std`` every step).

Score of a candidate (TS-infinity): K = ``particles`` copies of the current state are
propagated through the model for H steps, particle k always through member k mod E, drawing
s_{t+1} ~ N(s_t + mean_e, var_e) at every step; the candidate's return is the particles' mean
of sum_t r(s_t, a_t, s_{t+1}) with the task's reward code, its cost the negative (steps after
a predicted termination earn nothing). Assigning particles to members in equal shares (rather
than at random) scores every candidate under every member equally often: the same TS-infinity
expectation with less variance. All candidates and particles of one CEM iteration go through
the model together, as [E, population * K / E] rows.

Randomness: CEM's samples come from the worker's ``rng``; the model's noise from a torch
generator seeded from it at each call, so a run replays exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.ops.control import cem
from rlcore.policies.sampling import RandomStartPolicy
from rlcore.types import ActionOut


def imagined_returns(model, task, obs: np.ndarray, sequences: np.ndarray, particles: int,
                     generator: torch.Generator | None) -> np.ndarray:
    """Mean sampled return of each action sequence from ``obs`` [obs_dim]: sequences [P, H, m]
    in [-1, 1] -> returns [P], with the ``task``'s reward r(s_t, a_t, s_{t+1}) and termination
    (a step that reaches a terminal state earns its reward, later steps nothing), less its
    ``tie_break`` / (2 H) per step where it has one, and nothing from a step that reaches one
    of its ``plan_terminated`` states on (rewards.Task says why both exist).
    ``model.members`` (E) divides ``particles`` (K); ``model.step`` maps states
    [E, N, obs_dim] and actions [E, N, m] to next states, row block e through member e."""
    E = model.members
    P, H, m = sequences.shape
    per_member = particles // E
    acts = torch.as_tensor(sequences, dtype=torch.float32)  # [P, H, m]
    acts = acts[None, :, None].expand(E, P, per_member, H, m).reshape(E, P * per_member, H, m)
    state = torch.as_tensor(obs, dtype=torch.float32).expand(E, P * per_member, -1).contiguous()
    total = torch.zeros(E, P * per_member)
    alive = torch.ones(E, P * per_member)
    for t in range(H):
        a = acts[:, :, t]
        nxt = model.step(state, a, generator)
        r = task.reward(state, a, nxt if task.uses_next else None)
        if task.tie_break is not None:  # survival first, then the closest to the middle
            r = r - task.tie_break(nxt) / (2 * H)
        if task.plan_terminated is not None:  # known lost: no reward from here on
            alive = alive * (~task.plan_terminated(nxt)).float()
        total += alive * r
        if task.terminated is not None:
            alive = alive * (~task.terminated(nxt)).float()
        state = nxt
    returns = total.reshape(E, P, per_member).mean(dim=(0, 2))
    return torch.nan_to_num(returns, nan=-1e9, neginf=-1e9, posinf=-1e9).double().numpy()


class RecedingHorizonPlanner(RandomStartPolicy):
    """What cem_mpc's and ilqr_mpc's policies share (the actors' and the evaluation's):
    uniformly random actions until the model is fitted (and, exploring, for the first
    ``random_steps`` env steps: ``RandomStartPolicy``, as DDPG's and SAC's); then, per sub-env,
    a plan over the horizon warm-started from that sub-env's previous plan shifted by one step
    with a zero appended, of which the env gets the first action. Keeps one plan [H, m] per
    sub-env; a new policy object starts from zero plans. A subclass gives ``planning_step``
    and may ``perturb`` the first actions."""

    def __init__(self, model, task, cfg, spaces, explore: bool):
        # no forward function: the plan is made per step in ``act``
        super().__init__(None, spaces.action_shape, cfg, spaces, explore)
        self.model, self.task = model, task
        self.plans: np.ndarray | None = None  # [N, H, m]

    def planning_step(self, rng: np.random.Generator):
        """Made once per env step: (obs [obs_dim], warm [H, m]) -> (plan [H, m], first action [m])."""
        raise NotImplementedError

    def perturb(self, first: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return first

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        obs = np.asarray(obs, np.float32)
        n = len(obs)
        if self.random or not self.model.fitted:
            return self.out(rng.uniform(-1.0, 1.0, (n, *self.action_shape)).astype(np.float32))
        m = int(np.prod(self.action_shape))
        if self.plans is None or self.plans.shape[0] != n:
            self.plans = np.zeros((n, self.cfg.horizon, m))
        step = self.planning_step(rng)
        first = np.empty((n, m), np.float32)
        for i in range(n):  # sub-envs plan independently
            warm = np.concatenate([self.plans[i, 1:], np.zeros((1, m))])
            self.plans[i], first[i] = step(obs[i], warm)
        return self.out(self.perturb(first, rng).astype(np.float32).reshape(n, *self.action_shape))


class CEMPlanner(RecedingHorizonPlanner):
    """cem_mpc's policy: CEM-MPC (RecedingHorizonPlanner)."""

    def plan(self, obs: np.ndarray, rng: np.random.Generator, warm: np.ndarray | None = None,
             generator: torch.Generator | None = None):
        """CEM from one state ``obs`` [obs_dim] and the initial mean ``warm`` [H, m] (zeros
        unless given) -> (the final mean, the same as the action sequence in [-1, 1])."""
        cfg, m = self.cfg, int(np.prod(self.action_shape))
        warm = np.zeros((cfg.horizon, m)) if warm is None else warm
        if generator is None:
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))

        def cost(seqs):
            return -imagined_returns(self.model, self.task, obs, seqs, cfg.particles,
                                     generator)

        plan = cem(cost, warm, cfg.init_std, cfg.iterations, cfg.population, cfg.elites, rng,
                   alpha=cfg.cem_alpha, bounds=(-1.0, 1.0))
        return plan, np.clip(plan, -1.0, 1.0)

    def planning_step(self, rng: np.random.Generator):
        """CEM per sub-env, each vectorized over its candidates; one torch generator for the
        model's noise, seeded from ``rng`` once per env step."""
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))

        def step(obs: np.ndarray, warm: np.ndarray):
            plan, actions = self.plan(obs, rng, warm, generator)
            return plan, actions[0]

        return step
