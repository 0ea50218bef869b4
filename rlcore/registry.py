"""Name -> plugin, resolved lazily through "module:attr" strings.

Built-ins are listed here by string and are also declared as entry points in pyproject.toml
(groups ``rlcore.algorithms`` and ``rlcore.envs``), the mechanism a third-party package uses.
Nothing is imported until a name is asked for. ``algorithm: my_pkg.my_mod:PLUGIN`` in a YAML
file also works, for plugins that are not installed as a package.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from rlcore.errors import RegistryError

ALGORITHM_GROUP = "rlcore.algorithms"
ENV_GROUP = "rlcore.envs"

BUILTIN_ALGORITHMS = {
    "pg": "rlcore.plugins.pg.plugin:PLUGIN",
    "ppo": "rlcore.plugins.ppo.plugin:PLUGIN",
}
BUILTIN_ENVS = {
    "atari": "rlcore.envs.atari:PLUGIN",
}

_extra: dict[str, dict[str, str]] = {ALGORITHM_GROUP: {}, ENV_GROUP: {}}
_cache: dict[str, object] = {}


@dataclass
class Listing:
    name: str
    target: str
    description: str = ""
    error: str = ""  # non-empty when the plugin failed to import


def register_algorithm(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:attr"`` for this process (tests, notebooks)."""
    _extra[ALGORITHM_GROUP][name] = target


def _table(group: str) -> dict[str, str]:
    table = dict(BUILTIN_ALGORITHMS if group == ALGORITHM_GROUP else BUILTIN_ENVS)
    for ep in entry_points(group=group):
        table.setdefault(ep.name, ep.value)
    table.update(_extra[group])
    return table


def _load_target(target: str) -> object:
    if target in _cache:
        return _cache[target]
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr) if attr else module
    _cache[target] = obj
    return obj


def _unknown(kind: str, name: str, known: list[str]) -> RegistryError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    close += [k for k in known if k.lower() == name.lower() and k not in close]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return RegistryError(f"unknown {kind} '{name}'{hint} installed: {', '.join(sorted(known))}")


def algorithm_target(name: str) -> str:
    """The ``"module:attr"`` string ``name`` resolves to (what Ray actors are given)."""
    table = _table(ALGORITHM_GROUP)
    target = table.get(name) or (name if ":" in name else None)
    if target is None:
        raise _unknown("algorithm", name, list(table))
    return target


def get_algorithm(name: str):
    """The ``AlgorithmPlugin`` registered as ``name`` (or a ``module:attr`` path)."""
    from rlcore.plugin import AlgorithmPlugin

    target = algorithm_target(name)
    try:
        plugin = _load_target(target)
    except Exception as exc:  # a broken plugin must not look like an unknown one
        raise RegistryError(f"algorithm '{name}' ({target}) failed to import: "
                            f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(plugin, AlgorithmPlugin):
        raise RegistryError(f"algorithm '{name}' ({target}) is a {type(plugin).__name__}, "
                            "not an rlcore.plugin.AlgorithmPlugin")
    return plugin


def algorithm_names() -> list[str]:
    return sorted(_table(ALGORITHM_GROUP))


def list_plugins(group: str) -> list[Listing]:
    """Import every plugin of ``group``; broken ones are listed with their error."""
    out = []
    for name, target in sorted(_table(group).items()):
        try:
            obj = _load_target(target)
            out.append(Listing(name, target, getattr(obj, "description", "")))
        except Exception as exc:
            out.append(Listing(name, target, error=f"{type(exc).__name__}: {exc}"))
    return out


def ensure_env_registered(env_id: str) -> None:
    """Register the ``rlcore/`` namespace with Gymnasium before ``env_id`` is made."""
    if not env_id.startswith("rlcore/"):
        return
    for name, target in _table(ENV_GROUP).items():
        try:
            _load_target(target).register()
        except ImportError as exc:
            plugin_name = name
            raise RegistryError(f"environment plugin '{plugin_name}' failed to import "
                                f"({exc}); install its extra: pip install 'rlcore[{name}]'") from exc
