"""Records -> learner batches, in one place: what every regime's ``prepare_batch`` builds on.

    Batch                       named tensors with a common first dimension
    to_batch(arrays, device)    numpy arrays -> a Batch (``flatten``: [T, N, ...] -> [T*N, ...])
    concat_fragments(frags)     trajectory fragments joined along the env axis (numpy)
    replay_batch(sample)        a transition-regime ReplaySample as a Batch
    concat_samples(samples)     game-regime position samples joined (numpy)
"""

from __future__ import annotations

import numpy as np
import torch


class Batch:
    """Named tensors with a common first dimension; ``batch.obs``, ``len(batch)``, ``batch[idx]``."""

    def __init__(self, **tensors: torch.Tensor):
        self.__dict__["_t"] = tensors

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self._t[name]
        except KeyError:
            raise AttributeError(f"batch has no field '{name}' (fields: {', '.join(self._t)})") from None

    def __len__(self) -> int:
        return len(next(iter(self._t.values())))

    def __getitem__(self, idx) -> "Batch":
        return Batch(**{k: v[idx] for k, v in self._t.items()})

    def fields(self) -> list[str]:
        return list(self._t)


def to_batch(arrays: dict, device, dtypes: dict | None = None, flatten: bool = False) -> Batch:
    """A ``Batch`` of ``arrays`` (numpy) on ``device``; ``dtypes`` maps a field to a torch dtype
    (others keep theirs, so images stay uint8 until the network scales them); ``flatten``
    merges the leading time and env axes of fragment arrays."""
    dtypes = dtypes or {}

    def put(name, a):
        a = np.asarray(a)
        if flatten:
            a = a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])
        return torch.as_tensor(a, dtype=dtypes.get(name), device=device)

    return Batch(**{name: put(name, a) for name, a in arrays.items()})


def concat_fragments(fragments: list) -> dict:
    """Join fragments of equal length T along the env axis; offsets ``final_idx`` to match."""
    offsets = np.cumsum([0] + [f.reward.shape[1] for f in fragments[:-1]])
    cat = lambda name: np.concatenate([getattr(f, name) for f in fragments], axis=1)  # noqa: E731
    out = {name: cat(name) for name in ("obs", "action", "reward", "terminated", "truncated")}
    out["log_prob"] = cat("log_prob") if fragments[0].log_prob is not None else None
    out["bootstrap_obs"] = np.concatenate([f.bootstrap_obs for f in fragments])
    out["final_obs"] = np.concatenate([f.final_obs for f in fragments])
    out["final_idx"] = np.concatenate([f.final_idx + [0, off] for f, off in zip(fragments, offsets)])
    out["info"] = {k: np.concatenate([f.info[k] for f in fragments], axis=1)
                   for k in fragments[0].info}
    return out


def replay_batch(sample, device) -> Batch:
    """A ``ReplaySample`` as a learner ``Batch`` on ``device`` (images stay uint8 until the
    network scales them)."""
    def put(x):
        t = torch.as_tensor(x)
        return t if t.device == device else t.to(device, non_blocking=True)

    return Batch(obs=put(sample.obs), action=put(sample.action), reward=put(sample.reward),
                 discount=put(sample.discount), next_obs=put(sample.next_obs),
                 weight=put(sample.weight))


def concat_samples(samples: list, keys: tuple) -> dict:
    """Samples of game positions (dicts of numpy arrays) joined along the first axis."""
    return {k: np.concatenate([s[k] for s in samples]) for k in keys}
