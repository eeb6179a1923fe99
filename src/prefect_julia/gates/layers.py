"""The package's layers, and the check that keeps imports flowing downwards only.

``core`` (errors, setting, files, processes, gitrepo, console, redact) is imported by everything and imports no other layer.
``runtime`` (what a flow run imports: the Julia bridge, datasets) sees only ``core``, so a flow run never
pulls in the kit's servers or the gates. ``kit`` (settings, environments, servers, workers, deployments...)
builds on both; ``gates`` on those three; ``cli`` (the error boundary) sits on top.
"""

from __future__ import annotations

import ast
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


def _imported_layers(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != PACKAGE else [f"{PACKAGE}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def check(root: Path) -> list[str]:
    """Imports that cross the layers the wrong way, or modules outside any layer (empty: all fine)."""
    package = root / "src" / PACKAGE
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if len(relative.parts) == 1:
            if relative.name != "__init__.py":
                problems.append(
                    f"src/{PACKAGE}/{relative}: every module belongs in a layer folder ({', '.join(ALLOWED)})."
                )
            continue
        layer = relative.parts[0]
        if layer not in ALLOWED:
            problems.append(f"src/{PACKAGE}/{relative}: {layer}/ is not a known layer ({', '.join(ALLOWED)}).")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for lineno, target in _imported_layers(tree):
            if target != layer and target not in ALLOWED[layer]:
                problems.append(
                    f"src/{PACKAGE}/{relative}:{lineno}: the {layer} layer imports {PACKAGE}.{target}; "
                    f"{layer} may import only {', '.join(sorted(ALLOWED[layer])) or 'nothing else'} "
                    "(docs/architecture.md)."
                )
    return problems
