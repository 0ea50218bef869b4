"""The core's shape, checked from its source: the core reaches plugins and environments only
through the registry, has no import cycles, and keeps its files small."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "rlcore"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, function-level ones included."""
    out = []
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = package.split(".")
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            out.append((node.lineno, base))
            # "from rlcore.run import checkpoint" imports the module rlcore.run.checkpoint
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def core_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {mod for _, mod in imports(path) if mod in files and mod != name}
    return graph


def test_the_core_imports_no_plugin_or_env_by_name():
    bad = [f"{p.relative_to(CORE.parent)}:{line}: {mod}" for p in CORE.rglob("*.py")
           for line, mod in imports(p)
           if mod.startswith(("rlcore.plugins", "rlcore.envs"))]
    assert bad == [], "the core must reach plugins and envs through rlcore.registry:\n" + \
        "\n".join(bad)


def test_the_core_has_no_import_cycles():
    graph = core_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_can_fail():
    """The graph walk above sees function-level and package-relative imports."""
    graph = core_graph()
    assert "rlcore.regimes" in graph["rlcore.run.checks"]  # a function-level import
    assert "rlcore.run.checkpoint" in graph["rlcore.run.lifecycle"]  # from rlcore.run import x


def test_no_core_file_is_over_400_lines():
    long = {str(p.relative_to(CORE.parent)): n for p in CORE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_tree_names_the_architecture():
    """The run lifecycle, each regime, the actor layer, the learner, the config and the
    records are found by folder and file name."""
    for rel in ["run/lifecycle.py", "regimes/trajectory.py", "regimes/transition.py",
                "regimes/game.py", "actors/worker.py", "actors/pool.py", "actors/slots.py",
                "actors/watchdog.py", "learner/core.py", "learner/remote.py",
                "config/schema.py", "config/loading.py", "types.py", "plugin.py",
                "registry.py", "README.md"]:
        assert (CORE / rel).is_file(), rel
