"""A call in a thread whose result (or exception) the caller collects later: the run builds a
learner in the driver while Ray and the actors start."""

from __future__ import annotations

import threading


class Background:
    """Runs ``fn(*args)`` in a thread; ``result()`` waits and re-raises its exception."""

    def __init__(self, fn, *args):
        self._value, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
