"""Experiment configuration: the typed schema, strict YAML loading with located errors.

The names below are the package's public API (``from rlcore.config import load_experiment``)."""

from rlcore.config.loading import load_experiment  # noqa: F401
from rlcore.config.schema import (  # noqa: F401
    Experiment,
    ExperimentConfig,
    LearnerConfig,
    Section,
    Widths,
    schema_lines,
)
