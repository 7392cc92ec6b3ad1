"""The architecture, checked: no import cycles, and no reaching into another package's privates.

The import graph is built from the source with :mod:`ast`, so imports inside functions (the
ones that hide cycles from a plain ``import``) count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pacbound", "measurement", "fits")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[importer].name == "__init__.py"
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _lazy_table(module: str) -> dict[str, str]:
    """A package's lazy exports (public name -> defining module); empty for other modules."""
    if MODULES[module].name != "__init__.py":
        return {}
    hook = getattr(importlib.import_module(module), "__getattr__", None)
    return dict(getattr(hook, "exports", {}))


def _project_module(target: str) -> str:
    # `import a.b.c` imports a, a.b and a.b.c; the deepest project module is the edge
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target


def _imports(name: str) -> list[tuple[str, str, int]]:
    """Every project module ``name`` imports, anywhere in its source.

    Each is ``(module, as_written, line)``: ``module`` is what really gets imported (a name taken
    from a package's lazy exports imports the module that defines it), ``as_written`` the module
    the source names.
    """
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):  # type-only imports (under TYPE_CHECKING) count too
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _project_module(alias.name)
                found.append((target, target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _project_module(_resolve(name, node))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    found.append((sub, sub, node.lineno))
                elif base:
                    lazy = _lazy_table(base)
                    found.append((lazy.get(alias.name, base), base, node.lineno))
    return [edge for edge in found if edge[0] and edge[0] != name]


GRAPH = {name: _imports(name) for name in MODULES}


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first repeated at the end), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None


def test_the_graph_sees_imports_inside_functions():
    # the CLI imports its library calls inside the command functions; those edges count, and
    # a name taken from a package's lazy exports counts as an edge to its defining module
    edges = {target for target, _, _ in GRAPH["fits.cli._fit"]}
    assert "fits.analysis._fit" in edges or "fits.analysis" in edges
    assert "fits.runs._load" in edges


def test_no_import_cycles():
    graph = {name: sorted({target for target, _, _ in edges}) for name, edges in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _is_private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split("."))


def test_no_package_imports_another_packages_private_modules():
    offences = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {written}"
        for name, edges in GRAPH.items()
        for _, written, line in edges
        if written.split(".")[0] != name.split(".")[0] and _is_private(written)
    ]
    assert not offences, "\n".join(offences)


def test_packages_depend_one_way():
    # pacbound <- measurement <- fits
    allowed = {"pacbound": {"pacbound"}, "measurement": {"pacbound", "measurement"}}
    offences = [
        f"{name} imports {target}"
        for name, edges in GRAPH.items()
        for target, _, _ in edges
        if target.split(".")[0] not in allowed.get(name.split(".")[0], set(PACKAGES))
    ]
    assert not offences, "\n".join(offences)


#: The layers of :mod:`fits`, lowest first: a sub-package may import only those before it.
FITS_LAYERS = (
    ("exceptions",),
    ("runs", "model", "synthetic"),
    ("estimate",),
    ("results",),
    ("analysis", "sweep"),
    ("experiments",),
    ("cli",),
)


def test_fits_subpackages_are_layered():
    rank = {part: i for i, layer in enumerate(FITS_LAYERS) for part in layer}
    assert set(rank) >= {
        path.name.removesuffix(".py")
        for path in (ROOT / "fits").iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }
    offences = []
    for name, edges in GRAPH.items():
        if not name.startswith("fits."):
            continue
        for target, _, line in edges:
            if not target.startswith("fits."):
                continue
            here, there = name.split(".")[1], target.split(".")[1]
            if here != there and (rank[there] > rank[here] or (rank[there] == rank[here])):
                offences.append(f"{name}:{line} imports {target}")
    assert not offences, "\n".join(offences)
