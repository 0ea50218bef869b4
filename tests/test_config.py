"""User-input errors in experiment files and --set overrides (BAD_INPUTS.md rows 1-7).

Every test checks the exception class and the message: what was wrong, where (file:line, key)
and the fix or did-you-mean suggestion. Lines are computed from the text, never hard-coded."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest

from rlcore import registry
from rlcore.config import ExperimentConfig, load_experiment, schema_lines
from rlcore.config.yamlio import apply_override, parse_yaml
from rlcore.errors import ConfigError, RLCoreError

from experiment_text import BASE, leaf_keys  # noqa: E402


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line of ``text`` that contains ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in the test's own YAML"
    return hits[nth - 1]


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base file"
    return text.replace(old, new)


def problems_of(path: Path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_experiment(path, overrides)
    assert isinstance(info.value, RLCoreError) and info.value.exit_code == 2
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(path: Path, overrides=()) -> str:
    problems = problems_of(path, overrides)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.fixture
def isolated_registry(monkeypatch):
    """register_algorithm() calls in a test are forgotten afterwards."""
    monkeypatch.setattr(registry, "_extra", copy.deepcopy(registry._extra))
    monkeypatch.setattr(registry, "_cache", dict(registry._cache))


# ---------------------------------------------------------------- the base file is valid


def test_base_experiment_is_valid(tmp_path):
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.plugin.name == "ppo"
    assert exp.config.env.id == "CartPole-v1"
    assert exp.algo.clip_coef == 0.2
    assert exp.where("algo", "clip_coef") == f"{tmp_path / 'exp.yaml'}:{line_of(BASE, 'clip_coef')}"


# ---------------------------------------------------------------- 1. malformed YAML


@pytest.mark.parametrize("text, needle, col, what, fix", [
    ("algorithm: ppo\nenv:\n  id: CartPole-v1\n   num_envs: 4\n", "num_envs", 12,
     "mapping values are not allowed here", "indentation"),
    ("algorithm: ppo\nenv: {id: CartPole-v1, num_envs: 4\nrollout:\n  num_actors: 0\n", "rollout",
     8, "expected ',' or '}', but got ':'", "flow mapping started at line 2, column 6"),
    ("algorithm: ppo\nenv:\n\tid: CartPole-v1\n", "\tid", 1,
     "found character '\\t' that cannot start any token", "indent with spaces"),
    ("algorithm: ppo\nenv:\n  id: CartPole-v1\n  \tnum_envs: 4\n", "\tnum_envs", 3,
     "found character '\\t' that cannot start any token", "indent with spaces"),
    ("algorithm: ppo\nenv:\n  id: \"CartPole-v1\n", None, 1,
     "found unexpected end of stream", "close the quote"),
], ids=["bad-indent", "unclosed-bracket", "tab-indent", "tab-in-nested-indent", "unclosed-quote"])
def test_malformed_yaml_reports_file_line_column_and_fix(tmp_path, text, needle, col, what, fix):
    path = write(tmp_path, text)
    line = line_of(text, needle) if needle else len(text.splitlines()) + 1
    problem = only_problem(path)
    assert problem.startswith(f"{path}:{line}:{col}: {what}"), problem
    assert fix in problem
    assert "\n" not in problem  # one line per problem, not PyYAML's multi-line dump


def test_control_character_is_located_not_a_traceback(tmp_path):
    text = "algorithm: ppo\nenv:\n  id: CartPole-v1\n  \x01\n"
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}:4:3: unacceptable character #x0001"), problem
    assert "delete it" in problem


def test_binary_file_is_refused_with_a_fix(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    problem = only_problem(path)
    assert problem.startswith(f"{path}: not UTF-8 text (byte 0xff at offset 0)"), problem
    assert "Save it as UTF-8" in problem


def test_missing_file_and_folder_are_config_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert only_problem(missing) == (
        f"{missing}: cannot read the experiment file (No such file or directory)")
    assert only_problem(tmp_path) == f"{tmp_path}: cannot read the experiment file (Is a directory)"


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- algorithm: ppo\n- env: CartPole-v1\n")
    assert only_problem(path) == (f"{path}:1: expected a mapping of sections (algorithm:, env:, "
                                  "...), got a list")


def test_empty_file_names_the_required_keys(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    problems = problems_of(path)
    assert f"{path}: missing required key 'algorithm'" in problems
    assert f"{path}: missing required key 'env'" in problems


def test_empty_section_means_defaults_and_missing_env_id_is_located(tmp_path):
    text = "algorithm: ppo\nenv:\n  num_envs: 2\nlearner:\nalgo:\n"
    path = write(tmp_path, text)
    assert only_problem(path) == f"{path}:2: missing required key 'env.id'"
    exp = load_experiment(write(tmp_path, text.replace("  num_envs: 2", "  id: CartPole-v1")))
    assert exp.config.learner.lr == ExperimentConfig.model_fields["learner"].default_factory().lr
    assert exp.algo.gamma == 0.99


# ---------------------------------------------------------------- 2. numbers are numbers


@pytest.mark.parametrize("spelling, value", [
    ("3e-4", 3e-4), ("3E-4", 3e-4), ("+3e-4", 3e-4), ("3.0e-4", 3e-4), (".3e-3", 3e-4),
    ("3.e-4", 3e-4), ("1e-3", 1e-3), ("0.0003", 3e-4),
])
def test_exponent_floats_are_read_as_floats_by_the_yaml_reader(spelling, value):
    data, _ = parse_yaml(f"learner:\n  lr: {spelling}\n", "x.yaml")
    assert type(data["learner"]["lr"]) is float
    assert math.isclose(data["learner"]["lr"], value)


def test_lr_and_num_env_steps_in_exponent_form_are_numbers(tmp_path):
    text = edit(BASE, "lr: 1.0e-3", "lr: 3e-4")
    text = edit(text, "num_env_steps: 100000", "num_env_steps: 1e6")
    exp = load_experiment(write(tmp_path, text))
    assert type(exp.config.learner.lr) is float and exp.config.learner.lr == 3e-4
    assert type(exp.config.stop.num_env_steps) is int
    assert exp.config.stop.num_env_steps == 1_000_000
    assert exp.resolved()["stop"]["num_env_steps"] == 1_000_000


def test_non_integral_float_for_an_integer_key_is_refused(tmp_path):
    text = edit(BASE, "num_env_steps: 100000", "num_env_steps: 1.5e0")
    path = write(tmp_path, text)
    assert only_problem(path) == (f"{path}:{line_of(text, 'num_env_steps')}: stop.num_env_steps: "
                                  "expected an integer, got 1.5")


def test_nan_and_inf_are_refused(tmp_path):
    text = edit(BASE, "eval_return: 500 ", "eval_return: .nan ")
    text = edit(text, "  max_grad_norm: 0.5", "  max_grad_norm: .inf")
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert problems == [
        f"{path}:{line_of(text, 'max_grad_norm')}: learner.max_grad_norm: expected a finite number, "
        "got inf",
        f"{path}:{line_of(text, 'eval_return')}: stop.eval_return: expected a finite number, got nan",
    ]


# ---------------------------------------------------------------- 3-4. algorithm names


def test_unknown_algorithm_suggests_the_close_name_and_lists_installed(tmp_path):
    text = edit(BASE, "algorithm: ppo", "algorithm: PP0")
    path = write(tmp_path, text)
    installed = ", ".join(registry.algorithm_names())
    assert "pg" in installed and "ppo" in installed
    assert only_problem(path) == (f"{path}:{line_of(text, 'algorithm:')}: unknown algorithm 'PP0'; "
                                  f"did you mean 'ppo'? installed: {installed}")


def test_unknown_algorithm_without_a_close_name_lists_installed(tmp_path):
    path = write(tmp_path, edit(BASE, "algorithm: ppo", "algorithm: xyzzy"))
    problem = only_problem(path)
    assert problem.startswith(f"{path}:")
    assert "unknown algorithm 'xyzzy'; installed: " in problem
    assert "did you mean" not in problem
    assert "'module:ATTR'" in problem


def test_selecting_a_plugin_whose_import_fails_shows_the_import_error(tmp_path, isolated_registry):
    registry.register_algorithm("broken", "nonexistent_module:PLUGIN")
    text = edit(BASE, "algorithm: ppo", "algorithm: broken")
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(
        f"{path}:{line_of(text, 'algorithm:')}: algorithm 'broken' (nonexistent_module:PLUGIN) "
        "failed to import: ModuleNotFoundError: No module named 'nonexistent_module'"), problem
    assert "unknown algorithm" not in problem  # broken is not the same as unknown
    assert "rlcore list" in problem


def test_a_target_that_is_not_a_plugin_is_refused(tmp_path, isolated_registry):
    registry.register_algorithm("notaplugin", "os:path")
    path = write(tmp_path, edit(BASE, "algorithm: ppo", "algorithm: notaplugin"))
    assert "(os:path) is a module, not an rlcore.plugin.AlgorithmPlugin" in only_problem(path)


# ---------------------------------------------------------------- 5. unknown keys


def test_typo_in_algo_key_suggests_the_right_key_with_its_line(tmp_path):
    text = edit(BASE, "  clip_coef: 0.2", "  clip_coeff: 0.2")
    path = write(tmp_path, text)
    assert only_problem(path) == (f"{path}:{line_of(text, 'clip_coeff')}: unknown key "
                                  "'algo.clip_coeff' for ppo; did you mean 'clip_coef'?")


@pytest.mark.parametrize("old, new, needle, expected", [
    ("  lr_schedule: linear", "  lr_shedule: linear", "lr_shedule",
     "unknown key 'learner.lr_shedule'; did you mean 'lr_schedule'?"),
    ("checkpoint:\n", "checkpoints:\n", "checkpoints:",
     "unknown key 'checkpoints'; did you mean 'checkpoint'?"),
    ("  gamma: 0.98", "  discount: 0.98", "discount",
     "unknown key 'algo.discount' for ppo; known keys: gamma, gae_lambda,"),
])
def test_unknown_core_keys_suggest_or_list_known_keys(tmp_path, old, new, needle, expected):
    text = edit(BASE, old, new)
    path = write(tmp_path, text)
    assert only_problem(path).startswith(f"{path}:{line_of(text, needle)}: {expected}")


def test_a_key_in_the_wrong_section_names_its_section(tmp_path):
    text = edit(BASE, "  gamma: 0.98\n", "")
    text = edit(text, "  lr: 1.0e-3\n", "  lr: 1.0e-3\n  gamma: 0.98\n")
    text = edit(text, "  ent_coef: 0.0\n", "  ent_coef: 0.0\n  adam_eps: 1e-5\n")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'gamma')}: unknown key 'learner.gamma'; did you mean 'algo.gamma'?",
        f"{path}:{line_of(text, 'adam_eps')}: unknown key 'algo.adam_eps' for ppo; "
        "did you mean 'learner.adam_eps'?",
    ]


# ---------------------------------------------------------------- 6. wrong types


@pytest.mark.parametrize("old, new, needle, expected", [
    ("  num_actors: 2", "  num_actors: four", "num_actors",
     "rollout.num_actors: expected an integer, got 'four'"),
    ("  gamma: 0.98", "  gamma: [0.99]", "gamma", "algo.gamma: expected a number, got [0.99]"),
    ("  lr_schedule: linear", "  lr_schedule: cosine", "lr_schedule",
     "learner.lr_schedule: must be 'constant' or 'linear' (got 'cosine')"),
    ("  num_envs: 8 ", "  num_envs: yes ", "num_envs", "env.num_envs: expected an integer, got 'yes'"),
    ("  lr: 1.0e-3", "  lr: true", "lr:", "learner.lr: expected a number, got True"),
    ("  every_env_steps: 5000\n", "  every_env_steps: {n: 5}\n", "every_env_steps: {",
     "eval.every_env_steps: expected an integer, got {'n': 5}"),
    ("env:\n  id: CartPole-v1\n  num_envs: 8            # in all, split over the actors (4 each with 2; 8 inline)\n",
     "env: CartPole-v1\n", "env:", "env: expected a mapping, got 'CartPole-v1'"),
])
def test_wrong_types_name_key_expected_type_and_value(tmp_path, old, new, needle, expected):
    text = edit(BASE, old, new)
    path = write(tmp_path, text)
    assert only_problem(path) == f"{path}:{line_of(text, needle)}: {expected}"


# ---------------------------------------------------------------- 7. ranges


@pytest.mark.parametrize("old, new, needle, expected", [
    ("  lr: 1.0e-3", "  lr: -1e-3", "lr:", "learner.lr must be in (0, 1] (got -0.001)"),
    ("  gamma: 0.98", "  gamma: 1.5", "gamma", "algo.gamma must be in [0, 1] (got 1.5)"),
    ("  clip_coef: 0.2", "  clip_coef: -0.2", "clip_coef", "algo.clip_coef must be in (0, 1) (got -0.2)"),
    ("  num_envs: 8 ", "  num_envs: 0 ", "num_envs", "env.num_envs must be in [1, 4096] (got 0)"),
    ("  max_grad_norm: 0.5", "  max_grad_norm: 0", "max_grad_norm",
     "learner.max_grad_norm must be > 0 (got 0)"),
    # an item of a list names its index and the bound (a traceback from torch before)
    ("  ent_coef: 0.0", "  ent_coef: 0.0\n  hidden_sizes: [64, -1]", "hidden_sizes",
     "algo.hidden_sizes[1] must be >= 1 (got -1)"),
    ("  ent_coef: 0.0", "  ent_coef: 0.0\n  value_hidden_sizes: [0]", "value_hidden_sizes",
     "algo.value_hidden_sizes[0] must be >= 1 (got 0)"),
])
def test_out_of_range_values_quote_the_bounds_and_the_value(tmp_path, old, new, needle, expected):
    text = edit(BASE, old, new)
    path = write(tmp_path, text)
    assert only_problem(path) == f"{path}:{line_of(text, needle)}: {expected}"


def test_minibatch_larger_than_the_batch_quotes_both_values(tmp_path):
    text = edit(BASE, "  minibatch_size: 256", "  minibatch_size: 512")
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}:{line_of(text, 'minibatch_size')}: "
                              "learner.minibatch_size (512) is larger than the batch of one update")
    assert "env.num_envs=8 x rollout.fragment_length=32 = 256" in problem
    assert "lower it to at most 256" in problem


@pytest.mark.parametrize("num_actors", [0, 1, 2, 4, 8])
def test_placement_never_changes_the_batch_nor_fails_validation(tmp_path, num_actors):
    """The batch of one update is the experiment's (env.num_envs x rollout.fragment_length),
    however many actors step it: the README's small-machine switch (num_actors=0) validates."""
    exp = load_experiment("experiments/ppo_cartpole.yaml", [f"rollout.num_actors={num_actors}"])
    assert exp.config.batch_size == 8 * 32


def test_more_actors_than_sub_envs_is_refused_with_the_fix(tmp_path):
    problem = only_problem(write(tmp_path, BASE), ["rollout.num_actors=9"])
    assert problem == ("--set rollout.num_actors: rollout.num_actors (9) is more than env.num_envs "
                       "(8), the sub-environments split over the actors; each actor steps at "
                       "least one: raise env.num_envs or lower rollout.num_actors")


def test_cross_check_on_a_default_value_points_at_its_section_not_an_empty_line(tmp_path):
    text = "algorithm: ppo\nenv:\n  id: CartPole-v1\n  num_envs: 1\nrollout:\n  fragment_length: 16\n"
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}: learner.minibatch_size (256) is larger than the batch"), problem
    assert "::" not in problem


def test_gns_microbatches_larger_than_the_minibatch_quotes_both(tmp_path):
    text = edit(BASE, "  max_grad_norm: 0.5", "  max_grad_norm: 0.5\n  gns_microbatches: 300")
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem == (f"{path}:{line_of(text, 'gns_microbatches')}: learner.gns_microbatches (300) "
                       "is larger than the minibatch it splits (learner.minibatch_size=256: 256 "
                       "samples); lower it to at most 256")


def test_plugin_learner_defaults_are_cross_checked_too(tmp_path):
    # pg defaults minibatch_size to 0 (whole batch): a batch of 16 is then fine for pg ...
    text = "algorithm: pg\nenv:\n  id: CartPole-v1\n  num_envs: 1\nrollout:\n  fragment_length: 16\n"
    exp = load_experiment(write(tmp_path, text))
    assert exp.config.learner.minibatch_size == 0
    # ... but not for ppo, whose minibatch_size default (256) exceeds it.
    assert "learner.minibatch_size (256)" in only_problem(
        write(tmp_path, text.replace("pg", "ppo"), "ppo.yaml"))


# ---------------------------------------------------------------- all at once, duplicates


def test_every_problem_in_a_file_is_reported_at_once_in_line_order(tmp_path):
    text = edit(BASE, "  num_actors: 2", "  num_actors: four")
    text = edit(text, "  lr: 1.0e-3", "  lr: -1e-3")
    text = edit(text, "  gamma: 0.98", "  gamma: 1.5")
    text = edit(text, "  clip_coef: 0.2", "  clip_coeff: 0.2")
    text = edit(text, "algorithm: ppo", "algorithm: ppo\nseeed: 1")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'seeed')}: unknown key 'seeed'; did you mean 'seed'?",
        f"{path}:{line_of(text, 'num_actors')}: rollout.num_actors: expected an integer, got 'four'",
        f"{path}:{line_of(text, 'lr:')}: learner.lr must be in (0, 1] (got -0.001)",
        f"{path}:{line_of(text, 'gamma')}: algo.gamma must be in [0, 1] (got 1.5)",
        f"{path}:{line_of(text, 'clip_coeff')}: unknown key 'algo.clip_coeff' for ppo; "
        "did you mean 'clip_coef'?",
    ]


def test_duplicate_keys_are_errors_naming_both_lines(tmp_path):
    text = edit(BASE, "  clip_coef: 0.2", "  clip_coef: 0.2\n  gamma: 0.9")
    text = edit(text, "seed: 0", "seed: 0\nseed: 1")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'seed', 2)}: duplicate key 'seed' (first given at line "
        f"{line_of(text, 'seed')}); keep one",
        f"{path}:{line_of(text, 'gamma', 2)}: duplicate key 'algo.gamma' (first given at line "
        f"{line_of(text, 'gamma')}); keep one",
    ]
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        parse_yaml(text, str(path))


def test_duplicate_keys_do_not_hide_other_problems(tmp_path):
    text = edit(BASE, "  clip_coef: 0.2", "  clip_coef: -0.2\n  gamma: 0.9")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'clip_coef')}: algo.clip_coef must be in (0, 1) (got -0.2)",
        f"{path}:{line_of(text, 'gamma', 2)}: duplicate key 'algo.gamma' (first given at line "
        f"{line_of(text, 'gamma')}); keep one",
    ]


# ---------------------------------------------------------------- --set overrides


def test_overrides_apply_nested_keys_and_parse_numbers(tmp_path):
    path = write(tmp_path, BASE)
    exp = load_experiment(path, ["learner.lr=3e-4", "stop.num_env_steps=2e5", "algo.gamma=0.9",
                                 "env.kwargs.max_episode_steps=100", "algo.hidden_sizes=[32, 32]",
                                 "eval.deterministic=false", "stop.eval_return=null"])
    cfg = exp.config
    assert type(cfg.learner.lr) is float and cfg.learner.lr == 3e-4
    assert type(cfg.stop.num_env_steps) is int and cfg.stop.num_env_steps == 200_000
    assert exp.algo.gamma == 0.9 and exp.algo.hidden_sizes == (32, 32)
    assert cfg.env.kwargs == {"max_episode_steps": 100}
    assert cfg.eval.deterministic is False and cfg.stop.eval_return is None
    assert cfg.learner.num_epochs == 20  # untouched keys keep the file's values
    assert exp.where("learner", "lr") == "--set learner.lr"


def test_override_creates_a_missing_section(tmp_path):
    path = write(tmp_path, "algorithm: ppo\nenv:\n  id: CartPole-v1\n")
    exp = load_experiment(path, ["algo.clip_coef=0.1", "rollout.num_actors=0"])
    assert exp.algo.clip_coef == 0.1 and exp.config.rollout.num_actors == 0


def test_an_invalid_override_is_reported_at_the_override_not_the_file_line(tmp_path):
    path = write(tmp_path, BASE)
    assert only_problem(path, ["algo.gamma=1.5"]) == (
        "--set algo.gamma: algo.gamma must be in [0, 1] (got 1.5)")


@pytest.mark.parametrize("item, expected", [
    ("learner.lrr=1e-3", "--set learner.lrr: unknown key 'learner.lrr'; did you mean 'lr'?"),
    ("algo.clip_coeff=0.1",
     "--set algo.clip_coeff: unknown key 'algo.clip_coeff' for ppo; did you mean 'clip_coef'?"),
    ("lr=1e-3", "--set lr: unknown key 'lr'; did you mean 'learner.lr'?"),
    ("env.id.name=x", "--set env.id.name=x: 'env.id' is 'CartPole-v1', not a section; "
                      "set it directly: --set env.id=VALUE"),
    ("learner.lr", "--set learner.lr: expected key.path=value, e.g. --set learner.lr=1e-3"),
    ("learner..lr=1", "--set learner..lr=1: expected key.path=value, e.g. --set learner.lr=1e-3"),
    ("=3", "--set =3: expected key.path=value, e.g. --set learner.lr=1e-3"),
    ("algo.hidden_sizes=[64, 64", "--set algo.hidden_sizes=[64, 64: cannot parse '[64, 64' as a "
                                  "YAML value (expected ',' or ']', but got '<stream end>')"),
    ("rollout.num_actors=four", "--set rollout.num_actors: rollout.num_actors: expected an "
                                "integer, got 'four'"),
])
def test_bad_overrides_name_the_override_and_the_fix(tmp_path, item, expected):
    path = write(tmp_path, BASE)
    problem = only_problem(path, [item])
    assert problem.startswith(expected), problem
    assert "\n" not in problem


def test_every_bad_override_is_reported_with_the_file_problems(tmp_path):
    text = edit(BASE, "  gamma: 0.98", "  gamma: 1.5")
    path = write(tmp_path, text)
    problems = problems_of(path, ["learner.lrr=1", "seed=-1", "nokey"])
    assert problems == [
        f"{path}:{line_of(text, 'gamma')}: algo.gamma must be in [0, 1] (got 1.5)",
        "--set nokey: expected key.path=value, e.g. --set learner.lr=1e-3",
        "--set seed: seed must be in [0, 2147483647] (got -1)",
        "--set learner.lrr: unknown key 'learner.lrr'; did you mean 'lr'?",
    ]


def test_data_argument_is_not_mutated_by_overrides():
    data = {"algorithm": "ppo", "env": {"id": "CartPole-v1"}}
    before = copy.deepcopy(data)
    exp = load_experiment(data=data, overrides=["env.num_envs=2", "learner.lr=1e-3"])
    assert exp.config.env.num_envs == 2 and data == before


def test_apply_override_refuses_a_path_through_a_value():
    data = {"env": {"id": "CartPole-v1"}}
    with pytest.raises(ConfigError, match=re.escape("'env.id' is 'CartPole-v1', not a section")):
        apply_override(data, {}, "env.id.x=1")
    assert data == {"env": {"id": "CartPole-v1"}}


# ---------------------------------------------------------------- schema


def test_schema_lines_show_literal_choices_bounds_and_defaults():
    lines = schema_lines()
    by_key = {line.split(":")[0].strip(): line for line in lines if line.startswith("  ")}
    assert by_key["learner.device"] == ("  learner.device: 'auto' | 'cpu' | 'cuda' = 'auto'  "
                                        "# auto picks cuda if present")
    assert by_key["learner.lr"] == "  learner.lr: float = 0.0003  in (0, 1]  # Adam learning rate"
    assert by_key["env.id"].startswith("  env.id: str = 'required'  # ")
    assert set(by_key) == {key for key, _ in leaf_keys(ExperimentConfig)}


# ---------------------------------------------------------------- environment plugins


def test_a_broken_env_plugin_does_not_block_ids_another_plugin_registers(isolated_registry):
    pytest.importorskip("ale_py")
    registry.register_env_plugin("brokenenv", "nonexistent_env_module:PLUGIN")
    registry.ensure_env_registered("rlcore/Pong-v5")  # registered by the atari plugin


def test_an_rlcore_id_nobody_registers_names_the_broken_env_plugin(isolated_registry):
    import gymnasium as gym

    registry.register_env_plugin("brokenenv", "nonexistent_env_module:PLUGIN")
    assert "rlcore/Nope-v0" not in gym.registry
    with pytest.raises(registry.RegistryError) as info:
        registry.ensure_env_registered("rlcore/Nope-v0")
    assert str(info.value) == (
        "env.id 'rlcore/Nope-v0': environment plugin 'brokenenv' (nonexistent_env_module:PLUGIN) "
        "failed to load (ModuleNotFoundError: No module named 'nonexistent_env_module'); fix or "
        "reinstall the package that provides it, or uninstall it")


@pytest.mark.parametrize("text, expected", [
    # The algorithm is unknown: its algo: keys and learner defaults cannot be checked, and are not.
    ("algorithm: ppoo\nenv:\n  id: CartPole-v1\nalgo:\n  clip_coef: 0.2\nlearner:\n"
     "  minibatch_size: 64\n", ":1: unknown algorithm 'ppoo'; did you mean 'ppo'"),
    # num_envs is not a number: nothing derived from it (batch, split over actors) is reported.
    ("algorithm: ppo\nenv:\n  id: CartPole-v1\n  num_envs: x\nrollout:\n  num_actors: 3\n"
     "  fragment_length: 32\nlearner:\n  minibatch_size: 64\n",
     ":4: env.num_envs: expected an integer, got 'x'"),
    # algo.batch_size is not a number: the replay checks that use it stay silent.
    ("algorithm: dqn\nenv:\n  id: CartPole-v1\nalgo:\n  batch_size: x\n  learning_starts: 10\n",
     ":5: algo.batch_size: expected an integer, got 'x'"),
])
def test_problems_that_only_follow_from_a_fatal_one_are_not_reported(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert only_problem(path).startswith(f"{path}{expected}")


def test_a_section_validator_says_its_message_alone(tmp_path):
    text = "algorithm: dqn\nenv:\n  id: CartPole-v1\nalgo:\n  double_q: true\n  soft_beta: 2.0\n"
    path = write(tmp_path, text)
    assert only_problem(path) == (f"{path}:4: algo.soft_beta: the soft target averages over every "
                                  "next action, so double_q's argmax has nothing to pick; set "
                                  "double_q: false")
