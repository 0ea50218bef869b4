"""The driver's line to the cluster's head: a driver cut off from the head (its network, or the
head itself, gone) stops within ``ray.connect_timeout_s`` with a message naming the address,
instead of hanging in a call that cannot be answered.

A thread opens a TCP connection to the head's GCS port (``ray.address``) every ``period_s`` and
closes it at once. When none has been accepted for ``timeout_s`` it writes where the run stands
(``on_lost(message)``: ``summary.json`` with the cause and the last checkpoint on disk; nothing
that needs Ray, since Ray cannot answer) and ends the process with exit code 3: the main thread
is then inside a Ray call that has no answer to wait for, and a new checkpoint is out of reach
(a learner in a Ray actor is on the far side; one in the driver may be mid-update).

Ray's own driver gives up on a GCS it cannot reach after ``gcs_rpc_server_reconnect_timeout_s``
(60 s by default) with a fatal log and no word on the run; ``init_ray`` sets that above
``ray.connect_timeout_s`` so that this watch speaks first.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable

from rlcore.actors.watchdog import last_resort


def tcp_probe(host: str, port: int, timeout_s: float) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def gcs_address(configured: str) -> str:
    """The GCS address this process joined (``ray.address: auto`` names no host); the
    configured one where Ray does not say."""
    try:
        import ray

        if not ray.is_initialized():
            return configured
        return str(ray.get_runtime_context().gcs_address) or configured
    except Exception:  # noqa: BLE001 - an internal of Ray that moved: probe what was given
        return configured


def split_address(address: str) -> tuple[str, int]:
    """'host:port' (a ``ray://`` prefix and Ray's default port 6379 allowed)."""
    address = address.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (address, 6379)


class HeadWatch:
    """``address``: ``ray.address`` as configured; ``target``: the GCS address the driver
    joined (``gcs_address()``; they differ for ``ray.address: auto``), which is probed."""

    def __init__(self, address: str, timeout_s: float,
                 on_lost: Callable[[str], None] | None = None, period_s: float = 1.0,
                 probe: Callable[[str, int, float], bool] = tcp_probe,
                 exit: Callable[[int], None] = os._exit, clock=time.monotonic,
                 target: str | None = None):
        self.address, self.timeout_s, self.period_s = address, timeout_s, period_s
        self.target = target or address
        self.host, self.port = split_address(self.target)
        self.on_lost, self.probe, self._exit, self.clock = on_lost, probe, exit, clock
        self.last_contact = clock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HeadWatch:
        self._thread = threading.Thread(target=self._loop, name="rlcore-head-watch",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()

    def message(self) -> str:
        where = f"ray.address={self.address}"
        if self.target != self.address:
            where += f" ({self.target})"
        return (f"lost contact with the Ray head at {where}: no connection "
                f"accepted for {self.timeout_s:g} s (ray.connect_timeout_s); the head node or the "
                "network between this driver and it is down")

    def check(self) -> bool:
        """One probe; returns False (and fires) once the head has been silent too long."""
        now = self.clock()
        if self.probe(self.host, self.port, min(2.0, self.timeout_s)):
            self.last_contact = now
            return True
        if now - self.last_contact < self.timeout_s:
            return True
        self._fire()
        return False

    def _loop(self) -> None:
        while not self._closed.wait(self.period_s):
            if not self.check():
                return

    def _fire(self) -> None:
        if self._closed.is_set():
            return
        message = self.message()
        last_resort(f"{message}; stopping the run", self.on_lost, message, self._exit)
