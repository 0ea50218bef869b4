"""The experiment format as a JSON Schema (``rlcore schema --json [ALGO]``), for editors: the
YAML language server completes and checks experiment files against it (a modeline
``# yaml-language-server: $schema=rlcore-schema.json`` at the top of the file).

Built from the same pydantic models that validate experiments: the core sections from
``ExperimentConfig``, and each installed algorithm's ``algo:`` section from its plugin's
``config_cls``, selected by the value of ``algorithm`` (``if``/``then``). Unknown keys are
refused wherever rlcore refuses them. rlcore's own checks go further (cross-field rules, the
env's spaces); the schema is what an editor can know without running anything. A sweep file
(``rlcore sweep``) validates too: any value may be a sweep (``{grid_search: [...]}``,
``choice``, ``uniform``, ``loguniform``: ``rlcore.config.expand``) and ``seeds`` may be given.
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
    return _sweepable(root)


SWEEP = {"oneOf": [
    {"type": "object", "properties": {"grid_search": {"type": "array", "minItems": 1}},
     "required": ["grid_search"], "additionalProperties": False},
    {"type": "object", "properties": {"choice": {"type": "array", "minItems": 1}},
     "required": ["choice"], "additionalProperties": False},
    *({"type": "object", "properties": {kind: {"type": "array", "prefixItems": [
        {"type": "number"}, {"type": "number"}], "minItems": 2, "maxItems": 2}},
       "required": [kind], "additionalProperties": False} for kind in ("uniform", "loguniform")),
], "description": "a sweep over this value (rlcore sweep)"}


def _leaf(prop: dict) -> bool:
    """A value, not a section (a reference to a model, or an object of named keys)."""
    return "$ref" not in prop and not (prop.get("type") == "object" and "properties" in prop)


def _sweepable(root: dict) -> dict:
    """Every value of every section may also be a sweep; ``seeds`` (a list or "0-4") too."""
    def visit(node):
        if isinstance(node, dict):
            for key, prop in list(node.get("properties", {}).items()):
                if key != "algorithm" and _leaf(prop):  # sections keep their own errors
                    node["properties"][key] = {"anyOf": [prop, {"$ref": "#/$defs/sweep"}]}
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(root)
    root["$defs"]["sweep"] = SWEEP
    root["properties"]["seeds"] = {
        "description": "a sweep's seeds: a list, or a range such as \"0-4\" (rlcore sweep)",
        "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "string"}]}
    return root
