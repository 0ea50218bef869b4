"""Learning tests that train to the full budget (no early stop) and ask from which evaluation
on every later one stays at or above a threshold: one helper for the slow test modules."""

from rlcore.analysis.report import holds_from
from rlcore.run.lifecycle import train_experiment


def full_budget_held_from(tmp_path, file, overrides=(), *, env_steps=100_000, threshold=475):
    """Train ``file`` without early stop; the run must end at ``env_steps`` (the budget rounded
    up to whole rounds) with its final evaluation there. Returns the env step of the
    evaluation from which every later one, the final included, is >= ``threshold`` (None if
    the last is below it), and the (env steps, mean) of every evaluation."""
    s = train_experiment(file, tmp_path, ["stop.eval_return=null", "checkpoint.every_env_steps=0",
                                          *overrides])[0]
    means = [(e["env_steps"], e["mean"]) for e in s["evals"]]
    assert s["env_steps"] == env_steps and means[-1][0] == env_steps, means
    steps, values = zip(*means)
    return holds_from(steps, values, threshold), means
