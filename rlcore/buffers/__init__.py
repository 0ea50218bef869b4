"""Buffers of the data regimes: replay (uniform or prioritized, n-step, frame-deduplicating)
and the game store of self-play (``rlcore.buffers.games``)."""

from rlcore.buffers.replay import ReplayBuffer, ReplaySample
from rlcore.buffers.sum_tree import SumTree

__all__ = ["ReplayBuffer", "ReplaySample", "SumTree"]
