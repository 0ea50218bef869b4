"""The ``rlcore`` command on bad input: exit code 2, a located message with the fix, no Python
traceback (unless --debug), and nothing started or written (BAD_INPUTS.md rows 1-8, 23)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlcore import cli, registry
from rlcore.actors import ray_setup
from rlcore.run import lifecycle as loops
from rlcore.config import ExperimentConfig
from rlcore.errors import IncompatibleEnvError

ROOT = Path(__file__).resolve().parents[1]
from experiment_text import BASE, leaf_keys, line_of  # noqa: E402



def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base file"
    return text.replace(old, new)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A clean current folder; default run folders (logging.root: runs) would land here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fail loudly if Ray would start or training would begin."""
    def no_ray(*args, **kwargs):
        raise AssertionError("Ray must not start for bad input")

    def no_training(*args, **kwargs):
        raise AssertionError("training must not start for bad input")

    monkeypatch.setattr(ray_setup, "init_ray", no_ray)
    monkeypatch.setattr(loops.Run, "run", no_training)


@pytest.fixture
def isolated_registry(monkeypatch):
    monkeypatch.setattr(registry, "_extra", copy.deepcopy(registry._extra))
    monkeypatch.setattr(registry, "_cache", dict(registry._cache))


def rlcore(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``rlcore ARGV`` in-process; an uncaught exception fails the test by itself."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(folder: Path, text: str, name: str = "exp.yaml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------- validate


def no_env_without_mujoco(path: Path) -> list[str]:
    """MuJoCo experiments are checked without making the env when mujoco is not installed."""
    import importlib.util

    import gymnasium as gym
    import yaml

    env_id = yaml.safe_load(path.read_text())["env"]["id"]
    spec = gym.registry.get(env_id)
    mujoco = spec is not None and str(spec.entry_point).startswith("gymnasium.envs.mujoco")
    return ["--no-env"] if mujoco and importlib.util.find_spec("mujoco") is None else []


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_validate(capsys, path, nothing_starts):
    extra = []
    if "init_from:" in path.read_text():  # starts from another file's run: checked without it
        code, _, err = rlcore(capsys, "validate", str(path))
        assert code == 2 and "learner.init_from" in err, err
        extra = ["--set", "learner.init_from=null", "--set", "learner.init_keys=[]"]
    code, out, err = rlcore(capsys, "validate", str(path), *no_env_without_mujoco(path), *extra)
    assert code == 0, err
    assert out.startswith(f"{path}: ok (")


def test_validate_a_good_file_exits_0_and_starts_nothing(workdir, capsys, nothing_starts,
                                                         monkeypatch):
    def no_env(*args, **kwargs):
        raise AssertionError("validate --no-env must not make the env")

    monkeypatch.setattr(loops, "check_spaces", no_env)
    path = write(workdir, BASE)
    before = snapshot(workdir)
    code, out, err = rlcore(capsys, "validate", path, "--no-env")
    assert code == 0, err
    assert out == f"{path}: ok (ppo on CartPole-v1, 100,000 env steps, batch 256)\n"
    assert err == ""
    assert snapshot(workdir) == before  # no runs/ folder, nothing written


def test_validate_env_on_a_good_file_checks_the_spaces(workdir, capsys, nothing_starts):
    code, out, err = rlcore(capsys, "validate", write(workdir, BASE))
    assert code == 0, err
    assert "ok (ppo on CartPole-v1" in out
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("text, expected", [
    ("algorithm: ppo\nenv:\n  id: CartPole-v1\n   num_envs: 4\n",
     ":4:12: mapping values are not allowed here"),
    ("algorithm: ppo\nenv: {id: CartPole-v1\nrollout:\n  num_actors: 0\n",
     ":3:8: expected ',' or '}', but got ':'"),
    ("algorithm: ppo\nenv:\n\tid: CartPole-v1\n", ":3:1: found character '\\t' that cannot start"),
], ids=["indent", "bracket", "tab"])
def test_malformed_yaml_is_one_located_line_and_exit_2(workdir, capsys, text, expected):
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path}{expected}")
    assert err.count("\n") == 1


def test_unknown_algorithm_suggests_ppo(workdir, capsys):
    text = edit(BASE, "algorithm: ppo", "algorithm: PP0")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err == (f"error: {path}:{line_of(text, 'algorithm:')}: unknown algorithm 'PP0'; "
                   f"did you mean 'ppo'? installed: {', '.join(registry.algorithm_names())}\n")


def test_all_problems_are_listed_under_one_header(workdir, capsys):
    text = edit(BASE, "  num_actors: 2", "  num_actors: four")
    text = edit(text, "  gamma: 0.98", "  gamma: 1.5")
    text = edit(text, "  clip_coef: 0.2", "  clip_coeff: 0.2")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err.splitlines() == [
        "error: 3 problems in the experiment:",
        f"  {path}:{line_of(text, 'num_actors')}: rollout.num_actors: expected an integer, got 'four'",
        f"  {path}:{line_of(text, 'gamma')}: algo.gamma must be in [0, 1] (got 1.5)",
        f"  {path}:{line_of(text, 'clip_coeff')}: unknown key 'algo.clip_coeff' for ppo; "
        "did you mean 'clip_coef'?",
    ]


def test_set_overrides_are_applied_and_reported(workdir, capsys):
    path = write(workdir, BASE)
    code, out, err = rlcore(capsys, "validate", path, "--set", "stop.num_env_steps=2e5",
                            "--set", "env.num_envs=16")
    assert code == 0, err
    assert out == f"{path}: ok (ppo on CartPole-v1, 200,000 env steps, batch 512)\n"
    code, out, err = rlcore(capsys, "validate", path, "--set", "learner.lrr=1e-3")
    assert code == 2
    assert err == "error: --set learner.lrr: unknown key 'learner.lrr'; did you mean 'lr'?\n"


def test_debug_shows_the_traceback(workdir, capsys):
    path = write(workdir, edit(BASE, "algorithm: ppo", "algorithm: PP0"))
    assert cli.main(["--debug", "validate", path]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert "unknown algorithm 'PP0'; did you mean 'ppo'?" in err


# ---------------------------------------------------------------- plugins that fail to import


def test_list_shows_a_broken_plugin_with_its_original_error(capsys, isolated_registry):
    registry.register_algorithm("broken", "nonexistent_module:PLUGIN")
    code, out, err = rlcore(capsys, "list")
    assert code == 0, err
    assert ("  broken       BROKEN (nonexistent_module:PLUGIN): ModuleNotFoundError: "
            "No module named 'nonexistent_module'\n") in out
    assert "  ppo          PPO" in out  # the others are still listed
    assert "1 plugin failed to load (BROKEN above)" in out


def test_list_marks_a_target_that_is_not_a_plugin(capsys, isolated_registry):
    registry.register_algorithm("notaplugin", "os:path")
    code, out, _ = rlcore(capsys, "list")
    assert code == 0
    assert "  notaplugin   BROKEN (os:path): is a module, not an rlcore.plugin.AlgorithmPlugin" in out


def test_selecting_a_broken_plugin_reports_the_import_error(workdir, capsys, isolated_registry,
                                                            nothing_starts):
    registry.register_algorithm("broken", "nonexistent_module:PLUGIN")
    path = write(workdir, BASE)
    for argv in (["validate", path], ["run", path]):
        code, out, err = rlcore(capsys, *argv, "--set", "algorithm=broken")
        assert code == 2
        assert err.startswith("error: --set algorithm: algorithm 'broken' "
                              "(nonexistent_module:PLUGIN) failed to import: ModuleNotFoundError: "
                              "No module named 'nonexistent_module'; fix or reinstall")
    assert not (workdir / "runs").exists()


def test_schema_survives_a_broken_plugin_but_refuses_to_show_it(capsys, isolated_registry):
    registry.register_algorithm("broken", "nonexistent_module:PLUGIN")
    code, out, err = rlcore(capsys, "schema")
    assert code == 0, err
    assert "algo:  # when algorithm: broken -- not shown: algorithm 'broken'" in out
    assert "algo:  # when algorithm: ppo\n" in out
    code, out, err = rlcore(capsys, "schema", "broken")
    assert code == 2
    assert out == ""  # no half-printed schema before the error
    assert "No module named 'nonexistent_module'" in err


# ---------------------------------------------------------------- env ids (row 8)


def test_validate_env_with_a_misspelled_id_gives_gymnasiums_suggestion(workdir, capsys,
                                                                       nothing_starts):
    text = edit(BASE, "  id: CartPole-v1", "  id: CartPol-v1")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert out == ""
    assert err == (f"error: {path}:{line_of(text, 'CartPol-v1')}: env.id 'CartPol-v1': "
                   "Environment `CartPol` doesn't exist. Did you mean: `CartPole`?\n")
    assert not (workdir / "runs").exists()


def test_the_env_error_class_is_incompatible_env(workdir, capsys, monkeypatch):
    seen = []
    original = cli._print_err
    monkeypatch.setattr(cli, "_print_err", lambda exc: (seen.append(exc), original(exc)))
    rlcore(capsys, "validate", write(workdir, BASE), "--set", "env.id=CartPol-v1")
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert isinstance(seen[0].__cause__, IncompatibleEnvError)


def test_run_with_a_misspelled_env_id_fails_before_any_run_folder(workdir, capsys, nothing_starts):
    root = workdir / "my_runs"
    path = write(workdir, BASE)
    code, out, err = rlcore(capsys, "run", path, "--set", "env.id=CartPol-v1",
                            "--set", f"logging.root={root}")
    assert code == 2
    assert err == ("error: --set env.id: env.id 'CartPol-v1': Environment `CartPol` doesn't exist. "
                   "Did you mean: `CartPole`?\n")
    assert not root.exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["exp.yaml"]


def test_run_with_a_wrong_action_space_fails_before_any_run_folder(workdir, capsys, nothing_starts):
    # tabular methods need a discrete action space (pg and ppo also take Box ones)
    text = "algorithm: tabular\nseed: 0\nenv:\n  id: Pendulum-v1\n  num_envs: 4\n"
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err.startswith(f"error: {path}:{line_of(text, 'Pendulum')}: tabular needs a discrete "
                          "action space; 'Pendulum-v1' has Box(")
    assert "another algorithm" in err
    assert not (workdir / "runs").exists()


# ---------------------------------------------------------------- run folders (row 23)


def test_run_refuses_an_existing_non_empty_run_dir_and_leaves_it_untouched(workdir, capsys,
                                                                           nothing_starts):
    old = workdir / "old_run"
    (old / "checkpoints").mkdir(parents=True)
    (old / "config.yaml").write_text("algorithm: ppo\n")
    (old / "checkpoints" / "000100.pt").write_bytes(b"\x00weights")
    before = snapshot(old)
    code, out, err = rlcore(capsys, "run", write(workdir, BASE), "--run-dir", str(old))
    assert code == 2
    assert err == (f"error: --run-dir {old}: exists and is not empty; rlcore never overwrites a "
                   f"run. Choose a new folder, or continue it: rlcore resume {old}\n")
    assert snapshot(old) == before


def test_run_refuses_a_run_dir_that_is_a_file(workdir, capsys, nothing_starts):
    target = workdir / "notes.txt"
    target.write_text("keep me")
    code, _, err = rlcore(capsys, "run", write(workdir, BASE), "--run-dir", str(target))
    assert code == 2
    assert err == f"error: --run-dir {target}: exists and is not a folder; give a new folder\n"
    assert target.read_text() == "keep me"


def test_run_refuses_an_uncreatable_logging_root_before_building_anything(workdir, capsys,
                                                                         monkeypatch):
    def no_trainer(*args, **kwargs):
        raise AssertionError("the run folder must be checked before the trainer is built")

    monkeypatch.setattr(loops, "Run", no_trainer)
    (workdir / "afile").write_text("")
    code, _, err = rlcore(capsys, "run", write(workdir, BASE), "--set", "logging.root=afile/runs")
    assert code == 2
    assert err.startswith("error: cannot create the run folder afile/runs/ppo_CartPole-v1_s0_")
    assert err.endswith(f": {workdir / 'afile'} is not a folder; choose another with logging.root "
                        "(--set logging.root)\n")


def test_run_with_a_bad_config_creates_no_run_folder(workdir, capsys, nothing_starts):
    text = edit(BASE, "  gamma: 0.98", "  gamma: 1.5")
    code, _, err = rlcore(capsys, "run", write(workdir, text))
    assert code == 2
    assert "algo.gamma must be in [0, 1] (got 1.5)" in err
    assert sorted(p.name for p in workdir.iterdir()) == ["exp.yaml"]


# ---------------------------------------------------------------- schema


def test_schema_prints_every_key_with_a_description(capsys):
    code, out, err = rlcore(capsys, "schema")
    assert code == 0, err
    described = {}
    for line in out.splitlines():
        if line.startswith("  "):
            key = line.split(":")[0].strip()
            described.setdefault(key, []).append(line.partition("  # ")[2].strip())
    expected = {key for key, _ in leaf_keys(ExperimentConfig)}
    for name in registry.algorithm_names():
        assert f"algo:  # when algorithm: {name}\n" in out
        algo = registry.get_algorithm(name).config_cls
        expected |= {key for key, _ in leaf_keys(algo, "algo.")}
    assert expected <= set(described)
    undocumented = sorted(k for k, docs in described.items() if not all(docs))
    assert undocumented == []


def test_schema_of_one_algorithm(capsys):
    code, out, _ = rlcore(capsys, "schema", "ppo")
    assert code == 0
    assert "  algo.clip_coef: float = 0.2  in (0, 1)  # ratio clip epsilon" in out
    assert "when algorithm: pg" not in out
    code, out, err = rlcore(capsys, "schema", "PP0")
    assert code == 2 and out == ""
    assert err == ("error: unknown algorithm 'PP0'; did you mean 'ppo'? installed: "
                   f"{', '.join(registry.algorithm_names())}\n")


# ---------------------------------------------------------------- the real command


def test_console_command_exits_2_without_a_traceback(tmp_path):
    path = write(tmp_path, edit(BASE, "  clip_coef: 0.2", "  clip_coeff: 0.2"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "rlcore.cli", "validate", path],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "unknown key 'algo.clip_coeff' for ppo; did you mean 'clip_coef'?" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_list_shows_a_broken_env_plugin(capsys, isolated_registry):
    registry.register_env_plugin("brokenenv", "nonexistent_env_module:PLUGIN")
    code, out, err = rlcore(capsys, "list")
    assert code == 0, err
    assert ("  brokenenv    BROKEN (nonexistent_env_module:PLUGIN): ModuleNotFoundError: "
            "No module named 'nonexistent_env_module'\n") in out


@pytest.mark.parametrize("command", sorted(cli.EXAMPLES))
def test_every_help_ends_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "\nexamples:\n" in out
    assert all(f"  {example}" in out for example in cli.EXAMPLES[command])


def test_debug_is_accepted_after_the_command_too(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert cli.main(["validate", str(missing), "--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith(
        f"error: {missing}: cannot read the experiment file (No such file or directory)\n")
    assert cli.main(["validate", str(missing)]) == 2  # without it: the message alone
    assert "Traceback" not in capsys.readouterr().err
