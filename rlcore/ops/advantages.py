"""Discounted returns and GAE on time-major arrays [T, N], and how well values explain returns.

Conventions (Kaplan's notes; Schulman et al. 2016):
  ``value[t]``       V(s_t)
  ``next_value[t]``  V(s_{t+1}) of the *true* next state: the next row's value inside an episode,
                     the value of the env's final observation after a truncation, the bootstrap
                     value after the fragment's last step (ignored where terminated).
  ``terminated[t]``  s_{t+1} is terminal: no bootstrap.
  ``done[t]``        terminated or truncated: the recursion stops (the next row is a new episode).
"""

from __future__ import annotations

import numpy as np


def gae(reward, value, next_value, terminated, done, gamma: float, lam: float) -> np.ndarray:
    """Generalized advantage estimates A_t = sum_l (gamma*lam)^l delta_{t+l}, cut at episode ends.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t).
    """
    reward = np.asarray(reward, np.float64)
    not_term = 1.0 - np.asarray(terminated, np.float64)
    carry_mask = gamma * lam * (1.0 - np.asarray(done, np.float64))
    delta = reward + gamma * not_term * np.asarray(next_value, np.float64) - np.asarray(value)
    adv = np.zeros_like(delta)
    carry = np.zeros(delta.shape[1:])
    for t in range(delta.shape[0] - 1, -1, -1):
        carry = delta[t] + carry_mask[t] * carry
        adv[t] = carry
    return adv


def discounted_returns(reward, next_value, terminated, done, gamma: float) -> np.ndarray:
    """Reward-to-go G_t = r_t + gamma * G_{t+1} within an episode.

    At a truncation, or at the fragment's end, the tail is bootstrapped with V(s_{t+1});
    at a termination the tail is zero. Equals ``gae(..., lam=1) + value``.
    """
    reward = np.asarray(reward, np.float64)
    bootstrap = np.asarray(next_value, np.float64) * ~np.asarray(terminated, bool)
    cut = np.asarray(done, bool).copy()
    cut[-1] = True  # the fragment's end cuts like a truncation
    ret = np.zeros_like(reward)
    carry = np.zeros(reward.shape[1:])
    for t in range(reward.shape[0] - 1, -1, -1):
        carry = reward[t] + gamma * np.where(cut[t], bootstrap[t], carry)
        ret[t] = carry
    return ret


def next_values(value, bootstrap_value, final_value, final_idx, done) -> np.ndarray:
    """Assemble V(s_{t+1}) for every row from the per-step values [T, N], the value of the
    observation after the last step [N], and the values of truncated episodes' final
    observations [K] at positions ``final_idx`` [K, 2]. Rows after a termination get 0."""
    value = np.asarray(value, np.float64)
    nxt = np.zeros_like(value)
    nxt[:-1] = value[1:]
    nxt[-1] = bootstrap_value
    nxt[np.asarray(done, bool)] = 0.0
    if len(final_idx):
        nxt[final_idx[:, 0], final_idx[:, 1]] = final_value
    return nxt


def explained_variance(value, returns) -> float:
    """How much of the return targets' variance the value predictions explain:
    1 - Var[returns - value] / Var[returns] over the batch (population variances, as SB3 and
    CleanRL compute it). 1 is a perfect fit, 0 no better than predicting the batch mean,
    negative worse than that. NaN when Var[returns] = 0 (constant targets: nothing to explain);
    the learner then leaves the metric out for that update."""
    value = np.asarray(value, np.float64).reshape(-1)
    returns = np.asarray(returns, np.float64).reshape(-1)
    var = returns.var()
    if var == 0.0:
        return float("nan")
    return float(1.0 - (returns - value).var() / var)
