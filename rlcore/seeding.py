"""Seeds derived from the experiment seed, so that every placement gets the same streams."""

from __future__ import annotations

import contextlib
import threading

import numpy as np

_torch_rng_lock = threading.Lock()


def derive(seed: int, *keys: int) -> int:
    """A 31-bit seed for the stream named by ``keys`` (e.g. actor id), independent of others."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0] >> 1)


# Stream names used with ``derive``.
ENV_STREAM, POLICY_STREAM, LEARNER_STREAM, EVAL_STREAM, INIT_STREAM = 1, 2, 3, 4, 5


@contextlib.contextmanager
def seeded_torch(seed: int):
    """Run a block (module construction) with torch's global generator seeded to ``seed`` and
    restored afterwards. A lock keeps two threads (the learner is built beside Ray's start-up)
    from drawing from the global generator at the same time."""
    import torch

    with _torch_rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
