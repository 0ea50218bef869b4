"""Experiment configuration: the typed schema, strict YAML loading with located errors.

The names below are the package's public API (``from rlcore.config import load_experiment``).
They are imported on first use: a rollout actor unpickling a plugin's config (whose fields use
``Widths``) then imports that field type only, not the schema, YAML loading and sweeps."""

import importlib

_PUBLIC = {
    "load_experiment": "rlcore.config.loading",
    "Experiment": "rlcore.config.schema",
    "ExperimentConfig": "rlcore.config.schema",
    "LearnerConfig": "rlcore.config.schema",
    "RayConfig": "rlcore.config.schema",
    "Section": "rlcore.config.schema",
    "Widths": "rlcore.config.fields",
    "schema_lines": "rlcore.config.schema",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'rlcore.config' has no attribute '{name}'")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
