"""The MuJoCo envs' true step as a function of the observation, for the diagnostics.

The planned-versus-random comparison (``diagnostics.planned_versus_random``) rolls a planner's
action sequence out through the model and through the env's true dynamics from the same real
state. For Pendulum-v1 the dynamics are a few lines of code (``rewards.pendulum_dynamics``);
for the MuJoCo envs the true step is MuJoCo itself: ``MujocoStep`` rebuilds the simulator's
state (qpos, qvel) from an observation, applies the action for the env's frame skip and reads
the next observation, as the env's own ``step`` does.

Each env observes enough of its state for this:

- InvertedPendulum-v5: obs = (qpos, qvel), the whole state.
- HalfCheetah-v5: obs = (qpos[1:], qvel); the root's x (qpos[0]) is left out, and the dynamics
  do not depend on it (a slide joint over an infinite floor), so it is set to 0.
- Reacher-v5: obs = (cos q, sin q, target x y, q_dot, fingertip - target x y) for the two arm
  joints q; the target's joints sit at the target position with zero velocity (set at reset,
  never driven).

The simulator is made on the first call, in the process that calls it (the driver, where the
diagnostics run), not at import: the actors that import the reward code never build it.
Functions take and return torch tensors with any leading dimensions; rows are stepped one by
one (the diagnostics step a few states, ~10 us of MuJoCo each).
"""

from __future__ import annotations

import numpy as np
import torch


def _inverted_pendulum_state(obs: np.ndarray):
    return obs[:2], obs[2:4]


def _half_cheetah_state(obs: np.ndarray):
    return np.concatenate([[0.0], obs[:8]]), obs[8:17]


def _reacher_state(obs: np.ndarray):
    angles = np.arctan2(obs[2:4], obs[0:2])
    return np.concatenate([angles, obs[4:6]]), np.concatenate([obs[6:8], [0.0, 0.0]])


STATE_FROM_OBS = {"InvertedPendulum-v5": _inverted_pendulum_state,
                  "HalfCheetah-v5": _half_cheetah_state,
                  "Reacher-v5": _reacher_state}


class MujocoStep:
    """``step(obs [..., d], a [..., m] in [-1, 1]) -> next obs [..., d]`` of the named env.
    The action is rescaled to the env's bounds as the actors rescale it."""

    def __init__(self, env_id: str):
        if env_id not in STATE_FROM_OBS:
            raise KeyError(f"no state-from-observation rule for {env_id}; "
                           f"known: {', '.join(sorted(STATE_FROM_OBS))}")
        self.env_id = env_id
        self._env = None

    def _sim(self):
        if self._env is None:
            import gymnasium as gym

            self._env = gym.make(self.env_id).unwrapped
            self._env.reset(seed=0)
        return self._env

    def __call__(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        env = self._sim()
        low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
        o = obs.detach().cpu().double().numpy()
        a = action.detach().cpu().double().numpy()
        flat_o, flat_a = o.reshape(-1, o.shape[-1]), a.reshape(-1, a.shape[-1])
        out = np.empty_like(flat_o)
        state_of = STATE_FROM_OBS[self.env_id]
        for i, (row, act) in enumerate(zip(flat_o, flat_a)):
            qpos, qvel = state_of(row)
            env.set_state(qpos, qvel)
            env.do_simulation(low + (np.clip(act, -1.0, 1.0) + 1.0) * (high - low) / 2.0,
                              env.frame_skip)
            out[i] = env._get_obs()
        return torch.as_tensor(out.reshape(o.shape), dtype=obs.dtype)

    def __getstate__(self):  # the simulator is rebuilt where the object lands
        return {"env_id": self.env_id, "_env": None}
