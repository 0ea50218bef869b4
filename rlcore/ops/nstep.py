"""n-step returns for replay, with terminations and truncations kept apart.

For a window of n steps starting at t, with rewards r_t..r_{t+n-1}:

    G = sum_{k<m} gamma^k r_{t+k},   target = G + discount * max_a Q(s_{t+m}, a)

where m <= n is the number of steps taken before the window ends: at the first step that
terminated or was truncated, or where no more steps are recorded. ``discount`` is gamma^m,
except 0 when the window ended by a termination (no value after a true end). A truncated
episode bootstraps from its true final observation s_{t+m}.
"""

from __future__ import annotations

import numpy as np


def nstep_returns(reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                  available: np.ndarray, gamma: float):
    """Windows ``[B, n]`` (time along axis 1) -> (return G [B], discount [B], steps m [B]).

    ``available[b, k]`` says step t+k was recorded (and belongs to the episode of step t, i.e.
    no earlier step of the window ended it); step t itself must be available.
    """
    reward = np.asarray(reward, np.float64)
    B, n = reward.shape
    done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
    avail = np.asarray(available, bool).copy()
    # a step is used if it is available and no earlier step of the window ended the episode
    ended_before = np.zeros((B, n), bool)
    ended_before[:, 1:] = np.cumsum(done[:, :-1], axis=1) > 0
    used = avail & ~ended_before
    used &= np.cumprod(used, axis=1).astype(bool)  # contiguous from step t
    steps = used.sum(axis=1)
    powers = gamma ** np.arange(n)
    ret = (reward * used * powers).sum(axis=1)
    last = np.maximum(steps - 1, 0)
    term_end = np.asarray(terminated, bool)[np.arange(B), last] & (steps > 0)
    discount = np.where(term_end, 0.0, gamma ** steps.astype(np.float64))
    return ret.astype(np.float32), discount.astype(np.float32), steps
