"""Evaluation episodes recorded as MP4 files: ``rlcore eval RUN_DIR --video DIR``. One env,
rendered as ``rgb_array`` (MuJoCo headless through EGL unless ``MUJOCO_GL`` says otherwise), one
file per episode holding its reset frame and one frame after every step.

The frames are streamed to ffmpeg through imageio-ffmpeg. Gymnasium's ``RecordVideo`` hands
them to moviepy instead, and moviepy 2.1 loses an episode's last frame for many lengths (its
frame times are float multiples of 1/fps: measured, 14 frames at 25 fps come out as 13, and
so do 11-14 at 25 fps, 6-7, 12-15 and 24-31 at 30 fps); it also holds a whole episode's frames
in memory (a 1,000-step MuJoCo episode at 480x480 is 0.7 GB)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from rlcore import seeding
from rlcore.errors import ConfigError

PREFIX = "eval"  # files are eval-episode-0.mp4, eval-episode-1.mp4, ...


def headless() -> None:
    """Render without a display: MuJoCo through EGL (it reads ``MUJOCO_GL`` when first
    imported, so this runs before anything makes an env), pygame's classic-control frames
    through SDL's dummy drivers (else SDL looks for a desktop session and complains)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def check_video_folder(folder: Path) -> None:
    """A new or empty folder that takes files; refused before anything starts otherwise, so no
    earlier recording is overwritten."""
    try:
        import imageio_ffmpeg  # noqa: F401  (writes the files)
    except ImportError:
        raise ConfigError(["--video needs imageio-ffmpeg: pip install 'rlcore[video]'"]) from None
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError([f"--video {folder}: exists and is not an empty folder; recordings "
                           "are never written over others. Give a new folder"])
    from rlcore.run.checks import probe_write

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_write(folder)
    except OSError as exc:
        raise ConfigError([f"--video {folder}: cannot write there ({exc.strerror or exc}); "
                           "give a writable folder"]) from None


def _rendered_env(env_id: str, env_kwargs: dict):
    """One env rendering ``rgb_array`` frames, observations as in training."""
    import gymnasium as gym

    from rlcore.actors.envs import float32_observations
    from rlcore.registry import ensure_env_registered

    headless()
    ensure_env_registered(env_id)
    try:
        env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
    except TypeError as exc:  # an env that takes no render_mode
        raise ConfigError([f"env '{env_id}' cannot render frames ({exc})"]) from None
    return float32_observations(env)  # as in training (rlcore.actors.worker)


def _play(env, policy, episodes: int, seed: int, env_id: str, watchdog=None,
          on_step=None, on_episode_end=None) -> tuple[list, list]:
    """``episodes`` episodes of ``policy`` (the evaluation's seeds) under the watchdog;
    ``on_step()`` after the reset and each step, ``on_episode_end()`` after an episode's last
    step. Returns their returns and lengths; closes ``env``."""
    rng = np.random.default_rng(seeding.derive(seed, seeding.EVAL_STREAM))
    at = {"step": 0}
    guard = watchdog.watch(lambda: at["step"], lambda: f"rendering env '{env_id}'") \
        if watchdog is not None else contextlib.nullcontext()
    returns, lengths = [], []
    with guard:
        try:
            obs, _ = env.reset(seed=seeding.derive(seed, seeding.EVAL_STREAM, 1))
            for _ in range(episodes):
                if on_step is not None:
                    on_step()
                done, total, steps = False, 0.0, 0
                while not done:
                    action = policy.act(np.asarray(obs)[None], rng).for_env()[0]
                    obs, reward, term, trunc, _ = env.step(action)
                    total, steps, done = total + float(reward), steps + 1, term or trunc
                    at["step"] += 1
                    if on_step is not None:
                        on_step()
                returns.append(total)
                lengths.append(steps)
                if on_episode_end is not None:
                    on_episode_end()
                if len(returns) < episodes:
                    obs, _ = env.reset()
        finally:
            env.close()
    return returns, lengths


class _EpisodeFiles:
    """One MP4 per episode, frames streamed to ffmpeg as they come (see the module's note)."""

    def __init__(self, folder: Path, fps: float):
        self.folder, self.fps = folder, fps
        self.files: list[str] = []
        self._writer = None

    def frame(self, frame: np.ndarray) -> None:
        import imageio_ffmpeg

        frame = np.ascontiguousarray(np.asarray(frame)[..., :3], dtype=np.uint8)
        if self._writer is None:
            path = self.folder / f"{PREFIX}-episode-{len(self.files)}.mp4"
            height, width = frame.shape[:2]
            # yuv420p (what players expect) needs even sides: ffmpeg scales an odd side by one
            self._writer = imageio_ffmpeg.write_frames(
                str(path), (width, height), fps=self.fps, macro_block_size=2,
                ffmpeg_log_level="error")
            self._writer.send(None)
            self.files.append(str(path))
        self._writer.send(frame)

    def end_episode(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def record(policy, env_id: str, env_kwargs: dict, episodes: int, seed: int, folder: Path,
           watchdog=None) -> dict:
    """Play ``episodes`` episodes of ``policy`` in one rendered env and write each to
    ``folder`` (``eval-episode-<i>.mp4``, at the env's ``render_fps``); returns their returns,
    lengths and files."""
    env = _rendered_env(env_id, env_kwargs)
    out = _EpisodeFiles(folder, fps=env.metadata.get("render_fps") or 30)
    try:
        returns, lengths = _play(env, policy, episodes, seed, env_id, watchdog,
                                 on_step=lambda: out.frame(env.render()),
                                 on_episode_end=out.end_episode)
    finally:
        out.end_episode()  # an episode cut short by an error keeps what it recorded
    return {"returns": np.asarray(returns), "lengths": lengths, "files": out.files}


MAX_FRAMES, MAX_SIDE = 200, 160  # a TensorBoard clip: a few MB of GIF at most


def clip(policy, env_id: str, env_kwargs: dict, seed: int, watchdog=None) -> np.ndarray:
    """One episode of ``policy`` as frames [T, H, W, 3] uint8 for TensorBoard: at most
    ``MAX_FRAMES`` (evenly strided over a longer episode), the longer side at most
    ``MAX_SIDE`` pixels (strided rows and columns)."""
    env = _rendered_env(env_id, env_kwargs)
    frames = []
    _play(env, policy, 1, seed, env_id, watchdog, on_step=lambda: frames.append(env.render()))
    keep = np.linspace(0, len(frames) - 1, min(len(frames), MAX_FRAMES)).round().astype(int)
    stride = max(1, -(-max(frames[0].shape[:2]) // MAX_SIDE))
    return np.stack([frames[i][::stride, ::stride, :3] for i in keep]).astype(np.uint8)


def gif_bytes(frames: np.ndarray, fps: int = 25) -> bytes:
    """Frames [T, H, W, 3] uint8 as an animated GIF (Pillow). TensorBoard shows GIFs in its
    Images dashboard; torch's ``add_video`` needs moviepy 1's ``moviepy.editor``, gone in 2."""
    import io

    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    return buf.getvalue()
