"""Finished runs read back: ``rlcore plot`` (learning curves) and ``rlcore report`` (final scores
aggregated across seeds and tasks with rliable's IQM, bootstrap CIs and performance profiles).

Nothing here trains or writes to a run folder; matplotlib and rliable (the ``plots`` extra) are
imported only by the command that needs them.
"""
