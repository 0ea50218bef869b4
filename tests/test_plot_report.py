"""`rlcore plot` and `rlcore report` on synthetic run folders with known numbers: the drawn mean
and band, the grouping of seeds, rliable's IQM and bootstrap CIs, and the errors for bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlcore import cli
from rlcore.analysis.plot import plot_runs
from rlcore.analysis.report import report
from rlcore.analysis.runs import final_score, find_runs

pytest.importorskip("matplotlib")
EVAL = "eval/return_mean"


def make_run(folder: Path, seed: int, points: dict | None = None, lr: float = 1e-3,
             env: str = "CartPole-v1", summary: dict | None = None) -> Path:
    """A run folder as `rlcore run` leaves it: config.yaml, event files with ``points``
    ({tag: [(step, value), ...]}, logged at wall time start + step / 100 s), summary.json."""
    folder.mkdir(parents=True)
    config = {"algorithm": "ppo", "seed": seed, "env": {"id": env, "num_envs": 8},
              "algo": {"lr": lr, "hidden_sizes": [64, 64]}, "logging": {"root": str(folder)}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if points:
        from torch.utils.tensorboard import SummaryWriter

        start = time.time()
        with SummaryWriter(str(folder)) as writer:
            for tag, values in points.items():
                for step, value in values:
                    writer.add_scalar(tag, value, step, walltime=start + step / 100)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def curve(values, steps=(0, 1000, 2000)) -> dict:
    return {EVAL: list(zip(steps, values)), "learner/loss": [(0, 1.0)]}


def rlcore(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def three_seeds(tmp_path):
    values = {0: [0, 10, 20], 1: [2, 14, 26], 2: [4, 18, 20]}
    return [make_run(tmp_path / f"s{s}", s, curve(v)) for s, v in values.items()]


# ---------------------------------------------------------------- plot


def band_edges(poly, x: float) -> tuple[float, float]:
    """The band's lowest and highest y at x, from the drawn polygon."""
    vertices = poly.get_paths()[0].vertices
    ys = vertices[np.isclose(vertices[:, 0], x), 1]
    return ys.min(), ys.max()


def test_seeds_draw_their_mean_with_a_standard_error_band(three_seeds, tmp_path):
    (c,), fig = plot_runs(three_seeds, str(tmp_path / "fig.png"))
    mean = np.array([2.0, 14.0, 22.0])
    se = np.array([2.0, 4.0, np.sqrt(12.0)]) / np.sqrt(3)  # sample std (ddof=1) / sqrt(seeds)
    np.testing.assert_allclose(c.x, [0, 1000, 2000])
    np.testing.assert_allclose(c.mean, mean)
    np.testing.assert_allclose(c.low, mean - se)
    np.testing.assert_allclose(c.high, mean + se)
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.lines[0].get_xydata(), np.c_[[0, 1000, 2000], mean])
    for x, lo, hi in zip(c.x, mean - se, mean + se):
        np.testing.assert_allclose(band_edges(ax.collections[0], x), (lo, hi))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ppo (3 seeds)"]
    assert ax.get_title() == "CartPole-v1 · ppo"
    assert ax.get_xlabel() == "environment steps"
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_minmax_band_and_wall_time(three_seeds, tmp_path):
    (c,), _ = plot_runs(three_seeds, str(tmp_path / "fig.png"), band="minmax")
    np.testing.assert_allclose(c.low, [0, 10, 20])
    np.testing.assert_allclose(c.high, [4, 18, 26])
    (c,), fig = plot_runs(three_seeds[:1], str(tmp_path / "fig.png"), x_axis="wall")
    np.testing.assert_allclose(c.x, [0, 10, 20], atol=1.0)  # logged at start + step / 100 s
    np.testing.assert_allclose(c.mean, [0, 10, 20])
    assert fig.axes[0].get_xlabel() == "wall time (s)" and len(fig.axes[0].collections) == 0


def test_runs_differing_in_lr_are_two_lines_named_by_lr(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for lr, base in ((1e-3, 10.0), (3e-4, 0.0)):
        for seed in (0, 1):
            make_run(sweep / f"lr{lr}_s{seed}", seed, curve([base, base + seed, base + 2]), lr=lr)
    (a, b), fig = plot_runs([sweep], str(tmp_path / "fig.png"))
    assert [a.group.label, b.group.label] == ["ppo algo.lr=0.0003", "ppo algo.lr=0.001"]
    np.testing.assert_allclose(a.mean, [0, 0.5, 2])
    np.testing.assert_allclose(b.mean, [10, 10.5, 12])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["ppo algo.lr=0.0003 (2 seeds)", "ppo algo.lr=0.001 (2 seeds)"]
    code, out, _ = rlcore(capsys, "plot", sweep, "-o", tmp_path / "cli.png")
    assert code == 0 and "CartPole-v1 ppo algo.lr=0.001: 2 seeds, eval/return_mean 12" in out


def test_a_key_only_newer_runs_have_does_not_split_the_seeds(tmp_path):
    """Seeds run before and after rlcore gained a setting: the one setting, one line; a key
    every run has and that differs still splits."""
    old = make_run(tmp_path / "s0", 0, curve([0, 10, 20]))
    new = make_run(tmp_path / "s1", 1, curve([2, 14, 26]))
    config = yaml.safe_load((new / "config.yaml").read_text())
    config["rollout"] = {"inline_start": True}
    (new / "config.yaml").write_text(yaml.safe_dump(config))
    [line], _ = plot_runs([old, new], str(tmp_path / "fig.png"))
    assert line.group.label == "ppo" and len(line.group.runs) == 2
    np.testing.assert_allclose(line.mean, [1, 12, 23])
    other = make_run(tmp_path / "s2", 2, curve([4, 18, 20]), lr=3e-4)
    lines, _ = plot_runs([old, new, other], str(tmp_path / "fig2.png"))
    assert [line.group.label for line in lines] == ["ppo algo.lr=0.0003", "ppo algo.lr=0.001"]


def test_seeds_on_different_steps_and_a_seed_that_stopped_on_its_target(tmp_path):
    early = make_run(tmp_path / "a", 0, curve([0, 100, 500]),
                     summary={"stop_reason": "eval_return", "eval_return_mean": 500})
    make_run(tmp_path / "b", 1, curve([0, 150, 300], steps=(0, 1500, 3000)),
             summary={"stop_reason": "num_env_steps", "eval_return_mean": 300})
    (c,), _ = plot_runs([tmp_path], str(tmp_path / "fig.png"), band="minmax")
    np.testing.assert_allclose(c.x, [0, 1000, 1500, 2000, 3000])
    # a interpolated, then held at 500 (it reached stop.eval_return); b interpolated
    np.testing.assert_allclose(c.low, [0, 100, 150, 200, 300])
    np.testing.assert_allclose(c.high, [0, 100, 300, 500, 500])
    assert c.note == ""
    (early / "summary.json").write_text(json.dumps({"stop_reason": "num_env_steps"}))
    (c,), _ = plot_runs([tmp_path], str(tmp_path / "fig.png"))
    assert c.x[-1] == 2000 and "seeds end between 2,000 and 3,000" in c.note


# ---------------------------------------------------------------- report


def rliable_iqm(scores: np.ndarray, reps: int):
    from rliable import library as rly, metrics

    np.random.seed(0)  # rliable 1.2 resamples with numpy's global generator
    point, ci = rly.get_interval_estimates(
        {"x": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps)
    return point["x"][0], ci["x"][:, 0]


def test_iqm_of_eight_seeds_is_the_mean_of_the_middle_four(tmp_path):
    for seed, score in enumerate([8, 1, 7, 2, 6, 3, 5, 4]):
        make_run(tmp_path / f"s{seed}", seed, summary={"eval_return_mean": score})
    (row,) = report([tmp_path], reps=200).rows
    assert row.iqm == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert row.mean == pytest.approx(4.5) and row.median == pytest.approx(4.5)
    assert row.std == pytest.approx(np.std(np.arange(1, 9), ddof=1))


def test_report_gives_rliables_iqm_and_ci(tmp_path, capsys):
    scores = np.array([12.5, 80.0, 33.0, 47.25, 150.0])
    for seed, score in enumerate(scores):
        make_run(tmp_path / f"s{seed}", seed, summary={"eval_return_mean": score})
    (row,) = report([tmp_path], reps=1000).rows
    iqm, ci = rliable_iqm(scores[:, None], reps=1000)
    assert row.iqm == pytest.approx(iqm) and row.ci == pytest.approx(tuple(ci))
    assert ci[0] < iqm < ci[1]
    code, out, _ = rlcore(capsys, "report", tmp_path, "--reps", 1000)
    assert code == 0
    assert (f"| CartPole-v1 | ppo | 5 | {scores.mean():.4g} ± {scores.std(ddof=1):.4g} | 47.25 | "
            f"{iqm:.4g} [{ci[0]:.4g}, {ci[1]:.4g}] |") in out
    assert "raw" in out.splitlines()[0]


def test_report_across_tasks_normalizes_and_stratifies(tmp_path, capsys):
    raw = {"CartPole-v1": [500, 250, 100], "Acrobot-v1": [-100, -300, -500]}
    for task, scores in raw.items():
        for seed, score in enumerate(scores):
            make_run(tmp_path / f"{task}_s{seed}", seed, env=task,
                     summary={"eval_return_mean": score})
    norms = ["CartPole-v1:random=0,max=500", "Acrobot-v1:random=-500,max=0"]
    result = report([tmp_path], str(tmp_path / "r.png"), norms, reps=300)
    normalized = np.array([[1.0, 0.5, 0.2], [0.8, 0.4, 0.0]]).T  # (runs, tasks), task order seen
    by_task = {r.task: r for r in result.rows}
    np.testing.assert_allclose(by_task["CartPole-v1"].scores[0], normalized[:, 0])
    (overall,) = result.overall
    iqm, ci = rliable_iqm(normalized[:, ::-1] if result.rows[0].task == "Acrobot-v1"
                          else normalized, reps=300)
    assert overall.iqm == pytest.approx(iqm) and overall.ci == pytest.approx(tuple(ci))
    assert overall.mean == pytest.approx(normalized.mean())
    assert (tmp_path / "r.png").stat().st_size > 0
    code, out, _ = rlcore(capsys, "report", tmp_path)  # raw scores: per task only
    assert code == 0 and "No aggregate across tasks" in out


def test_final_score_falls_back_to_the_last_eval_event(tmp_path, capsys):
    run = make_run(tmp_path / "a", 0, curve([1, 2, 3]))
    assert final_score(find_runs([run])[0]) == 3
    make_run(tmp_path / "b", 1, {"learner/loss": [(0, 1.0)]})  # not evaluated yet
    code, out, _ = rlcore(capsys, "report", tmp_path, "--reps", 10)
    assert code == 0 and "| 1 |" in out and f"no final evaluation yet: {tmp_path / 'b'}" in out


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["plot", "report"])
def test_not_a_run_folder(tmp_path, capsys, command):
    (tmp_path / "notes").mkdir()
    code, _, err = rlcore(capsys, command, tmp_path / "notes")
    assert code == 2 and "notes: not a run folder (no config.yaml)" in err
    code, _, err = rlcore(capsys, command, tmp_path / "missing")
    assert code == 2 and "missing: does not exist" in err


def test_unknown_metric_lists_the_tags(three_seeds, capsys):
    code, _, err = rlcore(capsys, "plot", three_seeds[0], "--metric", "eval/return")
    assert code == 2 and "no scalar 'eval/return'" in err
    assert "--metric: eval/return_mean, learner/loss" in err


def test_a_run_without_event_files(tmp_path, capsys):
    make_run(tmp_path / "a", 0)
    code, _, err = rlcore(capsys, "plot", tmp_path / "a")
    assert code == 2 and "no TensorBoard event files" in err


def test_bad_normalize_and_a_figure_across_raw_tasks(tmp_path, capsys):
    make_run(tmp_path / "a", 0, summary={"eval_return_mean": 1.0})
    make_run(tmp_path / "b", 0, env="Acrobot-v1", summary={"eval_return_mean": -1.0})
    code, _, err = rlcore(capsys, "report", tmp_path, "--normalize", "random=0")
    assert code == 2 and "--normalize random=0: expected random=R,max=M" in err
    code, _, err = rlcore(capsys, "report", tmp_path, "--normalize", "Pong:random=0,max=1")
    assert code == 2 and "no run on task 'Pong'" in err
    code, _, err = rlcore(capsys, "report", tmp_path, "-o", tmp_path / "r.png")
    assert code == 2 and "across 2 tasks" in err and not (tmp_path / "r.png").exists()


def test_missing_extra_names_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rliable" else find_spec(name, *a))
    make_run(tmp_path / "a", 0, summary={"eval_return_mean": 1.0})
    code, _, err = rlcore(capsys, "report", tmp_path)
    assert code == 2 and "needs rliable" in err and "pip install 'rlcore[plots]'" in err


@pytest.mark.slow
def test_plot_and_report_read_real_runs(tmp_path, capsys):
    """Two short inline runs that differ only by seed: one line, one report row."""
    root = Path(__file__).resolve().parents[1]
    for seed in (0, 1):
        assert cli.main(["run", str(root / "experiments/ppo_cartpole.yaml"), "--run-dir",
                         str(tmp_path / f"s{seed}"), "--set", f"seed={seed}", "--set",
                         "rollout.num_actors=0", "--set", "stop.num_env_steps=512", "--set",
                         "eval.every_env_steps=256", "--set", "eval.episodes=2"]) == 0
    capsys.readouterr()
    (c,), _ = plot_runs([tmp_path], str(tmp_path / "fig.png"))
    assert c.group.label == "ppo" and c.x[-1] >= 512 and len(c.x) >= 2
    (row,) = report([tmp_path], reps=100).rows
    finals = [json.loads((tmp_path / f"s{s}" / "summary.json").read_text())["eval_return_mean"]
              for s in (0, 1)]
    assert row.mean == pytest.approx(np.mean(finals))


def test_a_run_trained_from_python_is_a_run_folder_as_the_cli_writes_it(tmp_path):
    """train_experiment records the resolved config.yaml, as `rlcore run` does, so a run made
    from Python (a notebook, a benchmark) is found by plot and read back by eval and resume."""
    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import train_experiment

    overrides = ["stop.num_env_steps=200", "eval.every_env_steps=100", "eval.episodes=5"]
    train_experiment("experiments/bandit.yaml", tmp_path / "run", overrides)
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    expected = load_experiment("experiments/bandit.yaml",
                               ["logging.progress_every_s=0", *overrides]).resolved()
    assert recorded == expected
    assert [r.path for r in find_runs([tmp_path])] == [tmp_path / "run"]


# ---------------------------------------------------------------- sustained results

def test_holds_from_and_first_by_hand():
    from rlcore.analysis.report import first_at, holds_from

    steps = [5, 10, 15, 20, 25]
    assert holds_from(steps, [100, 480, 300, 476, 500], 475) == 20  # falls at 15, holds from 20
    assert first_at(steps, [100, 480, 300, 476, 500], 475) == 10
    assert holds_from(steps, [475, 480, 500, 476, 500], 475) == 5  # every one: from the first
    assert holds_from(steps, [500, 500, 500, 500, 474.9], 475) is None  # the last is below
    assert first_at(steps, [1, 2, 3, 4, 5], 475) is None
    assert holds_from(steps, [500, float("nan"), 500, 500, 500], 475) == 15  # NaN counts as below
    assert holds_from([], [], 475) is None


def test_report_threshold_lists_each_seed_and_the_median(tmp_path, capsys):
    curves = {0: [100, 480, 500], 1: [480, 300, 490], 2: [500, 500, 400]}
    for seed, values in curves.items():  # seed 2 from summary.json only: no event files
        if seed == 2:
            make_run(tmp_path / f"s{seed}", seed, summary={
                "eval_return_mean": 400.0,
                "evals": [{"env_steps": s, "wall_s": s / 100, "mean": v}
                          for s, v in zip((0, 1000, 2000), values)]})
        else:
            make_run(tmp_path / f"s{seed}", seed, curve(values))
    code, out, _ = rlcore(capsys, "report", tmp_path, "--reps", 100, "--threshold", 475)
    assert code == 0
    assert "| CartPole-v1 | ppo | 0 | 3 | 1,000 | 1,000 | 500 |" in out
    assert "| CartPole-v1 | ppo | 1 | 3 | 2,000 | 0 | 490 |" in out
    assert "| CartPole-v1 | ppo | 2 | 3 | never | 0 | 400 |" in out
    # held from 1,000 and 2,000, one never: the median of (1,000, 2,000, never) is 2,000
    assert "| CartPole-v1 | ppo | all | | 2 of 3 hold; median 2,000 | | |" in out
