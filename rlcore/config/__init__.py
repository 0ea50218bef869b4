"""Experiment configuration: the typed schema, strict YAML loading with located errors.

The names below are the package's public API (``from rlcore.config import load_experiment``)."""

from rlcore.config.schema import (  # noqa: F401
    Experiment,
    ExperimentConfig,
    LearnerConfig,
    Section,
    Widths,
    load_experiment,
    schema_lines,
)
