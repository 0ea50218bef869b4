"""Seeds derived from the experiment seed, so that every placement gets the same streams."""

from __future__ import annotations

import numpy as np


def derive(seed: int, *keys: int) -> int:
    """A 31-bit seed for the stream named by ``keys`` (e.g. actor id), independent of others."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0] >> 1)


# Stream names used with ``derive``.
ENV_STREAM, POLICY_STREAM, LEARNER_STREAM, EVAL_STREAM, INIT_STREAM = 1, 2, 3, 4, 5
