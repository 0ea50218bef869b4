"""``rlcore sweep``: the trials of a sweep file (``rlcore.config.expand``) run on Ray Tune.

    plan.py      the sweep folder: the trials it holds, their state, the checks before a start
    tuner.py     the Tune side: Ray through ``init_ray``, each trial placed by its resources
    trial.py     the trainable: one trial = one rlcore run in SWEEP_DIR/<trial name>/
    search.py    --search optuna: Tune's searcher suggests the settings, each run per seed
    console.py   the lines printed as trials report, end and fail (a Tune callback)
    summary.py   the table (config -> seeds, mean ± std, IQM) and the curves
    commands.py  the command's arguments, examples and handler
"""
