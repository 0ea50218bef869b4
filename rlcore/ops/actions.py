"""Box actions: the affine map from the policy's range [-1, 1] onto an env's bounds."""

from __future__ import annotations

import numpy as np


def rescale_coefficients(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) mapping the policy's range [-1, 1] affinely onto [low, high] as
    ``a * scale + offset``; unbounded dimensions pass as is (scale 1, offset 0)."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    finite = np.isfinite(low) & np.isfinite(high)
    return np.where(finite, 0.5 * (high - low), 1.0), np.where(finite, 0.5 * (high + low), 0.0)


def rescale_action(a: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map the policy's range [-1, 1] affinely onto [low, high]; unbounded dimensions pass as is."""
    scale, offset = rescale_coefficients(low, high)
    return (a * scale + offset).astype(np.float32)
