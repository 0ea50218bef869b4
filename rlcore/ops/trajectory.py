"""Fragments -> a flat learner batch with advantages and return targets (trajectory regime).

Values are computed here, on the learner, with its current parameters: actors act and record;
the learner computes targets.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.learner.batches import Batch, concat_fragments, to_batch
from rlcore.ops.advantages import discounted_returns, gae, next_values


@torch.no_grad()
def _values(value_fn, obs: np.ndarray, bootstrap_obs: np.ndarray, final_obs: np.ndarray, device,
            chunk: int = 4096):
    """V of every step's observation [T, N], of the bootstrap observations [N] and of the
    truncated episodes' final observations [K], in one pass of chunked forwards."""
    T, N = obs.shape[:2]
    flat = np.concatenate([obs.reshape(T * N, *obs.shape[2:]), bootstrap_obs, final_obs])
    v = np.concatenate([value_fn(torch.as_tensor(flat[i:i + chunk], device=device)).float().cpu().numpy()
                        for i in range(0, len(flat), chunk)])
    return v[:T * N].reshape(T, N), v[T * N:T * N + N], v[T * N + N:]


def actor_critic_batch(value_fn, fragments: list, gamma: float, lam: float | None,
                       normalize_advantage: bool, device) -> Batch:
    """Flat batch with fields obs, action, log_prob, value, advantage, returns.

    ``lam=None`` uses Monte-Carlo reward-to-go (bootstrapped only at truncations and the
    fragment's end) and advantage = reward-to-go - V; otherwise GAE(gamma, lam) and
    returns = advantage + V.
    """
    d = concat_fragments(fragments)
    T, N = d["reward"].shape
    value, v_boot, v_final = _values(value_fn, d["obs"], d["bootstrap_obs"], d["final_obs"], device)
    done = d["terminated"] | d["truncated"]
    nxt = next_values(value, v_boot, v_final, d["final_idx"], done)
    if lam is None:
        returns = discounted_returns(d["reward"], nxt, d["terminated"], done, gamma)
        adv = returns - value
    else:
        adv = gae(d["reward"], value, nxt, d["terminated"], done, gamma, lam)
        returns = adv + value
    if normalize_advantage:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    fields = dict(obs=d["obs"], action=d["action"], value=value.astype(np.float32),
                  advantage=adv.astype(np.float32), returns=returns.astype(np.float32))
    if d["log_prob"] is not None:
        fields["log_prob"] = d["log_prob"]
    return to_batch(fields, device, flatten=True)
