"""The one TensorBoard writer of a run, and the console progress line. The x-axis is env steps."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

from rlcore.errors import TrainingError


def _quiet_writer_threads() -> None:
    """TensorBoard writes events from a thread of its own; when the folder turns read-only or
    vanishes, that thread dies with an OSError that threading prints as a traceback, and the
    writer raises it again at the next write, where ``RunLogger`` turns it into one clean
    error. Keep the thread's copy off the console; every other thread's errors still print."""
    previous = threading.excepthook
    if getattr(previous, "_rlcore_quiet", False):
        return

    def hook(args) -> None:
        if (issubclass(args.exc_type, OSError) and args.thread is not None
                and type(args.thread).__module__.startswith("tensorboard.")):
            return
        previous(args)

    hook._rlcore_quiet = True
    threading.excepthook = hook


@contextlib.contextmanager
def _storage_errors(run_dir):
    """An OSError of the TensorBoard writer as a TrainingError naming the folder and the fix
    (the run then stops with a checkpoint, if the folder still takes one)."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(
            f"cannot write TensorBoard events to the run folder {run_dir} "
            f"({exc.strerror or exc}); it was made read-only, filled up or removed. Make it "
            f"writable (or free space), then: rlcore resume {run_dir}") from None


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

        _quiet_writer_threads()
        self.run_dir = run_dir
        # purge_step drops events a crashed run wrote after its last checkpoint (at start_step),
        # so a resumed run's curves continue without duplicated steps.
        with _storage_errors(run_dir):
            self.writer = SummaryWriter(str(run_dir),
                                        purge_step=start_step + 1 if start_step else None)
        self.every = progress_every_s
        self.stream = stream or sys.stdout
        self._last = 0.0

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        with interrupts_after(), _storage_errors(self.run_dir):
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
        """Flush and close; a writer that already failed (the run has stopped on that failure,
        or is stopping on another) is closed without raising again."""
        with interrupts_after():
            try:
                self.writer.flush()
                self.writer.close()
            except OSError:
                pass
