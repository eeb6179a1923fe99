"""The package's layers and the kit's sub-packages, and the check that keeps imports flowing downwards only.

``core`` (errors, setting, files, processes, gitrepo, console, redact) is imported by everything and imports no other layer.
``runtime`` (what a flow run imports: the Julia bridge, datasets) sees only ``core``, so a flow run never
pulls in the kit's servers or the gates. ``kit`` builds on both; ``gates`` on those three; ``cli`` (the error
boundary) sits on top.

Inside ``kit``, the sub-packages are ordered too (:data:`KIT_ORDER`, lowest first): a module may import its own
sub-package and those before it. And no module imports another that imports it back, directly or through others,
in any layer (imports under ``if TYPE_CHECKING:`` are for the type checker only and do not count).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "prefect_julia"

#: For each layer, the layers it may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "runtime": frozenset({"core"}),
    "kit": frozenset({"core", "runtime"}),
    "gates": frozenset({"core", "runtime", "kit"}),
    "cli": frozenset({"core", "runtime", "kit", "gates"}),
}
#: The kit's sub-packages, lowest first: each may import only itself and those before it.
KIT_ORDER: tuple[str, ...] = ("environment", "access", "julia", "server", "worker", "declarations", "run")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for other in node.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _imported_modules(tree: ast.AST, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) of every import of one of the package's ``known`` modules (or packages)."""
    found: list[tuple[int, str]] = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.module and node.level == 0 and node.module.split(".")[0] == PACKAGE:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in known else node.module for name in names]
        else:
            continue
        for name in names:
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != PACKAGE:
                found.append((node.lineno, name))
    return found


def _graph(package: Path) -> dict[str, dict[str, int]]:
    """Module -> the package's modules it imports -> the first line that does."""
    paths = {_module_name(package, path): path for path in sorted(package.rglob("*.py"))}
    known = set(paths)
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: dict[str, int] = {}
        for lineno, target in _imported_modules(tree, known):
            if target != name and not name.startswith(target + "."):  # a package's own __init__ does not count
                edges.setdefault(target, lineno)
        graph[name] = edges
    return graph


def _order_problem(source: str, target: str) -> str | None:
    """Why ``source`` may not import ``target`` (layers, then the kit's sub-packages), or None."""
    layer, target_layer = source.split(".")[1:2], target.split(".")[1:2]
    if not layer or not target_layer:
        return None
    mine, theirs = layer[0], target_layer[0]
    if mine != theirs:
        if mine in ALLOWED and theirs not in ALLOWED[mine]:
            allowed = ", ".join(sorted(ALLOWED[mine])) or "nothing else"
            return f"the {mine} layer imports {PACKAGE}.{theirs}; {mine} may import only {allowed}"
        return None
    if mine != "kit":
        return None
    sub, target_sub = source.split(".")[2:3], target.split(".")[2:3]
    if not sub or not target_sub or sub[0] not in KIT_ORDER or target_sub[0] not in KIT_ORDER:
        return None
    if KIT_ORDER.index(target_sub[0]) > KIT_ORDER.index(sub[0]):
        allowed = ", ".join(KIT_ORDER[: KIT_ORDER.index(sub[0]) + 1])
        return f"kit/{sub[0]} imports kit/{target_sub[0]}, which comes after it; kit/{sub[0]} may import {allowed}"
    return None


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import cycles of ``graph``: each strongly connected group of two or more modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _where(package: Path, module: str) -> str:
    relative = module.removeprefix(PACKAGE).lstrip(".").replace(".", "/")
    folder = package / relative
    return f"src/{PACKAGE}/{relative}/__init__.py" if folder.is_dir() else f"src/{PACKAGE}/{relative}.py"


def check(root: Path) -> list[str]:
    """Imports that cross the layers or the kit's sub-packages the wrong way, import cycles, and modules outside
    any layer or sub-package (empty: all fine)."""
    package = root / "src" / PACKAGE
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if len(relative.parts) == 1 and relative.name != "__init__.py":
            problems.append(f"src/{PACKAGE}/{relative}: every module belongs in a layer folder ({', '.join(ALLOWED)}).")
        elif len(relative.parts) > 1 and relative.parts[0] not in ALLOWED:
            problems.append(
                f"src/{PACKAGE}/{relative}: {relative.parts[0]}/ is not a known layer ({', '.join(ALLOWED)})."
            )
        elif relative.parts[0] == "kit" and len(relative.parts) == 2 and relative.name != "__init__.py":
            problems.append(
                f"src/{PACKAGE}/{relative}: every kit module belongs in a sub-package ({', '.join(KIT_ORDER)})."
            )
        elif relative.parts[0] == "kit" and len(relative.parts) > 2 and relative.parts[1] not in KIT_ORDER:
            problems.append(f"src/{PACKAGE}/{relative}: kit/{relative.parts[1]}/ is not in gates/layers.py KIT_ORDER.")
    graph = _graph(package)
    for source, edges in sorted(graph.items()):
        for target, lineno in sorted(edges.items(), key=lambda edge: edge[1]):
            why = _order_problem(source, target)
            if why:
                problems.append(f"{_where(package, source)}:{lineno}: {why} (docs/architecture.md).")
    for group in _cycles(graph):
        ring = _ring(graph, group)
        steps = [f"{a.removeprefix(PACKAGE + '.')} (line {graph[a][b]})" for a, b in itertools.pairwise(ring)]
        problems.append(
            f"import cycle: {' -> '.join([*steps, ring[-1].removeprefix(PACKAGE + '.')])}. Move the fact both need "
            "into the lower module, or pass it in (docs/architecture.md)."
        )
    return problems


def _ring(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest path of imports from the group's first module back to itself, through the group only."""
    members, first = set(group), group[0]
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target not in members or target in came_from:
                    continue
                came_from[target] = node
                if target == first:
                    path = [first]
                    while path[-1] != first or len(path) == 1:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                following.append(target)
        frontier = following
    return [first, first]
