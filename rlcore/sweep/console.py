"""The sweep's console, a Ray Tune callback in the driver (imported once Ray is up)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ray import tune


def error_text(error) -> str:
    """The first lines of a trial's error: the run's own message when it got that far."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip() or type(cause).__name__
    if type(cause).__name__ != "TrialFailed":  # Ray's (an actor that died): its first line
        text = f"{type(cause).__name__}: {text.splitlines()[0]}"
    return text


class Console(tune.Callback):
    """A line for each evaluation, each trial's end and each failure."""

    def __init__(self, errors: dict, total: int, sweep_dir: Path, record=None):
        # no stream held: Tune pickles its callbacks with the experiment's state
        self.errors, self.total, self.sweep_dir, self.record = errors, total, sweep_dir, record
        self.t0, self.ended = time.monotonic(), 0

    def _line(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self.record is not None:
            self.record(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not result.get("done") and result.get("eval/return_mean") is not None:
            self._line(f"{str(trial)}: {result['env_steps']:,} env steps, eval "
                       f"return {result['eval/return_mean']:.4g}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.ended += 1
        ret = (trial.last_result or {}).get("eval/return_mean")
        self._line(f"{str(trial)}: done ({self.ended}/{self.total})"
                   + (f", eval return {ret:.4g}" if ret is not None else ""))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.ended += 1
        name = str(trial)
        error = self._run_error(name)
        if error is None:
            try:  # a trial that failed before its run wrote a summary: Tune's record of it
                raised = trial.get_pickled_error()
                error = error_text(raised) if raised is not None else None
            except Exception:  # noqa: BLE001 - the result grid has it again at the end
                error = None
        if error is not None:
            self.errors[name] = error
        self._line(f"{name}: FAILED ({self.ended}/{self.total}): "
                   f"{(error or 'see the table at the end').splitlines()[0][:300]}")

    def _run_error(self, name: str) -> str | None:
        try:
            return json.loads((self.sweep_dir / name / "summary.json").read_text()).get("error")
        except (OSError, ValueError, AttributeError):
            return None
