"""Buffers between actors and the learner: fifo queue, replay, game store (DESIGN.md)."""
