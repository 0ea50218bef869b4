"""YAML as data, with positions: every key's line for error messages, ``--set`` overrides.

What the reader guarantees (README, "Bad inputs and broken files"):

* **Data only.** PyYAML's safe constructors: no tag builds an object, nothing is evaluated.
* **YAML 1.2 core-schema scalars**, not PyYAML's YAML 1.1: ``010`` is 10, ``0o10`` is 8,
  ``0x10`` is 16, ``3e-4`` and ``1e6`` are floats, only ``true``/``false`` (any of three
  spellings) are booleans (``on``, ``yes``, ``no`` stay text), ``1_000`` and ``1:30`` are text,
  dates are text. ``<<`` merge keys are kept (compose files use them; YAML 1.1's only
  structural extra).
* **Bounded before anything is built.** One pass over PyYAML's event stream (the parser is
  iterative, so no depth can overflow the stack) refuses, with the line and column, a file over
  ``MAX_BYTES``, nesting deeper than ``MAX_DEPTH``, a scalar longer than ``MAX_SCALAR_CHARS`` and
  a document whose aliases would expand past ``MAX_VALUES`` values (a "billion laughs" bomb is
  refused at the alias that crosses the bound, in milliseconds, before any expansion); integers
  longer than ``MAX_INT_DIGITS`` digits are refused where they stand.
* Duplicate keys are reported instead of silently overwritten.

PyYAML rather than ruamel.yaml: PyYAML's nodes already carry line and column, its event parser
makes the bounds checkable before composition, and it is already a dependency; ruamel.yaml
would add a second YAML stack for the same guarantees.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from rlcore.errors import ConfigError

MAX_BYTES = 256 * 1024  # the repo's largest experiment file is about 1 KB
MAX_DEPTH = 32  # an experiment needs 3-4 levels (section, key, list or kwargs, value)
MAX_VALUES = 20_000  # scalars and collections after alias expansion
MAX_SCALAR_CHARS = 10_000
MAX_INT_DIGITS = 40  # a 128-bit integer has 39 digits


class _Resolver(BaseResolver):
    """The YAML 1.2 core schema's implicit tags (YAML 1.2.2, section 10.3.2)."""


for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
     list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+.0123456789")),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]:
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), _first)


class _Constructor(SafeConstructor):
    """Safe constructors with YAML 1.2 integers; a value that cannot be built is a located
    ConstructorError, never a bare ValueError."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ConstructorError, RecursionError):
            raise
        except (ValueError, TypeError, AttributeError, OverflowError):
            tag = node.tag.rpartition(":")[2]
            raise ConstructorError(None, None, f"cannot read {str(node.value)[:80]!r} as !!{tag}; "
                                   f"remove the tag or write a valid {tag}",
                                   node.start_mark) from None

    def construct_yaml_int(self, node):
        text = str(self.construct_scalar(node)).strip()
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if len(digits) > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer of {len(digits):,} digits; rlcore "
                                   f"reads integers of up to {MAX_INT_DIGITS} digits",
                                   node.start_mark)
        base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
        return sign * int(digits[2:] if base != 10 else digits, base)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


class _BoundedScanner(Scanner):
    """PyYAML's scanner, refusing flow nesting past MAX_DEPTH at the bracket that crosses it:
    scanning a flow collection looks ahead to its end (a possible key per open bracket), so
    20,000 nested brackets would cost seconds before the first event is seen."""

    source = "<yaml>"

    def fetch_flow_collection_start(self, TokenClass):
        if self.flow_level >= MAX_DEPTH:
            raise ConfigError([f"{_where(self.source, self.get_mark())}: {_TOO_DEEP}"])
        super().fetch_flow_collection_start(TokenClass)


class _Loader(Reader, _BoundedScanner, Parser, Composer, _Constructor, _Resolver):
    def __init__(self, stream, source: str = "<yaml>"):
        self.source = source
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


_TOO_DEEP = (f"nested more than {MAX_DEPTH} levels deep; experiment files need a few "
             "(section, key, list); close the brackets or flatten it")


def _where(source: str, mark) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def check_bounds(text: str, source: str) -> None:
    """Refuse, before anything is composed or built, a document over the reader's bounds
    (ConfigError with the position). One pass over the event stream; an alias adds the
    expanded size of what it names, so an alias bomb is caught at the alias that crosses
    ``MAX_VALUES`` without ever being expanded."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError([f"{source}: {size:,} bytes; experiment files are read up to "
                           f"{MAX_BYTES:,} bytes (is this the experiment file?)"])
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    frames: list[list] = [[0, None]]  # per open collection: [values so far, its anchor]

    def add(n: int, mark) -> None:
        frames[-1][0] += n
        if frames[-1][0] > MAX_VALUES:
            raise ConfigError([f"{_where(source, mark)}: the aliases up to here expand the "
                               f"document past {MAX_VALUES:,} values (an alias bomb?); write "
                               "the values out, or alias fewer levels deep"])

    loader = _Loader(text, source)
    try:
        while loader.check_event():
            event = loader.get_event()
            mark = event.start_mark
            if isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR_CHARS:
                    raise ConfigError([f"{_where(source, mark)}: a value of "
                                       f"{len(event.value):,} characters; values are read up "
                                       f"to {MAX_SCALAR_CHARS:,} characters"])
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                add(1, mark)
            elif isinstance(event, yaml.AliasEvent):
                add(sizes.get(event.anchor, 1), mark)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(frames) > MAX_DEPTH:
                    raise ConfigError([f"{_where(source, mark)}: {_TOO_DEEP}"])
                frames.append([1, event.anchor])
            elif isinstance(event, yaml.CollectionEndEvent):
                count, anchor = frames.pop()
                if anchor is not None:
                    sizes[anchor] = count
                add(count, mark)
    finally:
        loader.dispose()


def read_file(path: str | Path, source: str) -> str:
    """The experiment file's text; ConfigError when it cannot be read or is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                           f"{exc.start}); is this the experiment file? Save it as UTF-8"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read the experiment file "
                           f"({exc.strerror or exc})"]) from None


def load_text(text: str, source: str):
    """(data, node) of one document, bounds checked first; ConfigError on any problem."""
    check_bounds(text, source)
    loader = _Loader(text, source)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


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
        data, node = load_text(text, source)
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
        value = load_text(raw, f"--set {key}")[0] if raw.strip() else None
    except ConfigError as exc:
        raise ConfigError([f"--set {item}: {p.partition(': ')[2] or p}"
                           for p in exc.problems]) from None
    except ConstructorError as exc:  # a value that cannot be built (a 500-digit integer)
        raise ConfigError([f"--set {item}: {exc.problem}"]) from None
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
