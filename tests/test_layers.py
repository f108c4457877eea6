"""The architecture's arrows, checked on the source with ``ast`` (DESIGN.md, "Layout").

- No import cycle among the modules of ``harness``, ``references`` and ``reports``: every
  ``import``/``from ... import`` counts, at module level or inside a function (a deferred
  import hides a cycle from Python, not from the design).
- ``reports`` reads the store only: from ``harness`` it imports ``harness.store`` (and its
  submodules) and ``harness.vocabulary``, nothing else, and neither does anything those import.
- ``references`` knows nothing of ``harness`` or ``reports``.

Only explicit imports count: ``import harness.store`` also runs ``harness/__init__.py`` when
Python executes it, but that is the package's business, not an arrow of the importing module.
``from package import name`` is an arrow to ``package.name`` when that is a module, else to
``package``. Imports under ``if TYPE_CHECKING:`` are arrows for the layer rules (a type is a
dependency too) but not for the cycle check (they never run, and they are how annotations
name a type of a module that imports this one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "references", "reports")
# What reports may import from harness (each with its submodules).
REPORTS_MAY_IMPORT = ("harness.store", "harness.vocabulary")
# What the store may import from harness besides itself.
STORE_MAY_IMPORT = ("harness.errors", "harness.vocabulary")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the three packages: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            if name in found and found[name].name == "__init__.py":
                continue  # a package shadows a module of the same name (x/ beside x.py)
            found[name] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` names (itself, or the nearest parent that exists)."""
    known = modules()
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST, type_only: bool = False
                  ) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, anywhere (functions, classes, branches), and whether it sits
    under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, type_only
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]), type_only)
        else:
            yield from _import_nodes(node, type_only)


def _imported(module: str, tree: ast.AST, *, runtime_only: bool = False
              ) -> Iterable[tuple[str, int]]:
    """(module of ours, line) for every import in ``tree`` (``runtime_only``: not those under
    ``if TYPE_CHECKING:``)."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    for node, type_only in _import_nodes(tree):
        if runtime_only and type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _resolve(alias.name)) is not None:
                    yield target, node.lineno
        else:
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[:-(node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in modules():  # from package import submodule
                    yield candidate, node.lineno
                elif (target := _resolve(base)) is not None:
                    yield target, node.lineno


@cache
def graph(runtime_only: bool = False) -> dict[str, dict[str, int]]:
    """module -> {imported module of ours: first line importing it}."""
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out: dict[str, int] = {}
        for target, line in _imported(name, tree, runtime_only=runtime_only):
            if target != name:
                out.setdefault(target, line)
        edges[name] = out
    return edges


def find_cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one
    cycle through some of its modules, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:  # iterative: no recursion limit on deep import chains
        nonlocal counter
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, {})))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return sorted(_one_cycle(component, edges) for component in components)


def _one_cycle(component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node]):
                if child == start:
                    return [*paths[node], start]
                if child in members and child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    return component  # not reached: a component's members all lie on a cycle


def _describe(cycle: list[str], edges: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:])) + \
        f" -> {cycle[-1]}"


def _reachable(start: str, edges: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """Every module ``start`` imports, directly or not, with one import chain to it."""
    chains = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node]):
                if child not in chains:
                    chains[child] = [*chains[node], child]
                    following.append(child)
        frontier = following
    return chains


def _inside(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The resolver itself: plain, from-submodule, from-name, relative and deferred imports."""
    edges = graph()
    assert "harness.store" in edges["reports.data"]  # from harness import store as results
    assert "harness.store.compare" in edges["reports.pages.comparison"]  # from pkg import mod
    assert "harness.vocabulary" in edges["harness.store.schema"]  # from mod import NAME
    assert "references.formats" in edges["harness.vocabulary"]
    assert edges["harness.store"]  # a package's __init__ is a module like any other
    tree = ast.parse("def f():\n    from . import compare\n    import harness.vocabulary\n"
                     "if TYPE_CHECKING:\n    from ..errors import StoreError\n")
    assert dict(_imported("harness.store.run_directory", tree)) == {
        "harness.store.compare": 2, "harness.vocabulary": 3, "harness.errors": 5}
    assert dict(_imported("harness.store.run_directory", tree, runtime_only=True)) == {
        "harness.store.compare": 2, "harness.vocabulary": 3}


def test_there_is_no_import_cycle() -> None:
    edges = graph(runtime_only=True)
    cycles = find_cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, edges) for c in cycles)


def test_find_cycles_reports_one_cycle_per_tangle() -> None:
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert _describe(["a", "b", "c", "a"], edges) == (
        "a (line 1) -> b (line 2) -> c (line 3) -> a")


def test_reports_import_only_the_store_and_the_vocabulary_of_the_harness() -> None:
    """Directly; and through whatever the store and the vocabulary import in turn, nothing
    more than the harness's errors (the store's exceptions derive from HarnessError)."""
    edges = graph()
    bad = []
    for name in sorted(edges):
        if not _inside(name, ["reports"]):
            continue
        bad += [f"{name} (line {line}) imports {target}"
                for target, line in sorted(edges[name].items())
                if _inside(target, ["harness"]) and not _inside(target, REPORTS_MAY_IMPORT)]
        bad += [" -> ".join(chain) for target, chain in _reachable(name, edges).items()
                if _inside(target, ["harness"])
                and not _inside(target, [*REPORTS_MAY_IMPORT, *STORE_MAY_IMPORT])]
    assert not bad, "reports reaches into the harness:\n" + "\n".join(sorted(set(bad))[:20])


def test_the_store_imports_only_errors_and_vocabulary_of_the_harness() -> None:
    edges = graph()
    allowed = ("harness.store", *STORE_MAY_IMPORT)
    for name in sorted(edges):
        if _inside(name, ["harness.store"]):
            outside = [t for t in edges[name] if _inside(t, ["harness"])
                       and not _inside(t, allowed)]
            assert not outside, f"{name} imports {outside}"


def test_references_import_nothing_of_the_harness_or_the_reports() -> None:
    edges = graph()
    bad = [f"{name} (line {line}) imports {target}"
           for name in sorted(edges) if _inside(name, ["references"])
           for target, line in sorted(edges[name].items())
           if _inside(target, ["harness", "reports"])]
    assert not bad, "\n".join(bad)
