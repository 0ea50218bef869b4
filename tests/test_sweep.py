"""Sweep files without Ray: expansion into trials (counts, order, names, values), located errors
with exit code 2 and nothing started, `rlcore validate` over every trial, `rlcore run` refusing a
sweep, and the summary table's arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlcore import cli
from rlcore.config.expand import read_sweep
from rlcore.errors import ConfigError
from rlcore.sweep import plan as plans
from rlcore.sweep.summary import markdown, rows_of

from test_cli import nothing_starts, rlcore, workdir  # noqa: F401 (fixtures)

GRID = """\
algorithm: ppo
seeds: [0, 1]
env:
  id: CartPole-v1
  num_envs: 2
learner:
  lr: {grid_search: [1.0e-4, 3.0e-4]}
algo:
  ent_coef: {grid_search: [0.0, 0.01]}
stop:
  num_env_steps: 256
"""


def write(folder, text: str, name: str = "exp.yaml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_a_2x2_grid_with_2_seeds_is_8_trials_in_file_order(tmp_path):
    sweep = read_sweep(write(tmp_path, GRID))
    names = [t.name for t in sweep.trials]
    assert names == [f"lr={lr},ent_coef={ent},seed={s}" for lr in ("0.0001", "0.0003")
                     for ent in ("0.0", "0.01") for s in (0, 1)]
    assert len(set(names)) == 8 and sweep.seeds == [0, 1]
    t = sweep.trials[5]  # lr=0.0003, ent_coef=0.0, seed=1
    assert t.setting == "lr=0.0003,ent_coef=0.0"
    assert t.params == {"learner.lr": 3e-4, "algo.ent_coef": 0.0, "seed": 1}
    assert t.data["learner"] == {"lr": 3e-4} and t.data["algo"] == {"ent_coef": 0.0}
    assert t.data["seed"] == 1 and "seeds" not in t.data
    assert [a.where for a in sweep.axes] == [f"{tmp_path}/exp.yaml:7", f"{tmp_path}/exp.yaml:9"]


def test_command_line_grids_and_seeds(tmp_path):
    path = write(tmp_path, GRID)
    sweep = read_sweep(path, ["env.num_envs=grid(2,4,8)", "algo.ent_coef=0.0"], seeds="0-2,7")
    assert sweep.seeds == [0, 1, 2, 7]
    assert len(sweep.trials) == 3 * 2 * 4  # num_envs x lr x seeds; ent_coef is one value now
    assert sweep.trials[0].name == "num_envs=2,lr=0.0001,seed=0"
    assert read_sweep(path, ["learner.lr={grid_search: [0.001]}"], seeds="3").trials[0].name == \
        "lr=0.001,ent_coef=0.0,seed=3"


@pytest.mark.parametrize("seeds, expected", [("0-4", [0, 1, 2, 3, 4]), ("5", [5]),
                                             ("0,2", [0, 2]), ("1-2,9", [1, 2, 9])])
def test_seed_ranges(tmp_path, seeds, expected):
    assert read_sweep(write(tmp_path, GRID), seeds=seeds).seeds == expected


def test_drawn_values_are_bounded_rounded_and_the_same_each_time(tmp_path):
    text = GRID.replace("{grid_search: [0.0, 0.01]}", "{loguniform: [1.0e-4, 1.0e-2]}") + \
        "  clip_coef: {uniform: [0.1, 0.3]}\n  gamma: {choice: [0.98, 0.99]}\n"
    path = write(tmp_path, text.replace("stop:\n  num_env_steps: 256\n", "") +
                 "stop:\n  num_env_steps: 256\n")
    first = read_sweep(path, num_samples=3)
    again = read_sweep(path, num_samples=3)
    assert [t.data for t in first.trials] == [t.data for t in again.trials]
    assert len(first.trials) == 2 * 3 * 2  # lr grid x samples x seeds
    for t in first.trials:
        ent, clip = t.params["algo.ent_coef"], t.params["algo.clip_coef"]
        assert 1e-4 <= ent <= 1e-2 and 0.1 <= clip <= 0.3 and t.params["algo.gamma"] in (0.98, 0.99)
        assert float(f"{ent:.4g}") == ent and f"ent_coef={ent}" in t.name
    assert {t.name.split(",")[-2] for t in first.trials} == {"sample=0", "sample=1", "sample=2"}
    # a setting's seeds share its drawn values
    assert first.trials[0].params | {"seed": 1} == first.trials[1].params


def test_a_sweep_inside_a_list_and_keys_with_the_same_last_name(tmp_path):
    text = GRID.replace("algo:\n", "algo:\n  hidden_sizes: [64, {grid_search: [32, 64]}]\n")
    text = text.replace("learner:\n", "learner:\n  groups: {main: {lr: {choice: [0.1]}}}\n")
    sweep = read_sweep(write(tmp_path, text))
    assert sweep.trials[0].name.startswith("main.lr=0.1,learner.lr=0.0001,1=32,")
    assert sweep.trials[0].data["algo"]["hidden_sizes"] == [64, 32]


@pytest.mark.parametrize("line, value, message", [
    (7, "{grid_search: []}", "learner.lr: grid_search takes a list"),
    (7, "{uniform: [1.0]}", "learner.lr: uniform takes [low, high], two numbers with low < high"),
    (7, "{loguniform: [0, 1]}", "learner.lr: loguniform takes [low, high], two numbers with 0 < low"),
    (7, "{grid_search: [0.1, 0.1]}", "learner.lr: 0.1 is listed twice in grid_search"),
    (7, "{grid_search: [0.1], choice: [1]}", "learner.lr: a sweep value is a mapping with one key"),
    (7, "{grid_search: [{choice: [1, 2]}]}", "learner.lr: a sweep value inside grid_search"),
    (2, "x-y", "cannot read 'x-y' as seeds"),
    (2, "[1, 1]", "1 is listed twice"),
    (2, "[-1]", "-1 is outside [0, 2147483647]"),
])
def test_bad_sweep_syntax_is_located_and_exits_2(workdir, capsys, nothing_starts, line, value,
                                                 message):
    lines = GRID.splitlines()
    key = lines[line - 1].partition(":")[0]
    lines[line - 1] = f"{key}: {value}"
    path = write(workdir, "\n".join(lines) + "\n")
    for command in (["validate", path], ["sweep", path]):
        code, out, err = rlcore(capsys, *command)
        assert code == 2 and err.startswith(f"error: {path}:{line}: "), err
        assert message in err, err
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("item, message", [
    ("ray.num_cpus=grid(1,2)", "--set ray.num_cpus: every trial of a sweep shares one Ray"),
    ("seed=grid(1,2)", "--set seed: sweep seeds with a top-level 'seeds: [0, 1, 2]'"),
    ("learner.lr=uniform(1,x)", "--set learner.lr: uniform takes [low, high]"),
    ("learner.lr=grid(1,", "--set learner.lr=grid(1,: cannot read 'grid(1,' as a sweep; write"),
])
def test_bad_command_line_sweeps_name_the_option(workdir, capsys, nothing_starts, item, message):
    code, out, err = rlcore(capsys, "sweep", write(workdir, GRID), "--set", item)
    assert code == 2 and message in err, err


def test_num_samples_needs_a_drawn_value(workdir, capsys, nothing_starts):
    code, out, err = rlcore(capsys, "sweep", write(workdir, GRID), "--num-samples", "3")
    assert code == 2 and "--num-samples 3: draws values of choice/uniform/loguniform" in err


def test_validate_checks_every_trial_and_names_them(workdir, capsys, nothing_starts):
    text = GRID.replace("[1.0e-4, 3.0e-4]", "[1.0e-4, 5]").replace("num_envs: 2",
                                                                    "num_envs: 2\n  num_env: 3")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err.splitlines()[0] == "error: 2 problems in the experiment:"
    assert f"{path}:6: unknown key 'env.num_env'; did you mean 'num_envs'? [all 8 trials]" \
        in err
    assert (f"{path}:8: learner.lr must be in (0, 1] (got 5) [trials lr=5,ent_coef=0.0,seed=0, "
            "lr=5,ent_coef=0.0,seed=1, lr=5,ent_coef=0.01,seed=0 and 1 more]") in err


def test_validate_a_good_sweep_and_its_env_once(workdir, capsys, nothing_starts, monkeypatch):
    from rlcore.run import checks

    made = []
    real = checks.check_spaces
    monkeypatch.setattr(checks, "check_spaces", lambda exp: made.append(1) or real(exp))
    path = write(workdir, GRID)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 0, err
    assert out == (f"{path}: ok (8 trials: 4 settings x 2 seeds of ppo on CartPole-v1); run them "
                   f"with: rlcore sweep {path}\n")
    assert len(made) == 4  # one env check per setting, not per seed


def test_run_refuses_a_sweep_and_points_to_rlcore_sweep(workdir, capsys, nothing_starts):
    path = write(workdir, GRID)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2 and not (workdir / "runs").exists()
    assert err.startswith(f"error: {path}:2: seeds, learner.lr, algo.ent_coef: sweep values")
    assert f"Run every trial with `rlcore sweep {path}`" in err
    code, out, err = rlcore(capsys, "run", write(workdir, GRID.replace("seeds: [0, 1]\n", ""),
                                                 "one.yaml"), "--set", "algo.ent_coef=0.0",
                            "--set", "learner.lr=grid(1e-4,3e-4)")
    assert code == 2 and "error: --set learner.lr: sweep values" in err


def test_sweep_options_that_do_not_go_together(workdir, capsys, nothing_starts):
    path = write(workdir, GRID)
    code, out, err = rlcore(capsys, "sweep", path, "--resume", str(workdir))
    assert code == 2 and "give either --resume SWEEP_DIR or a FILE" in err
    code, out, err = rlcore(capsys, "sweep", "--resume", str(workdir))
    assert code == 2 and f"{workdir}: not a sweep folder (no trials.json)" in err
    (workdir / "full").mkdir()
    (workdir / "full" / "x").write_text("")
    code, out, err = rlcore(capsys, "sweep", path, "--sweep-dir", str(workdir / "full"))
    assert code == 2 and "exists and is not an empty folder" in err


def test_a_folder_of_another_sweep_is_refused(workdir, capsys, nothing_starts):
    sweep = read_sweep(write(workdir, GRID))
    plans.Plan(workdir / "sw", sweep.source, sweep.trials[:2]).write()
    code, out, err = rlcore(capsys, "sweep", sweep.source, "--sweep-dir", str(workdir / "sw"))
    assert code == 2 and "holds another sweep" in err


def test_summary_rows_collapse_seeds(tmp_path):
    sweep = read_sweep(write(tmp_path, GRID))
    plan = plans.Plan(tmp_path / "sw", sweep.source, sweep.trials)
    scores = {t.name: float(i) for i, t in enumerate(sweep.trials)}
    states = [plans.TrialState(t, "done", {"eval_return_mean": scores[t.name], "wall_s": 2.0})
              for t in sweep.trials[:6]]
    states.append(plans.TrialState(sweep.trials[6], "failed", None, "EnvRuntimeError: boom"))
    states.append(plans.TrialState(sweep.trials[7], "new", None))
    rows = rows_of(states)
    assert [r.setting for r in rows] == ["lr=0.0001,ent_coef=0.0", "lr=0.0001,ent_coef=0.01",
                                         "lr=0.0003,ent_coef=0.0", "lr=0.0003,ent_coef=0.01"]
    assert [len(r.scores) for r in rows] == [2, 2, 2, 0]
    assert rows[1].mean == 2.5 and rows[1].std == pytest.approx(np.std([2, 3], ddof=1))
    assert rows[1].iqm == 2.5  # of two seeds: their mean
    text = markdown(plan, states, 1.0)
    assert "| lr=0.0001,ent_coef=0.01 | 2/2 | 2.5 ± 0.7071 | 2.5 [2, 3] | 2.0 |" in text
    assert "| lr=0.0003,ent_coef=0.01 | 0/2 | – ± – | – [–, –] | – |" in text
    assert "- `lr=0.0003,ent_coef=0.01,seed=0`: EnvRuntimeError: boom" in text
    assert "Not finished: `lr=0.0003,ent_coef=0.01,seed=1`" in text
    assert f"`rlcore sweep --resume {plan.sweep_dir}`" in text


def test_trial_state_reads_the_run_folder(tmp_path):
    sweep = read_sweep(write(tmp_path, GRID))
    plan = plans.Plan(tmp_path / "sw", sweep.source, sweep.trials)
    a, b, c, d = sweep.trials[:4]
    for trial, reason in ((a, "num_env_steps"), (b, "failed"), (c, "interrupted")):
        plan.run_dir(trial).mkdir(parents=True)
        (plan.run_dir(trial) / "summary.json").write_text(json.dumps(
            {"stop_reason": reason, "error": "X: y" if reason == "failed" else None}))
    assert [plans.trial_state(plan, t, {d.name: "E: z"}).status for t in (a, b, c, d)] == \
        ["done", "failed", "unfinished", "failed"]
    assert plans.trial_state(plan, d, {}).status == "new"
    assert plans.trial_state(plan, d, {d.name: "E: z"}).error == "E: z"


def test_the_sweep_help_ends_with_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "\nexamples:\n  rlcore sweep experiments/sweeps/ppo_cartpole.yaml\n" in out


def test_the_shipped_sweep_validates(capsys, nothing_starts):
    code, out, err = rlcore(capsys, "validate", "experiments/sweeps/ppo_cartpole.yaml")
    assert code == 0 and "(20 trials: 4 settings x 5 seeds of ppo on CartPole-v1)" in out, err


def test_too_many_trials_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="expands to 24,000 trials"):
        read_sweep(write(tmp_path, GRID), ["env.num_envs=grid(" + ",".join(
            str(i) for i in range(1, 1501)) + ")"], seeds="0-3")


DRAWN = GRID.replace("{grid_search: [1.0e-4, 3.0e-4]}", "{choice: [1.0e-4, 3.0e-4]}").replace(
    "{grid_search: [0.0, 0.01]}", "{loguniform: [1.0e-4, 1.0e-2]}")


@pytest.fixture
def searcher_installed(monkeypatch):
    """--search optuna's checks as if optuna were installed (they run before anything starts)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "optuna" else real(name, *a))


def test_a_search_checks_each_value_at_its_bounds(workdir, capsys, nothing_starts,
                                                  searcher_installed):
    from rlcore.config.expand import corner_trials

    sweep = read_sweep(write(workdir, DRAWN))
    assert [t.name for t in corner_trials(sweep)] == [
        "lr=0.0001,ent_coef=0.0001,seed=0", "lr=0.0003,ent_coef=0.0001,seed=0",
        "lr=0.0001,ent_coef=0.01,seed=0"]
    path = write(workdir, DRAWN.replace("{choice: [1.0e-4, 3.0e-4]}", "{uniform: [1.0e-4, 2]}"))
    code, out, err = rlcore(capsys, "sweep", path, "--search", "optuna", "--num-samples", "4")
    assert code == 2 and not (workdir / "runs").exists()
    assert err == (f"error: {path}:7: learner.lr must be in (0, 1] (got 2) "
                   "[trial lr=2,ent_coef=0.0001,seed=0]\n")


def test_a_search_refuses_grids_and_unknown_searchers(workdir, capsys, nothing_starts,
                                                      searcher_installed):
    path = write(workdir, GRID)
    code, out, err = rlcore(capsys, "sweep", path, "--search", "optuna")
    assert code == 2 and err.startswith(f"error: 2 problems in the experiment:\n  {path}:7: "
                                        "learner.lr: --search optuna suggests values from choice")
    code, out, err = rlcore(capsys, "sweep", path, "--search", "hyperopt")
    assert code == 2 and "--search hyperopt: not a search algorithm rlcore knows; choose optuna" \
        in err


def test_a_search_needs_its_package(workdir, capsys, nothing_starts, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real(name, *a))
    code, out, err = rlcore(capsys, "sweep", write(workdir, DRAWN), "--search", "optuna")
    assert code == 2 and "--search optuna needs optuna, which is not installed: pip install" in err
