"""CartPole with one injected fault, for fault-tolerance tests: at the ``after``-th step of an env
instance it kills its own process (SIGKILL), hangs (``hang``: a sleep the watchdog's signal
interrupts; ``hang_hard``: the same with SIGALRM blocked, as C code that never returns to the
interpreter), or returns a NaN observation; ``raise_every`` raises a RuntimeError at the first
step of every ``after``-th episode of the instance, forever. With a
``marker`` file the fault fires once in the whole run (the instance that deletes the file
first), so a replacement actor runs clean; without one every instance faults, and a NaN fault
repeats at every step from ``after`` on.

Ray workers import this module by its id prefix (``tests.fault_envs:``): Ray puts the driver's
working folder, the repository root, on the workers' path."""

import os
import signal
import time

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

FAULT_ID = "rlcore-test/Fault-v0"
MODULE_ID = f"tests.fault_envs:{FAULT_ID}"  # the env.id to give an experiment


class FaultEnv(CartPoleEnv):
    def __init__(self, fault: str = "none", after: int = 10, marker: str | None = None,
                 render_mode=None):
        super().__init__(render_mode=render_mode)
        self.fault, self.after, self.marker, self.steps = fault, after, marker, 0
        self.episodes, self.episode_steps = 0, 0

    def reset(self, *, seed=None, options=None):
        self.episodes, self.episode_steps = self.episodes + 1, 0
        return super().reset(seed=seed, options=options)

    def _claim(self) -> bool:
        if self.marker is None:
            return True
        try:
            os.remove(self.marker)  # atomic: exactly one instance wins
            return True
        except FileNotFoundError:
            return False

    def step(self, action):
        self.steps += 1
        self.episode_steps += 1
        if (self.fault == "raise_every" and self.episode_steps == 1
                and self.episodes % self.after == 0):
            raise RuntimeError(f"episode {self.episodes} of this env fails (test fault)")
        obs, reward, term, trunc, info = super().step(action)
        due = self.steps == self.after if self.marker else self.steps >= self.after
        if self.fault != "none" and due and self._claim():
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault == "hang":
                time.sleep(3600)
            elif self.fault == "hang_hard":
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                time.sleep(3600)
            elif self.fault == "nan":
                obs = np.full_like(obs, np.nan)
        if self.fault == "nan_at_episode_step" and self.episode_steps == self.after:
            obs = np.full_like(obs, np.nan)  # with SHORT_ID's time limit: a final observation
        return obs, reward, term, trunc, info


if FAULT_ID not in gym.registry:
    gym.register(FAULT_ID, entry_point=FaultEnv, max_episode_steps=200)

SHORT_ID = "rlcore-test/FaultShort-v0"  # truncated at 5 steps, before CartPole terminates
if SHORT_ID not in gym.registry:
    gym.register(SHORT_ID, entry_point=FaultEnv, max_episode_steps=5)


class WrongShapeEnv(CartPoleEnv):
    """Declares a (4,) float32 observation but returns 3 float64 numbers."""

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[:3].astype(np.float64), info


class OldGymApiEnv(CartPoleEnv):
    """The old gym API: step() returns (obs, reward, done, info)."""

    def step(self, action):
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward, term or trunc, info


for _id, _entry in (("rlcore-test/WrongShape-v0", WrongShapeEnv),
                    ("rlcore-test/OldGymApi-v0", OldGymApiEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry)
