"""The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish, Kaplan et al. 2018,
appendix A; Kaplan's notes section 4.5).

With |G_B|^2 the squared norm of a mean gradient over B samples, E|G_B|^2 = |G|^2 + tr(Sigma)/B.
Two batch sizes B_small < B_big give unbiased estimates

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Each is noisy (and may be negative), so exponential moving averages of the two are kept
separately and only their ratio is reported.
"""

from __future__ import annotations

from dataclasses import dataclass


def unbiased_estimates(g_small_sq: float, b_small: float, g_big_sq: float, b_big: float):
    """(|G|^2, tr(Sigma)) from mean squared gradient norms at two batch sizes."""
    if not b_big > b_small > 0:
        raise ValueError(f"need 0 < b_small < b_big (got {b_small}, {b_big})")
    g2 = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace = (g_small_sq - g_big_sq) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


@dataclass
class NoiseScale:
    """Online B_simple from EMAs of |G|^2 and tr(Sigma), bias-corrected like Adam's moments."""

    decay: float = 0.95
    g2: float = 0.0
    trace: float = 0.0
    count: int = 0

    def update(self, g_small_sq: float, b_small: float, g_big_sq: float, b_big: float) -> None:
        g2, trace = unbiased_estimates(g_small_sq, b_small, g_big_sq, b_big)
        self.g2 = self.decay * self.g2 + (1 - self.decay) * g2
        self.trace = self.decay * self.trace + (1 - self.decay) * trace
        self.count += 1

    @property
    def value(self) -> float | None:
        """B_simple, or None before the first measurement or while |G|^2 <= 0."""
        if self.count == 0 or self.g2 <= 0:
            return None
        return self.trace / self.g2  # the bias corrections of both EMAs cancel in the ratio

    def verdict(self, batch_size: int) -> str:
        b = self.value
        if b is None:
            return "not measured"
        ratio = batch_size / b
        if ratio < 0.1:
            side = "far below B_simple: larger batches would cut optimizer steps nearly for free"
        elif ratio > 10:
            side = "far above B_simple: smaller batches would reach the same loss with fewer samples"
        else:
            side = "near B_simple: a good trade between samples and optimizer steps"
        return f"batch {batch_size} vs B_simple {b:.0f} (ratio {ratio:.2g}): {side}"

    def state(self) -> dict:
        return {"decay": self.decay, "g2": self.g2, "trace": self.trace, "count": self.count}
