"""Shared network building blocks: MLPs, the Nature CNN, actor-critic heads, Q-networks."""
