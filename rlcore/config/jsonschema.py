"""The experiment format as a JSON Schema (``rlcore schema --json [ALGO]``), for editors: the
YAML language server completes and checks experiment files against it (a modeline
``# yaml-language-server: $schema=rlcore-schema.json`` at the top of the file).

Built from the same pydantic models that validate experiments: the core sections from
``ExperimentConfig``, and each installed algorithm's ``algo:`` section from its plugin's
``config_cls``, selected by the value of ``algorithm`` (``if``/``then``). Unknown keys are
refused wherever rlcore refuses them. rlcore's own checks go further (cross-field rules, the
env's spaces); the schema is what an editor can know without running anything.
"""

from __future__ import annotations

import json

from rlcore.config.schema import ExperimentConfig

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _prefixed(schema: dict, prefix: str) -> tuple[dict, dict]:
    """(schema without its ``$defs``, those defs) with every definition renamed ``prefix`` +
    name, so the sections of different plugins cannot collide in the root's ``$defs``."""
    defs = schema.pop("$defs", {})
    text = json.dumps(schema).replace('"#/$defs/', f'"#/$defs/{prefix}')
    renamed = json.loads(json.dumps(defs).replace('"#/$defs/', f'"#/$defs/{prefix}'))
    return json.loads(text), {prefix + k: v for k, v in renamed.items()}


def experiment_json_schema(plugins: dict) -> dict:
    """The JSON Schema of an experiment file whose ``algorithm`` is one of ``plugins``
    ({name: AlgorithmPlugin}); ``algo:`` is checked against the named plugin's section."""
    root = ExperimentConfig.model_json_schema()
    root["$schema"] = DIALECT
    root["title"] = "rlcore experiment"
    root.setdefault("$defs", {})
    root["properties"]["algorithm"]["examples"] = sorted(plugins)
    branches = []
    for name, plugin in sorted(plugins.items()):
        algo, defs = _prefixed(plugin.config_cls.model_json_schema(), f"{name}__")
        root["$defs"].update(defs)
        algo["description"] = f"the algo: section of {name}"
        branches.append({"if": {"properties": {"algorithm": {"const": name}},
                                "required": ["algorithm"]},
                         "then": {"properties": {"algo": algo}}})
    if branches:
        root["allOf"] = branches
    return root
