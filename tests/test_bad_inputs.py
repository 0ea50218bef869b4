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
    import maskless_game

    # PettingZoo-shaped but without a mask; env.kwargs may only name modules under pettingzoo.
    monkeypatch.setitem(sys.modules, "pettingzoo.rlcore_test_maskless", maskless_game)
    text = ("algorithm: alphazero\nenv:\n  id: rlcore/PettingZooGame-v0\n  kwargs:\n"
            "    game: pettingzoo:pettingzoo.rlcore_test_maskless\n")
    path = write(workdir, text)
    before = snapshot(workdir)
    code, out, err = rlcore(capsys, "run", path)
    assert code == 2
    assert err.startswith(f"error: {path}:")
    assert "rlcore_test_maskless: observations carry no action_mask; search needs the legal moves" in err
    assert [type(e) for e in seen] == [IncompatibleEnvError]
    assert snapshot(workdir) == before  # no run folder, nothing written


@pytest.mark.parametrize("game", ["pettingzoo:pwned_game", "pettingzoo:pettingzoo_evil.x",
                                  "pettingzoo:pettingzoo..classic", "pettingzoo:os"])
def test_a_kwargs_value_never_becomes_an_import_path(workdir, capsys, nothing_starts,
                                                     monkeypatch, game):
    # A module that would leave a mark if it were ever imported.
    (workdir / "pwned_game.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('PWNED').write_text('x')\n")
    monkeypatch.syspath_prepend(str(workdir))
    text = ("algorithm: alphazero\nenv:\n  id: rlcore/PettingZooGame-v0\n  kwargs:\n"
            f"    game: \"{game}\"\n")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert f"game '{game}' names a module outside PettingZoo; env.kwargs are data" in err
    assert "an env plugin whose make_game builds it" in err
    assert not (workdir / "PWNED").exists() and "pwned_game" not in sys.modules


# ---------------------------------------------------------------- bounded YAML (hostile files)


def _bomb(levels: int = 9) -> str:
    """A "billion laughs" document in env.kwargs: 9 aliases of 9 aliases ... (9**9 strings)."""
    lines = ['    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias_bomb": (BASE.replace("  id: CartPole-v1\n", "  id: CartPole-v1\n  kwargs:\n"
                                + _bomb()),
                   "the aliases up to here expand the document past 20,000 values (an alias "
                   "bomb?); write the values out, or alias fewer levels deep"),
    "deep_nesting": ("algorithm: ppo\nenv:\n  kwargs:\n    x: " + "[" * 20_000 + "]" * 20_000
                     + "\n", "nested more than 32 levels deep"),
    "huge_file": ("algorithm: ppo\nenv:\n  kwargs:\n    x: [" + "1, " * 9_000_000 + "1]\n",
                  "bytes; experiment files are read up to 262,144 bytes (is this the "
                  "experiment file?)"),
    "long_scalar": ('algorithm: ppo\nenv:\n  id: "' + "x" * 100_000 + '"\n',
                    "a value of 100,000 characters; values are read up to 10,000 characters"),
    "long_integer": ("seed: " + "9" * 5000 + "\nalgorithm: ppo\n",
                     "an integer of 5,000 digits; rlcore reads integers of up to 40 digits"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_yaml_is_refused_fast_and_small_before_expansion(workdir, capsys, nothing_starts,
                                                                 case):
    import time
    import tracemalloc

    from rlcore.config import load_experiment
    from rlcore.errors import ConfigError

    text, message = HOSTILE[case]
    path = write(workdir, text)
    # Time and memory in separate passes: tracing every allocation slows the scanner up to
    # tenfold (2.7 s instead of 0.2 s for the long scalar on a loaded 2-core machine).
    t0 = time.perf_counter()
    with pytest.raises(ConfigError):
        load_experiment(path)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(info.value.problems) == 1 and message in info.value.problems[0]
    assert info.value.problems[0].startswith(f"{path}:")
    # Bounds, not speed targets: unbounded, these took 20-400 s and gigabytes. The peak
    # includes the file's own text (27 MB for the huge file).
    assert seconds < 1.0 and peak < 200 * 2**20, (seconds, peak)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2 and err.startswith(f"error: {path}:") and message in err
    assert "Traceback" not in err and not (workdir / "runs").exists()


def test_hostile_values_in_set_overrides_are_refused_too(workdir, capsys, nothing_starts):
    path = write(workdir, BASE)
    code, out, err = rlcore(capsys, "validate", path, "--set", "seed=" + "7" * 500)
    assert code == 2
    assert err == (f"error: --set seed={'7' * 500}: an integer of 500 digits; rlcore reads "
                   "integers of up to 40 digits\n")
    code, out, err = rlcore(capsys, "validate", path, "--set", "env.kwargs=" + "[" * 100
                            + "]" * 100)
    assert code == 2 and "nested more than 32 levels deep" in err


@pytest.mark.parametrize("spelling, value", [
    ("010", 10), ("0o10", 8), ("0x1F", 31), ("-0o7", "-0o7"), ("+12", 12), ("1e6", 1e6),
    ("on", "on"), ("yes", "yes"), ("Off", "Off"), ("TRUE", True), ("false", False),
    ("1_000", "1_000"), ("1:30", "1:30"), ("2001-12-14", "2001-12-14"), ("~", None),
    (".inf", float("inf")), ("-.Inf", float("-inf")),
])
def test_scalars_follow_the_yaml_1_2_core_schema(spelling, value):
    from rlcore.config.yamlio import parse_yaml

    data, _ = parse_yaml(f"x: {spelling}\n", "x.yaml")
    assert data["x"] == value and type(data["x"]) is type(value)


@pytest.mark.parametrize("tagged, tag", [("!!int abc", "int"), ("!!float abc", "float"),
                                         ("!!timestamp nope", "timestamp")])
def test_an_explicit_tag_that_cannot_be_built_is_a_located_error(workdir, capsys, nothing_starts,
                                                                 tagged, tag):
    text = edit(BASE, "  id: CartPole-v1", f"  id: {tagged}")
    path = write(workdir, text)
    code, out, err = rlcore(capsys, "validate", path)
    assert code == 2
    assert err == (f"error: {path}:{line_of(text, tagged)}:7: cannot read "
                   f"{tagged.split()[1]!r} as !!{tag}; remove the tag or write a valid {tag}\n")
