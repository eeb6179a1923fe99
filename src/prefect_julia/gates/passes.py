"""Gate once per tree: a passed gate is recorded for the tree it checked and the tools it checked it with.

The key is the git tree hash of a clean checkout plus the versions of python, prefect and julia and the hash
of ``constraints.txt``: the same files checked by the same tools give the same verdict, so ``invoke promote``
and ``invoke gate`` do not run a gate again for a tree that passed one (``invoke gate --force`` does). A dirty
tree has no key: it is always gated, and never recorded. Records live under the git directory
(``.git/prefect-julia/gates/<key>``, folders 0700, files 0600), never in the working tree.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from prefect_julia.core import gitrepo
from prefect_julia.core.files import write_atomic
from prefect_julia.core.setting import JULIA_BIN
from prefect_julia.gates.gate import GateReport, Step, run_gate

__all__ = [
    "PassRecord",
    "TreeKey",
    "Verdict",
    "find_pass",
    "gate_once",
    "record_pass",
    "records_dir",
    "tool_versions",
    "tree_key",
]

CONSTRAINTS_FILE = "constraints.txt"


@dataclass(frozen=True)
class TreeKey:
    """What a gate verdict depends on: the tree and the tools."""

    tree: str
    tools: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        text = json.dumps({"tree": self.tree, "tools": dict(self.tools)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PassRecord:
    """A passed gate: the tree, when (seconds since the epoch), and pytest's closing line if the tests ran."""

    tree: str
    at: float
    tests: str = ""

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))


def _julia_version(environ: Mapping[str, str]) -> str:
    # the julia the bridge runs (runtime.bridge.find_julia), found without importing the bridge and Prefect
    julia = shutil.which(JULIA_BIN.lookup(environ) or "julia", path=environ.get("PATH"))
    if julia is None:
        return "none"
    try:
        done = subprocess.run([julia, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return done.stdout.strip() or "none"


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def tool_versions(root: Path, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """python, prefect and julia versions, and the sha256 of ``constraints.txt`` ("none" where absent)."""
    constraints = root / CONSTRAINTS_FILE
    pinned = hashlib.sha256(constraints.read_bytes()).hexdigest() if constraints.is_file() else "none"
    return (
        ("python", platform.python_version()),
        ("prefect", _package_version("prefect")),
        ("julia", _julia_version(environ)),
        ("constraints", pinned),
    )


def tree_key(root: Path, environ: Mapping[str, str]) -> TreeKey | None:
    """The key of ``root``'s checkout, or None when the tree is dirty (changed or untracked paths)."""
    if gitrepo.changed_paths(root, environ):
        return None
    tree = gitrepo.git(root, "rev-parse", "HEAD^{tree}", env=environ)
    return TreeKey(tree=tree, tools=tool_versions(root, environ))


def records_dir(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``<git common dir>/prefect-julia/gates``: shared by the repository's worktrees."""
    common = Path(gitrepo.git(root, "rev-parse", "--git-common-dir", env=environ))
    return (common if common.is_absolute() else root / common) / "prefect-julia" / "gates"


def find_pass(root: Path, key: TreeKey, environ: Mapping[str, str] | None = None) -> PassRecord | None:
    """The record of a passed gate for ``key``, or None."""
    path = records_dir(root, environ) / key.digest
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PassRecord(tree=str(data["tree"]), at=float(data["at"]), tests=str(data.get("tests", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_pass(
    root: Path,
    key: TreeKey,
    tests: str = "",
    environ: Mapping[str, str] | None = None,
    steps: Mapping[str, float] | None = None,
) -> PassRecord:
    """Record that the gate passed for ``key`` (now), with each step's seconds (``invoke bench`` prints them)."""
    folder = records_dir(root, environ)
    for level in (folder.parent, folder):
        level.mkdir(mode=0o700, exist_ok=True)
    record = PassRecord(tree=key.tree, at=time.time(), tests=tests)
    body = {"tree": key.tree, "at": record.at, "tests": tests, "tools": dict(key.tools), "steps": dict(steps or {})}
    write_atomic(folder / key.digest, (json.dumps(body, indent=2) + "\n").encode(), mode=0o600)
    return record


@dataclass(frozen=True)
class Verdict:
    """What :func:`gate_once` did: ran the gate (``report``), or found that the tree had passed (``previous``)."""

    report: GateReport | None
    previous: PassRecord | None
    key: TreeKey | None

    @property
    def ok(self) -> bool:
        return self.previous is not None or (self.report is not None and self.report.ok)


def _same_tree(root: Path, key: TreeKey, environ: Mapping[str, str]) -> bool:
    """True when ``root`` still is the clean checkout of ``key``'s tree (a step may have rewritten files)."""
    if gitrepo.changed_paths(root, environ):
        return False
    return gitrepo.git(root, "rev-parse", "HEAD^{tree}", env=environ) == key.tree


def gate_once(
    root: Path,
    steps: Sequence[Step] | None = None,
    *,
    force: bool = False,
    skip: Sequence[str] = (),
    keep_going: bool = False,
    label: str = "tree",
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> Verdict:
    """Gate ``root`` unless its clean tree passed already with the same tools (``force`` gates it anyway).

    A full gate (nothing skipped) that passes on a clean tree is recorded. ``label`` names the tree in the
    message (``main's tree``).
    """
    environ = os.environ if env is None else env
    stream = sys.stdout if out is None else out
    key = tree_key(root, environ)
    if key is None:
        stream.write("the working tree has uncommitted or untracked changes: gated, and the result not recorded\n")
    elif not force:
        previous = find_pass(root, key, environ)
        if previous is not None:
            stream.write(f"{label} {key.tree[:10]} passed the gate at {previous.when}: not gated again\n")
            return Verdict(report=None, previous=previous, key=key)
    report = run_gate(root, steps, skip=skip, keep_going=keep_going, env=environ, out=stream)
    if report.ok and key is not None and not skip and _same_tree(root, key, environ):
        seconds = {r.name: round(r.seconds, 1) for r in report.results if not r.skipped}
        record_pass(root, key, report.test_summary() or "", environ, seconds)
    return Verdict(report=report, previous=None, key=key)
