"""Buffers of the data regimes: replay (uniform or prioritized, n-step, frame-deduplicating)."""

from rlcore.buffers.replay import ReplayBuffer, ReplaySample
from rlcore.buffers.sum_tree import SumTree

__all__ = ["ReplayBuffer", "ReplaySample", "SumTree"]
