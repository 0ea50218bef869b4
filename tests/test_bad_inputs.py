"""BAD_INPUTS.md rows 9, 11, 25 and safe YAML: refused on the driver before anything starts, with
what, where and the fix, exit code 2. (Rows 1-8, 10, 14-16, 21-23: test_cli.py, test_config.py,
test_runs.py; 12, 13, 15, 24: test_faults.py; 17: test_cluster.py; 18, 19: test_ray_faults.py;
20: test_runs.py and test_ray_faults.py.)"""

import sys

import pytest

from rlcore import cli
from rlcore.errors import IncompatibleEnvError

from experiment_text import BASE, line_of
from test_cli import edit, nothing_starts, rlcore, snapshot, workdir, write  # noqa: F401


def errors_seen(monkeypatch) -> list:
    seen = []
    original = cli._print_err
    monkeypatch.setattr(cli, "_print_err", lambda exc: (seen.append(exc), original(exc)))
    return seen


# ---------------------------------------------------------------- row 9: env package missing


def test_atari_id_without_ale_py_says_which_extra(workdir, capsys, nothing_starts, monkeypatch):
    from gymnasium.envs import registration

    monkeypatch.setitem(sys.modules, "ale_py", None)  # as if ale-py were not installed
    # ... and had never been: an earlier test in this process may have registered ALE/ ids
    monkeypatch.setattr(registration, "registry", {k: v for k, v in registration.registry.items()
                                                   if not k.startswith("ALE/")})
    seen = errors_seen(monkeypatch)
    text = edit(BASE, "  id: CartPole-v1", "  id: ALE/Pong-v5")
    path = write(workdir, text)
    before = snapshot(workdir)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err == (f"error: {path}:{line_of(text, 'ALE/Pong')}: env.id 'ALE/Pong-v5': Namespace ALE "
                   "not found. Have you installed the proper package for ALE? (install the Atari "
                   "extra: pip install 'rlcore[atari]')\n")
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert snapshot(workdir) == before  # no run folder


def test_rlcore_atari_id_without_ale_py_names_the_extra(workdir, capsys, nothing_starts,
                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)
    seen = errors_seen(monkeypatch)
    path = write(workdir, edit(BASE, "  id: CartPole-v1", "  id: rlcore/Pong-v5"))
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err == (f"error: {path}:4: env 'rlcore/Pong-v5' needs a package that is missing "
                   "(import of ale_py halted; None in sys.modules); install the Atari extra: "
                   "pip install 'rlcore[atari]'\n")
    assert [type(e) for e in seen] == [IncompatibleEnvError]


def test_mujoco_id_without_mujoco_names_the_extra(workdir, capsys, nothing_starts, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)
    seen = errors_seen(monkeypatch)
    text = edit(BASE, "  id: CartPole-v1", "  id: rlcore/HalfCheetah-v5")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err == (f"error: {path}:4: env 'rlcore/HalfCheetah-v5' needs a package that is missing "
                   "(import of mujoco halted; None in sys.modules); install the MuJoCo extra: "
                   "pip install 'rlcore[mujoco]'\n")
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert not (workdir / "runs").exists()


# ---------------------------------------------------------------- row 11: env breaks the API


def test_wrong_observation_shape_and_dtype_are_refused_with_expected_vs_actual(
        workdir, capsys, nothing_starts, monkeypatch):
    seen = errors_seen(monkeypatch)
    text = edit(BASE, "  id: CartPole-v1", "  id: fault_envs:rlcore-test/WrongShape-v0")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err.startswith(f"error: {path}:{line_of(text, 'WrongShape')}: env "
                          "'fault_envs:rlcore-test/WrongShape-v0': reset() returned an observation "
                          "of shape (3,) and dtype float64; its observation_space is Box(")
    assert "(4,), float32)" in err
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert not (workdir / "runs").exists()


def test_old_gym_four_tuple_step_is_refused_with_the_fix(workdir, capsys, nothing_starts,
                                                        monkeypatch):
    seen = errors_seen(monkeypatch)
    text = edit(BASE, "  id: CartPole-v1", "  id: fault_envs:rlcore-test/OldGymApi-v0")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err == (f"error: {path}:{line_of(text, 'OldGymApi')}: env "
                   "'fault_envs:rlcore-test/OldGymApi-v0' does not follow the Gymnasium API "
                   "(ValueError: not enough values to unpack (expected 5, got 4)); rlcore needs "
                   "reset() -> (obs, info) and step() -> (obs, reward, terminated, truncated, "
                   "info). Wrap old gym envs with gymnasium's compatibility wrapper (shimmy) or "
                   "port them\n")
    assert [type(e) for e in seen] == [IncompatibleEnvError]


# ---------------------------------------------------------------- safe YAML (security)


@pytest.mark.parametrize("tagged", [
    '  id: !!python/object/apply:os.system ["touch PWNED"]',
    "  id: !!python/name:os.system",
])
def test_python_tags_are_refused_and_never_run(workdir, capsys, nothing_starts, tagged):
    text = edit(BASE, "  id: CartPole-v1", tagged)
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err.startswith(f"error: {path}:{line_of(text, '!!python')}:7: could not determine a "
                          "constructor for the tag 'tag:yaml.org,2002:python/")
    assert err.endswith("experiment files are plain data (safe YAML): remove the tag and write "
                        "the value\n")
    assert not (workdir / "PWNED").exists() and not (workdir / "runs").exists()


# ---------------------------------------------------------------- row 25: self-play game unfit


def test_self_play_game_without_an_action_mask_is_refused_at_startup(workdir, capsys,
                                                                     nothing_starts, monkeypatch):
    seen = errors_seen(monkeypatch)
    text = ("algorithm: alphazero\nenv:\n  id: rlcore/PettingZooGame-v0\n  kwargs:\n"
            "    game: pettingzoo:maskless_game\n")
    path = write(workdir, text)
    before = snapshot(workdir)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err.startswith(f"error: {path}:")
    assert "maskless_game: observations carry no action_mask; search needs the legal moves" in err
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert snapshot(workdir) == before  # no run folder, nothing written
