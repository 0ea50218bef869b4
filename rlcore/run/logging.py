"""The one TensorBoard writer of a run, and the console progress line. The x-axis is env steps."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time


@contextlib.contextmanager
def interrupts_after():
    """Ctrl-C (SIGINT) arriving inside the block is delivered when the block ends. A
    KeyboardInterrupt raised inside TensorBoard's writer (between its queue's bookkeeping
    steps) can leave the queue inconsistent, and closing the writer then waits forever."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending and callable(previous):  # SIG_IGN / SIG_DFL are not callables
            previous(signal.SIGINT, None)


class RunLogger:
    def __init__(self, run_dir, start_step: int = 0, progress_every_s: float = 1.0, stream=None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a crashed run wrote after its last checkpoint (at start_step),
        # so a resumed run's curves continue without duplicated steps.
        self.writer = SummaryWriter(str(run_dir), purge_step=start_step + 1 if start_step else None)
        self.every = progress_every_s
        self.stream = stream or sys.stdout
        self._last = 0.0

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        with interrupts_after():
            for k, v in values.items():
                if v is not None:
                    self.writer.add_scalar(f"{prefix}/{k}", float(v), step)

    def progress(self, wall_s: float, steps: int, total: int, sps: float, ret: float | None,
                 extra: str = "") -> None:
        now = time.monotonic()
        if self.every <= 0 or now - self._last < self.every:
            return
        self._last = now
        ret_s = f"{ret:8.1f}" if ret is not None else "       -"
        print(f"[{wall_s:7.1f}s] steps {steps:>10,}/{total:,}  {sps:8,.0f} steps/s  "
              f"return {ret_s}  {extra}", file=self.stream, flush=True)

    def event(self, wall_s: float, steps: int, text: str) -> None:
        """A line that is always printed (evaluations, checkpoints)."""
        print(f"[{wall_s:7.1f}s] steps {steps:>10,}  {text}", file=self.stream, flush=True)

    def close(self) -> None:
        with interrupts_after():
            self.writer.flush()
            self.writer.close()
