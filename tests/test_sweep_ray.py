"""`rlcore sweep` on a local loopback Ray with Ray Tune: a 2x2 grid with 2 seeds runs as 8
trials, each its own run folder, and the summary table collapses the seeds; a trial that fails
is reported, and a resume reruns only it, from its own checkpoint."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from rlcore.cli import main

from fault_envs import MODULE_ID
from test_ray import non_loopback_ray_sockets

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    ray.shutdown()


def write(tmp_path, seeds, env: dict, algo: dict, learner: dict) -> str:
    data = {"algorithm": "ppo", "seeds": seeds, "env": {"num_envs": 2, **env},
            "rollout": {"num_actors": 0, "fragment_length": 64},
            "learner": {"num_epochs": 1, "minibatch_size": 0, **learner}, "algo": algo,
            "stop": {"num_env_steps": 384}, "eval": {"episodes": 2},
            "checkpoint": {"every_env_steps": 128}, "logging": {"progress_every_s": 0},
            "ray": {"num_cpus": 2}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def table(sweep_dir) -> dict[str, list[str]]:
    """The summary's rows: config -> [seeds, mean ± std, IQM [CI], wall s]."""
    rows = {}
    for line in (sweep_dir / "summary.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] != "config":
            rows[cells[0]] = cells[1:]
    return rows


def test_a_2x2_grid_with_2_seeds_runs_8_trials_and_collapses_the_seeds(tmp_path, capsys):
    path = write(tmp_path, [0, 1], {"id": "CartPole-v1"}, {"ent_coef": {"grid_search": [0.0, 0.01]}},
                 {"lr": {"grid_search": [1e-4, 1e-3]}})
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", path, "--sweep-dir", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "sweep of 8 trials: 4 settings x 2 seeds" in out and "8 to run" in out
    runs = sorted(p for p in sweep_dir.iterdir() if (p / "config.yaml").is_file())
    assert [p.name for p in runs] == sorted(
        f"lr={lr},ent_coef={ent},seed={s}" for lr in ("0.0001", "0.001") for ent in ("0.0", "0.01")
        for s in (0, 1))
    summaries = {}
    for run in runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        summary = json.loads((run / "summary.json").read_text())
        lr, ent, seed = re.fullmatch(r"lr=(.*),ent_coef=(.*),seed=(.*)", run.name).groups()
        assert (config["learner"]["lr"], config["algo"]["ent_coef"], config["seed"]) == \
            (float(lr), float(ent), int(seed))
        assert summary["stop_reason"] == "num_env_steps" and summary["env_steps"] == 384
        assert summary["eval_return_mean"] is not None
        assert list(run.glob("events.out.tfevents.*"))  # its own TensorBoard run
        summaries[run.name] = summary
    rows = table(sweep_dir)
    assert list(rows) == [f"lr={lr},ent_coef={ent}" for lr in ("0.0001", "0.001")
                          for ent in ("0.0", "0.01")]
    for setting, (seeds, mean_std, iqm, wall) in rows.items():
        scores = [summaries[f"{setting},seed={s}"]["eval_return_mean"] for s in (0, 1)]
        mean = sum(scores) / 2
        assert seeds == "2/2"
        assert mean_std.startswith(f"{mean:.4g} ± ")
        assert iqm.startswith(f"{mean:.4g} [")  # the IQM of two seeds is their mean
    assert (sweep_dir / "tune").is_dir() and (sweep_dir / "curves.png").is_file()
    assert len(json.loads((sweep_dir / "trials.json").read_text())["trials"]) == 8
    import ray  # the sweep's Ray (still up, with Tune's trial processes) is on loopback only

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    assert non_loopback_ray_sockets() == []


def test_a_failed_trial_is_reported_and_a_resume_reruns_only_it(tmp_path, capsys):
    marker = tmp_path / "fault-once"  # the NaN fires once in the whole sweep: not on resume
    marker.touch()
    path = write(tmp_path, [0], {"id": MODULE_ID, "kwargs": {
        "fault": {"grid_search": ["none", "nan"]}, "after": 100, "marker": str(marker)}}, {}, {})
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", path, "--sweep-dir", str(sweep_dir)]) == 3
    out = capsys.readouterr().out
    clean, faulty = sweep_dir / "fault=none,seed=0", sweep_dir / "fault=nan,seed=0"
    assert not marker.exists()
    assert json.loads((faulty / "summary.json").read_text())["stop_reason"] == "failed"
    assert "fault=nan,seed=0: FAILED (" in out and "non-finite obs" in out
    text = (sweep_dir / "summary.md").read_text()
    assert "1 finished, 1 failed, 0 not finished" in text
    assert "- `fault=nan,seed=0`: EnvRuntimeError: env " in text and "non-finite obs" in text
    assert table(sweep_dir)["fault=nan"][0] == "0/1"
    before = (clean / "summary.json").read_bytes(), (clean / "summary.json").stat().st_mtime_ns

    assert main(["sweep", "--resume", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "1 to run" in out and "fault=none,seed=0:" not in out.split("# Sweep")[0]
    assert before == ((clean / "summary.json").read_bytes(),
                      (clean / "summary.json").stat().st_mtime_ns)
    summary = json.loads((faulty / "summary.json").read_text())
    assert summary["stop_reason"] == "num_env_steps" and summary["env_steps"] == 384
    assert summary["resumed_from"]["checkpoint"].endswith("step_000000000128")
    assert "2 finished, 0 failed" in (sweep_dir / "summary.md").read_text()
    assert table(sweep_dir)["fault=nan"][0] == "1/1"

    # the same command again: nothing left to run, Tune is not started
    assert main(["sweep", path, "--sweep-dir", str(sweep_dir)]) == 0
    assert "0 to run" in capsys.readouterr().out


@pytest.mark.timeout(240)
def test_trials_with_rollout_actors_are_placed_by_their_resources(tmp_path, capsys):
    """Each trial asks for 2 CPUs (its run, one actor) of the 2 the Ray has: one at a time, the
    actor inside the trial's placement group (outside it, no CPU would be free for it)."""
    path = write(tmp_path, [0, 1], {"id": "CartPole-v1"}, {}, {})
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", path, "--sweep-dir", str(sweep_dir), "--set",
                 "rollout.num_actors=1", "--set", "stop.num_env_steps=256"]) == 0
    spans = []
    for seed in (0, 1):
        run = sweep_dir / f"seed={seed}"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["num_actors"] == 1 and summary["actor_health"]["healthy"] == 1
        spans.append(((run / "config.yaml").stat().st_mtime, (run / "summary.json").stat().st_mtime))
    (s0, e0), (s1, e1) = spans
    assert e0 <= s1 or e1 <= s0  # never both at once


def test_optuna_suggests_settings_and_each_runs_with_every_seed(tmp_path, capsys):
    pytest.importorskip("optuna")
    path = write(tmp_path, [0, 1], {"id": "CartPole-v1"},
                 {"ent_coef": {"loguniform": [1e-4, 1e-2]}}, {"lr": {"choice": [1e-4, 1e-3]}})
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", path, "--sweep-dir", str(sweep_dir), "--search", "optuna",
                 "--num-samples", "2", "--set", "stop.num_env_steps=256"]) == 0
    assert "2 settings suggested by optuna x 2 seeds" in capsys.readouterr().out
    trials = json.loads((sweep_dir / "trials.json").read_text())["trials"]
    assert len(trials) == 4
    for t in trials:
        config = yaml.safe_load((sweep_dir / t["name"] / "config.yaml").read_text())
        assert config["algo"]["ent_coef"] == t["params"]["algo.ent_coef"]
        assert 1e-4 <= config["algo"]["ent_coef"] <= 1e-2 and config["seed"] == t["params"]["seed"]
    settings = {t["setting"] for t in trials}
    assert {s.rsplit(",", 1)[1] for s in settings} == {"sample=0", "sample=1"}
    assert [row[0] for row in table(sweep_dir).values()] == ["2/2", "2/2"]
