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
    "trpo": "rlcore.plugins.trpo.plugin:PLUGIN",
    "tabular": "rlcore.plugins.tabular.plugin:PLUGIN",
    "supervised": "rlcore.plugins.supervised.plugin:PLUGIN",
    "dqn": "rlcore.plugins.dqn.plugin:PLUGIN",
    "c51": "rlcore.plugins.distributional.plugin:C51",
    "qrdqn": "rlcore.plugins.distributional.plugin:QRDQN",
    "ddpg": "rlcore.plugins.ddpg.plugin:DDPG",
    "td3": "rlcore.plugins.ddpg.plugin:TD3",
    "sac": "rlcore.plugins.sac.plugin:PLUGIN",
    "alphazero": "rlcore.plugins.alphazero.plugin:PLUGIN",
    "lqr": "rlcore.plugins.lqr.plugin:PLUGIN",
    "cem_mpc": "rlcore.plugins.mpc.plugin:PLUGIN",
    "ilqr_mpc": "rlcore.plugins.mpc.plugin:ILQR",
}
BUILTIN_ENVS = {
    "atari": "rlcore.envs.atari:PLUGIN",
    "mujoco": "rlcore.envs.mujoco:PLUGIN",
    "bandits": "rlcore.envs.bandits:PLUGIN",
    "gridworld": "rlcore.envs.gridworld:PLUGIN",
    "datasets": "rlcore.envs.datasets:PLUGIN",
    "games": "rlcore.envs.games:PLUGIN",
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


def register_env_plugin(name: str, target: str) -> None:
    """Register an environment plugin ``name`` -> ``"module:attr"`` for this process."""
    _extra[ENV_GROUP][name] = target


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
    lower = {k.lower(): k for k in known}
    close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.5)]
    installed = ", ".join(sorted(known))
    if close:
        return RegistryError(f"unknown {kind} '{name}'; did you mean "
                             f"{' or '.join(repr(c) for c in close)}? installed: {installed}")
    return RegistryError(f"unknown {kind} '{name}'; installed: {installed} "
                         "(or give a plugin's 'module:ATTR')")


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
                            f"{type(exc).__name__}: {exc}; fix or reinstall the package that "
                            "provides it (`rlcore list` shows every plugin; --debug shows the "
                            "traceback)") from exc
    if not isinstance(plugin, AlgorithmPlugin):
        raise RegistryError(f"algorithm '{name}' ({target}) is a {type(plugin).__name__}, "
                            "not an rlcore.plugin.AlgorithmPlugin; point its entry at one")
    return plugin


def algorithm_names() -> list[str]:
    return sorted(_table(ALGORITHM_GROUP))


def list_plugins(group: str) -> list[Listing]:
    """Import every plugin of ``group``; broken ones are listed with their error."""
    from rlcore.plugin import AlgorithmPlugin, EnvPlugin

    expected = AlgorithmPlugin if group == ALGORITHM_GROUP else EnvPlugin
    out = []
    for name, target in sorted(_table(group).items()):
        try:
            obj = _load_target(target)
        except Exception as exc:  # a broken plugin is listed, not fatal
            out.append(Listing(name, target, error=f"{type(exc).__name__}: {exc}"))
            continue
        if not isinstance(obj, expected):
            out.append(Listing(name, target, error=f"is a {type(obj).__name__}, not an "
                                                   f"rlcore.plugin.{expected.__name__}"))
        else:
            out.append(Listing(name, target, obj.description))
    return out


def ensure_env_registered(env_id: str) -> None:
    """Register the ``rlcore/`` namespace with Gymnasium before ``env_id`` is made.

    A broken environment plugin only matters when ``env_id`` is not registered without it."""
    if not env_id.startswith("rlcore/"):
        return
    import gymnasium as gym

    failures = []
    for name, target in sorted(_table(ENV_GROUP).items()):
        try:
            _load_target(target).register()
        except Exception as exc:
            failures.append((name, target, exc))
    if failures and env_id not in gym.registry:
        name, target, exc = failures[0]
        fix = (f"install its extra: pip install 'rlcore[{name}]'"
               if isinstance(exc, ImportError) and name in BUILTIN_ENVS
               else "fix or reinstall the package that provides it, or uninstall it")
        raise RegistryError(f"env.id '{env_id}': environment plugin '{name}' ({target}) failed to "
                            f"load ({type(exc).__name__}: {exc}); {fix}") from exc


def find_game(env_id: str, kwargs: dict | None = None):
    """``(game name, factory of fresh games)`` for an env id that plays a two-player game
    (asked of every environment plugin that declares games), else ``(None, ids)`` with the
    game ids the installed plugins offer, for the error message."""
    ensure_env_registered(env_id)
    ids: list[str] = []
    for _, target in sorted(_table(ENV_GROUP).items()):
        try:
            plugin = _load_target(target)
        except Exception:  # a broken plugin plays no games here; `rlcore list` reports it
            continue
        if getattr(plugin, "game_name_for", None) is None or plugin.make_game is None:
            continue
        name = plugin.game_name_for(env_id, kwargs)
        if name is not None:
            make = plugin.make_game
            return name, lambda: make(name)
        ids += list(plugin.ids)
    return None, ids
