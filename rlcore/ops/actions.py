"""Actions: the affine map from the policy's range [-1, 1] onto a Box env's bounds, and
Boltzmann sampling of discrete actions from their values."""

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


def boltzmann_sample(values: np.ndarray, beta: float, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``values`` [N, A], drawn from pi(a) proportional to
    exp(beta * values[a]): inverse-CDF sampling with one uniform per row from ``rng``, the
    row's largest value factored out so that no beta * value can overflow."""
    values = np.asarray(values, np.float64)
    cdf = np.cumsum(np.exp(beta * (values - values.max(axis=-1, keepdims=True))), axis=-1)
    u = rng.random((len(values), 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), values.shape[-1] - 1)
