"""A watchdog for env code that runs in the driver (inline rollouts, evaluation episodes): an
``env.step`` or ``env.reset`` that does not return within the timeout stops the run.

The guarded code publishes its progress (a value that changes at every env step, read by the
watchdog thread; nothing is called per step). When it stops changing for ``timeout_s``:

1. the watchdog sends SIGALRM to the main thread, whose handler raises ``EnvHangError`` with
   what ``describe()`` says (env id, sub-env, episode step, last action). A Python-level hang
   (a sleep, a loop, a blocking read) unwinds at once, and the run stops through its usual
   failure path: a checkpoint of the last completed update, ``summary.json`` with the cause,
   a non-zero exit.
2. If the main thread has not unwound ``grace_s`` later (C code that never returns to the
   interpreter), or at once when the guarded code runs in another thread (a Ray Tune trial's
   function does; signals reach only the main thread), the watchdog thread calls
   ``on_stuck(message)`` (the run writes its checkpoint and summary from there: the learner is
   idle while the env hangs) and ends the process with exit code 3, since the hung thread
   cannot be stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable

from rlcore.errors import TrainingError


class EnvHangError(TrainingError):
    """An environment's step or reset did not return within the timeout."""


class Watchdog:
    def __init__(self, timeout_s: float, timeout_key: str = "rollout.sample_timeout_s",
                 on_stuck: Callable[[str], None] | None = None, grace_s: float = 5.0):
        self.timeout_s, self.timeout_key = timeout_s, timeout_key
        self.on_stuck, self.grace_s = on_stuck, grace_s
        self.poll_s = min(1.0, timeout_s / 10)
        self._lock = threading.Lock()
        self._armed: tuple | None = None  # (progress, describe) while guarding
        self._message: str | None = None  # set when it fires, read by the signal handler
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, progress: Callable[[], object], describe: Callable[[], str]):
        """Guard the block: ``progress()`` must change at least every ``timeout_s``."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGALRM, self._on_alarm) if main else None
        with self._lock:
            self._armed, self._message = (progress, describe, main), None
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rlcore-watchdog", daemon=True)
            self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._armed = None
            if main:
                signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ the thread

    def _on_alarm(self, signum, frame) -> None:
        message = self._message
        if message is not None and self._armed is not None:
            raise EnvHangError(message)

    def _loop(self) -> None:
        last, since, watched = None, time.monotonic(), None
        while not self._closed:
            time.sleep(self.poll_s)
            armed = self._armed
            if armed is None:
                watched = None
                continue
            value, now = armed[0](), time.monotonic()
            if armed is not watched or value != last:  # a new guard, or progress
                last, since, watched = value, now, armed
                continue
            if now - since > self.timeout_s:
                self._fire(armed)
                last, since, watched = None, time.monotonic(), None

    def _fire(self, armed: tuple) -> None:
        try:
            where = armed[1]()
        except Exception as exc:  # the description is best effort; the stop is not
            where = f"(position unknown: {type(exc).__name__}: {exc})"
        message = (f"{where} did not return within {self.timeout_key}={self.timeout_s:g} s; "
                   "the environment hangs. Fix its step()/reset(), or raise "
                   f"{self.timeout_key} if such steps are expected")
        with self._lock:
            if self._armed is not armed:
                return  # it returned just now
            self._message = message
        # Only the main thread takes signals: guarded code in another thread (a Ray Tune trial
        # runs its function in one) goes straight to the last resort below.
        deadline = time.monotonic() + (self.grace_s if armed[2] else 0.0)
        if armed[2]:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self._armed is not armed:
                return  # the main thread unwound: the run stops through its failure path
        last_resort(f"{message}; the hung call cannot be interrupted, stopping the process",
                    self.on_stuck, message)


def last_resort(error: str, save: Callable[[str], None] | None, message: str,
                exit: Callable[[int], None] = os._exit) -> None:
    """The end of a run that a watchdog thread makes when the main thread cannot be stopped
    (a hung env call, a lost cluster head): print ``error``, let ``save(message)`` write what
    it can (reported, never raised), end the process with exit code 3."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    if save is not None:
        try:
            save(message)
        except BaseException as exc:  # noqa: BLE001 - report and still exit
            print(f"rlcore: could not save the run: {exc}", file=sys.stderr, flush=True)
    exit(3)


def vector_env_position() -> int | None:
    """The sub-env index a Gymnasium sync vector env is stepping or resetting in the main thread
    right now (its loop variable ``i``), or None."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if (frame.f_code.co_name in ("step", "reset")
                and type(frame.f_locals.get("self")).__name__ == "SyncVectorEnv"):
            i = frame.f_locals.get("i")
            return int(i) if isinstance(i, int) else None
        frame = frame.f_back
    return None


def hung_call() -> str:
    """'env.reset()' when the main thread is inside an env's reset, else 'env.step()'."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code.co_name == "reset":
            return "env.reset()"
        frame = frame.f_back
    return "env.step()"
