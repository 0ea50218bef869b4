"""One exception class per category of user-facing error.

Each message says what was wrong, where, and how to fix it. Exit codes of the CLI: 0 done,
2 bad input (nothing was started), 3 a run failed after it started (its checkpoint and
``summary.json`` name the cause), 130 interrupted (Ctrl-C; a checkpoint was written).
"""

from __future__ import annotations


BAD_INPUT, RUN_FAILED, INTERRUPTED = 2, 3, 130


class RLCoreError(Exception):
    """Base class of errors a user can cause; the CLI prints the message and exits with
    ``exit_code``: 2 (bad input, nothing started) unless the run that raised it had started
    (then 3: ``rlcore.run.lifecycle`` sets it on the instance)."""

    exit_code = BAD_INPUT


class ConfigError(RLCoreError):
    """The experiment file or an override is invalid. Holds every problem found, not just one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RegistryError(RLCoreError):
    """An unknown plugin name, or a plugin whose import failed."""


class IncompatibleEnvError(RLCoreError):
    """The environment's spaces or API do not fit the chosen algorithm."""


class CheckpointError(RLCoreError):
    """A checkpoint is missing, incomplete, or belongs to another experiment."""


class ClusterError(RLCoreError):
    """Ray could not be started or joined, or cannot host the requested actors."""


class EnvRuntimeError(RLCoreError):
    """An environment misbehaved while running (non-finite values, wrong shapes)."""


class NonFiniteEnvError(EnvRuntimeError):
    """A NaN or inf observation or reward (``rollout.nonfinite`` decides: stop or drop)."""


class TrainingError(RLCoreError):
    """Training cannot continue (e.g. repeated non-finite losses)."""


class PluginError(RLCoreError):
    """A plugin breaks its contract (``rlcore/plugin.py``), e.g. a numpy policy whose spec does
    not fit the weights the learner publishes."""
