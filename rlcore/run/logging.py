"""The one TensorBoard writer of a run, and the console progress line. The x-axis is env steps.

Besides the scalars, a run holds its resolved config twice: as the text ``config`` (the YAML
the run was started or resumed with) and, once the run has completed, as hyperparameters (the
config's keys flattened, ``algo.gamma``, with the final ``eval/return_mean`` as the metric),
both in the run's own event files so that one run folder is one TensorBoard run."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from rlcore.config.schema import flatten
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


RETURN_WINDOW = 100  # episodes in the progress line's mean return (rollout/episode_return_mean100)


def rollout_scalars(returns, lengths, recent) -> dict:
    """The ``rollout`` section: the mean return and length of the episodes that ended since the
    last log (none ended: left out), and ``episode_return_mean100``, the mean of ``recent`` (the
    last 100 episodes' returns): the progress line's figure."""
    out = {}
    if len(returns):
        out = {"episode_return": float(np.mean(returns)), "episode_length": float(np.mean(lengths))}
    if len(recent):
        out[f"episode_return_mean{RETURN_WINDOW}"] = float(np.mean(recent))
    return out


def actor_scalars(health: dict, num_actors: int, own: dict) -> dict:
    """The ``actors`` section. Ray actors: their health, number and the regime's own figures
    (policy lag). The inline worker (``num_actors`` 0): only its restarts and dropped fragments,
    from the first one on; constant lines would otherwise sort first in TensorBoard."""
    if num_actors:
        return {**health, "num_actors": num_actors, **own}
    return {k: health[k] for k in ("restarts", "dropped_fragments") if health.get(k)}


# config sections that are bookkeeping, not hyperparameters
NOT_HPARAMS = ("logging", "checkpoint", "ray")


def flat_hparams(resolved: dict) -> dict:
    """The config as hyperparameters: nested keys joined by dots (``algo.gamma``), lists and
    booleans as text (``[64, 64]``, ``true``), unset (None) keys, empty sections and the
    bookkeeping sections left out."""
    out = {}
    for name, value in flatten(resolved).items():
        if name.split(".")[0] in NOT_HPARAMS or value is None or value == {}:
            continue
        if isinstance(value, (list, tuple)):
            out[name] = str(list(value))
        elif isinstance(value, bool):  # a column of true/false rather than 1/0
            out[name] = str(value).lower()
        else:
            out[name] = value
    return out


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

    def video(self, tag: str, frames, step: int) -> None:
        """Frames [T, H, W, 3] uint8 as an animated GIF under ``tag`` (the Images dashboard);
        None writes nothing."""
        if frames is None:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        from rlcore.run.video import gif_bytes

        _, h, w, c = frames.shape
        image = Summary.Image(height=h, width=w, colorspace=c,
                              encoded_image_string=gif_bytes(frames))
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        with interrupts_after(), _storage_errors(self.run_dir):
            self.writer.file_writer.add_summary(summary, step)

    def config(self, resolved: dict, step: int) -> None:
        """The resolved config as the text ``config``: its YAML in a code block (under that very
        tag: ``SummaryWriter.add_text`` would name it ``config/text_summary``)."""
        import yaml
        from torch.utils.tensorboard.summary import text

        summary = text("config", f"```yaml\n{yaml.safe_dump(resolved, sort_keys=False)}```")
        summary.value[0].tag = "config"
        with interrupts_after(), _storage_errors(self.run_dir):
            self.writer.file_writer.add_summary(summary, step)

    def hparams(self, resolved: dict, metric_tag: str, step: int) -> None:
        """The config's keys as hyperparameters with ``metric_tag`` (a scalar of this run; the
        hparams dashboard shows its last value) as the metric, written into this run's event
        file (``SummaryWriter.add_hparams`` would write them into a new run beside it)."""
        from torch.utils.tensorboard.summary import hparams

        summaries = hparams(flat_hparams(resolved), {metric_tag: None})
        with interrupts_after(), _storage_errors(self.run_dir):
            for summary in summaries:  # the experiment, session start and session end
                self.writer.file_writer.add_summary(summary, step)

    def progress(self, wall_s: float, steps: int, total: int, sps: float, ret: float | None,
                 extra: str = "", ret_label: str = "return") -> None:
        """The progress line (at most every ``progress_every_s``); ``ret`` is the regime's
        figure, named by ``ret_label`` (``return(100)``: the mean of the last 100 episodes)."""
        now = time.monotonic()
        if self.every <= 0 or now - self._last < self.every:
            return
        self._last = now
        ret_s = f"{ret:8.1f}" if ret is not None else "       -"
        print(f"[{wall_s:7.1f}s] steps {steps:>10,}/{total:,}  {sps:8,.0f} steps/s  "
              f"{ret_label} {ret_s}  {extra}", file=self.stream, flush=True)

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


def record_config(run_dir, exp) -> None:
    """The run folder's ``config.yaml``: the experiment as resolved, which ``rlcore resume``,
    ``rlcore eval`` and ``rlcore plot`` read back. Written once, when a run starts fresh."""
    import yaml

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "config.yaml").write_text(yaml.safe_dump(exp.resolved(), sort_keys=False))
