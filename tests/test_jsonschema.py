"""`rlcore schema --json`: a JSON Schema for editors that accepts every experiment file in the
repo and refuses what rlcore refuses (unknown keys in the core sections and in the algorithm's
own section, wrong types and bounds)."""

import json
from pathlib import Path

import jsonschema
import pytest

from rlcore.cli import main
from rlcore.config.yamlio import parse_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def validator():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema", "--json"]) == 0
    schema = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator, text: str) -> list[str]:
    data, _ = parse_yaml(text, "x.yaml")
    # a value that may also be a sweep fails an anyOf: its own error is among the context's
    return [f"{'.'.join(map(str, err.absolute_path))}: {err.message}"
            for e in validator.iter_errors(data) for err in [e, *e.context]]


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("**/*.yaml")),
                         ids=lambda p: str(p.relative_to(ROOT / "experiments")))
def test_every_experiment_file_validates(validator, path):
    assert errors(validator, path.read_text()) == []


@pytest.mark.parametrize("text, where, what", [
    ("algorithm: ppo\nenv: {id: CartPole-v1}\nlearner: {lrr: 0.001}\n", "learner",
     "'lrr' was unexpected"),
    ("algorithm: ppo\nenv: {id: CartPole-v1}\nalgo: {clip_coeff: 0.2}\n", "algo",
     "'clip_coeff' was unexpected"),
    ("algorithm: dqn\nenv: {id: CartPole-v1}\nalgo: {batch_size: many}\n", "algo.batch_size",
     "'many' is not of type 'integer'"),
    ("algorithm: ppo\nenv: {id: CartPole-v1}\nrollout: {num_actors: -1}\n",
     "rollout.num_actors", "-1 is less than the minimum of 0"),
    ("algorithm: ppo\n", "", "'env' is a required property"),
    # sweep files: a sweep value is checked for its form, the keys around it as before
    ("algorithm: ppo\nseeds: 0-4\nenv: {id: CartPole-v1}\nlearner: {lrr: {grid_search: [1]}}\n",
     "learner", "'lrr' was unexpected"),
    ("algorithm: ppo\nenv: {id: CartPole-v1}\nlearner: {lr: {grid_serch: [1.0e-3]}}\n",
     "learner.lr", "is not valid under any of the given schemas"),
    ("algorithm: ppo\nenv: {id: CartPole-v1}\nlearner: {lr: {uniform: [1.0e-3]}}\n",
     "learner.lr", "is not valid under any of the given schemas"),
])
def test_typos_and_bad_values_are_refused(validator, text, where, what):
    found = errors(validator, text)
    assert any(e.startswith(f"{where}: ") and what in e for e in found), found


def test_one_algorithm_schema_knows_only_its_section(capsys):
    assert main(["schema", "--json", "sac"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert [b["if"]["properties"]["algorithm"]["const"] for b in schema["allOf"]] == ["sac"]
    assert "target_entropy" in schema["allOf"][0]["then"]["properties"]["algo"]["properties"]
