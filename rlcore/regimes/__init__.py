"""The data regimes: how data flows from actors to the learner. A plugin declares one
(``DataSpec.regime``); the run holds that regime's component and nothing else changes.

    trajectory  on-policy fragments, one update per round       (pg, ppo, trpo, tabular, ...)
    transition  fragments streamed into replay, updates at a replay ratio  (dqn, ddpg, ...)
    game        self-play games into a game store, updates per round       (alphazero)

Each regime is a class with the same members (the ``Run`` calls nothing else):

    name, one_step              its name; whether the learner takes one step per batch (replay)
    check(exp, spaces)          static: start-up checks beyond the spaces (``rlcore validate``)
    __init__(run)               its buffer and counters; ``run`` gives config, learner, pool
    worker_spec()               the worker its actors run (``rlcore.actors.pool.WorkerSpec``)
    round() -> (scalars, extra) collect -> buffer -> learner; the scalars to log by section and
                                the progress line's text (None: no line this round)
    evaluate(modules, index)    {"mean", "std", "episodes", "scalars", "text", "record"?}
    meta(), save(path), restore(path, meta), summary()
                                what it adds to checkpoints (meta.json and files) and summary.json
    check_files(path, meta)     raises CheckpointError when the files it added to the checkpoint
                                folder ``path`` do not fit (before any state is restored, so
                                that a resume can fall back to an older checkpoint)
"""

from __future__ import annotations

import importlib

REGIMES = {
    "trajectory": "rlcore.regimes.trajectory:Trajectory",
    "transition": "rlcore.regimes.transition:Transition",
    "game": "rlcore.regimes.game:GameRegime",
}


def regime_of(exp):
    """The regime class of an experiment's plugin."""
    module, _, name = REGIMES[exp.plugin.data_spec.regime].partition(":")
    return getattr(importlib.import_module(module), name)
