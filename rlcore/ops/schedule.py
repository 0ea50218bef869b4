"""Schedules over a run, driven by its progress in [0, 1] (env steps / stop.num_env_steps)."""

from __future__ import annotations


def scheduled(value: float, schedule: str, progress: float) -> float:
    """``value`` under ``schedule``: ``constant`` keeps it; ``linear`` takes it from ``value``
    at progress 0 down to 0 at progress 1."""
    return value * (1.0 - progress) if schedule == "linear" else value
