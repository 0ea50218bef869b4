"""``rlcore eval RUN_DIR --video DIR``: evaluation episodes recorded with Gymnasium's
RecordVideo, one MP4 per episode holding every frame of it; a folder that already holds files
is refused before anything starts."""

import json

import imageio_ffmpeg
import pytest

from rlcore.cli import main

pytestmark = pytest.mark.timeout(300)


def frames_of(path) -> int:
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)  # the header
    return sum(1 for _ in reader)


def trained(tmp_path, capsys, experiment: str, *sets) -> str:
    run_dir = tmp_path / "run"
    argv = ["run", experiment, "--run-dir", str(run_dir), "--set", "rollout.num_actors=0",
            "--set", "stop.eval_return=null", "--set", "logging.progress_every_s=0"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return str(run_dir)


def recorded(capsys, run_dir: str, folder, episodes: int) -> dict:
    assert main(["eval", run_dir, "--episodes", str(episodes), "--video", str(folder)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_each_episode_is_one_video_with_its_frames(tmp_path, capsys):
    run_dir = trained(tmp_path, capsys, "experiments/ppo_cartpole.yaml",
                      "stop.num_env_steps=1024", "eval.episodes=2")
    out = recorded(capsys, run_dir, tmp_path / "videos", 3)
    assert out["videos"] == [str(tmp_path / "videos" / f"eval-episode-{i}.mp4") for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [
        f"eval-episode-{i}.mp4" for i in range(3)]
    # the reset frame and one after every step; CartPole's return is its length
    assert [frames_of(f) for f in out["videos"]] == [n + 1 for n in out["episode_lengths"]]
    assert out["eval_return_mean"] == pytest.approx(sum(out["episode_lengths"]) / 3)

    # nothing is written over an earlier recording, and nothing starts
    code = main(["eval", run_dir, "--video", str(tmp_path / "videos")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: --video {tmp_path / 'videos'}: exists and is not an empty folder; recordings "
        "are never written over others. Give a new folder\n")
    assert len(list((tmp_path / "videos").iterdir())) == 3


def test_every_frame_reaches_the_file_whatever_the_length(tmp_path):
    """moviepy (Gymnasium's RecordVideo) loses the last frame of an 11-14-frame episode at 25
    fps and of a 24-31-frame one at 30; the writer keeps every frame, odd sides included."""
    import numpy as np

    from rlcore.run.video import _EpisodeFiles

    lengths = [1, 11, 12, 13, 14, 24, 31]
    for fps, folder in ((25, tmp_path / "a"), (30, tmp_path / "b")):
        folder.mkdir()
        out = _EpisodeFiles(folder, fps=fps)
        for n in lengths:
            for i in range(n):
                out.frame(np.full((21, 30, 4), 9 * i % 256, np.uint8))  # RGBA, odd height
            out.end_episode()
        assert out.files == [str(folder / f"eval-episode-{i}.mp4") for i in range(len(lengths))]
        assert [frames_of(f) for f in out.files] == lengths
        assert next(imageio_ffmpeg.read_frames(out.files[0]))["fps"] == fps


@pytest.mark.slow
def test_a_mujoco_env_is_recorded_headless(tmp_path, capsys):
    """MuJoCo renders through EGL, without a display; Gymnasium's InvertedPendulum-v5 declares
    float64 observations, cast to float32 as in training."""
    run_dir = trained(tmp_path, capsys, "experiments/ppo_cartpole.yaml",
                      "env.id=InvertedPendulum-v5", "env.num_envs=2", "stop.num_env_steps=256",
                      "learner.minibatch_size=0", "eval.episodes=1")
    out = recorded(capsys, run_dir, tmp_path / "v", 2)
    assert [frames_of(f) for f in out["videos"]] == [n + 1 for n in out["episode_lengths"]]
    header = next(imageio_ffmpeg.read_frames(out["videos"][0]))
    assert header["size"] == (480, 480)  # MuJoCo's default offscreen frame


def test_training_logs_a_clip_to_tensorboard_at_the_asked_rhythm(tmp_path, capsys):
    import io

    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = trained(tmp_path, capsys, "experiments/ppo_cartpole.yaml",
                      "stop.num_env_steps=2048", "eval.every_env_steps=512", "eval.episodes=2",
                      "eval.video_every_env_steps=1024")
    acc = EventAccumulator(run_dir, size_guidance={"images": 0})
    acc.Reload()
    # evaluations at 512, 1024, 1536, 2048: a clip at the first and whenever a multiple of
    # 1024 was crossed since the last evaluation
    clips = acc.Images("eval/video")
    assert [c.step for c in clips] == [512, 1024, 2048]
    gif = Image.open(io.BytesIO(clips[-1].encoded_image_string))
    assert gif.format == "GIF" and gif.size == (150, 100)  # 600x400 frames, every 4th pixel
    assert 2 <= gif.n_frames <= 200
    assert (clips[-1].width, clips[-1].height) == (150, 100)


def test_clips_from_an_env_that_cannot_render_frames_are_refused_before_the_run(tmp_path, capsys):
    """The gridworld renders text only: refused by validate and run, exit code 2, no folder."""
    exp = "experiments/tabular_soft_gridworld.yaml"
    for command in (["validate", str(exp)], ["run", str(exp), "--run-dir", str(tmp_path / "r")]):
        assert main([*command, "--set", "eval.video_every_env_steps=1000"]) == 2
        err = capsys.readouterr().err
        assert ("eval.video_every_env_steps records rgb_array frames, and env "
                "'rlcore/GridWorld-v0' renders only ansi; set eval.video_every_env_steps: 0") in err
    assert not (tmp_path / "r").exists()
