"""YAML as data, with positions: every key's line for error messages, ``--set`` overrides.

Loaded with ``yaml.SafeLoader`` (no tags that build objects, no eval), extended so that ``3e-4``
and ``1e6`` are numbers as in YAML 1.2, and duplicate keys are reported instead of silently
overwritten.
"""

from __future__ import annotations

import re

import yaml

from rlcore.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e6, 3e-4 and .5e3 as floats (YAML 1.2), not strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)

# Fixes for PyYAML's most common complaints, keyed by a fragment of its message.
_SYNTAX_HINTS = {
    "mapping values are not allowed here":
        "check this line's indentation, or quote a value that contains ': '",
    "cannot start any token": "indent with spaces (YAML does not allow tabs)",
    "found a tab character": "indent with spaces (YAML does not allow tabs)",
    "unexpected end of stream": "close the quote or bracket opened there",
    "expected <block end>": "check the indentation of this line against the lines above",
    "could not find expected ':'": "each line of a section needs 'key: value'",
    "could not determine a constructor for the tag":
        "experiment files are plain data (safe YAML): remove the tag and write the value",
}


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _syntax_problem(exc: yaml.YAMLError, text: str, source: str) -> str:
    """``file:line:col: what (context) (fix)`` for a YAML syntax error, on one line."""
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _line_col(text, exc.position)
        return (f"{source}:{line}:{col}: unacceptable character #x{exc.character:04x} "
                "(control characters are not allowed in YAML; delete it)")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    ctx, ctx_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if ctx and ctx_mark is not None and ctx != what and (mark is None or ctx_mark.line != mark.line):
        what += f" ({ctx} started at line {ctx_mark.line + 1}, column {ctx_mark.column + 1})"
    hint = next((h for frag, h in _SYNTAX_HINTS.items() if frag in what), "")
    if hint:
        what += f"; {hint}"
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    return f"{where}: {what}"


def _walk(node, path: tuple, marks: dict, problems: list, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # the constructor has already refused non-scalar keys
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first:
                problems.append(f"{source}:{line}: duplicate key '{'.'.join(path + (key,))}' "
                                f"(first given at line {first[key]}); keep one")
            else:
                first[key] = line
            marks[path + (key,)] = line
            _walk(value_node, path + (key,), marks, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[path + (str(i),)] = item.start_mark.line + 1
            _walk(item, path + (str(i),), marks, problems, source)


def _parse(text: str, source: str) -> tuple[dict, dict, list[str]]:
    """(data, {key path: line}, duplicate-key problems); raises ConfigError on bad syntax."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, source)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: expected a mapping of sections (algorithm:, env:, ...), "
                           f"got a {type(data).__name__}"])
    marks: dict = {}
    problems: list = []
    _walk(node, (), marks, problems, source)
    return data, marks, problems


def parse_yaml(text: str, source: str) -> tuple[dict, dict]:
    """Parse ``text``; returns (data, {key path: line}). Raises ConfigError on bad syntax or
    duplicate keys."""
    data, marks, problems = _parse(text, source)
    if problems:
        raise ConfigError(problems)
    return data, marks


def apply_override(data: dict, marks: dict, item: str) -> None:
    """Apply one ``--set a.b.c=value`` (value parsed as a YAML scalar or flow collection)."""
    key, sep, raw = item.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(path):
        raise ConfigError([f"--set {item}: expected key.path=value, e.g. --set learner.lr=1e-3"])
    key = ".".join(path)
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else None
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"--set {item}: cannot parse {raw!r} as a YAML value ({why}); "
                           "write numbers as 3e-4, lists as [64, 64], text with quotes"]) from None
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            parent = ".".join(path[:i + 1])
            raise ConfigError([f"--set {item}: '{parent}' is {child!r}, not a section; "
                               f"set it directly: --set {parent}=VALUE"])
        node = child
    node[path[-1]] = value
    for old in [k for k in marks if k[:len(path)] == path]:
        del marks[old]  # lines of the file no longer hold these values
    marks[path] = f"--set {key}"
