"""rlcore: a reinforcement-learning platform with a small core and registered plugins.

Importing this package imports no torch, Ray or plugin code; see ``rlcore.plugin`` for the
contract an algorithm implements and ``rlcore.registry`` for how plugins are found.
"""

__version__ = "0.1.0"
