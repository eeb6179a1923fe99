"""The branch environments of one repository, every checkout and worktree of it, recorded in one place.

The record is ``<git common dir>/prefect-julia/environments.toml`` (shared by all worktrees of a clone), written
atomically under a file lock: per environment its branch, checkout, port, base and the commit its branch
pointed at when the environment was made (``start``; a branch with no commit of its own is never "merged").
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import CommandFailed, ConfigError
from prefect_julia.core.files import private_folder, write_atomic
from prefect_julia.core.processes import file_lock
from prefect_julia.kit.environment.branches import slug, with_hash

FOLDER = "prefect-julia"
FILE = "environments.toml"


@dataclass(frozen=True)
class Entry:
    """One branch environment."""

    name: str
    branch: str
    checkout: str
    port: int
    base: str
    start: str = ""


def common_dir(root: Path) -> Path | None:
    """The git common dir of the repository ``root`` is in (shared by its worktrees); None outside git."""
    try:
        out = gitrepo.git(root, "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
    except CommandFailed:
        return None
    return Path(out) if out else None


def registry_path(root: Path) -> Path | None:
    common = common_dir(root)
    return common / FOLDER / FILE if common is not None else None


def shared_checkout(root: Path) -> Path:
    """The clone's main working tree: the homes and data roots of its branch environments live there, so they
    outlive a removed worktree (``invoke env-prune`` then still finds their processes and keeps their data).
    ``root`` itself outside git, or when the clone has no main working tree (a bare repository)."""
    common = common_dir(root)
    return common.parent if common is not None and common.name == ".git" else root


def _parse(path: Path) -> list[Entry]:
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return [Entry(name=name, **fields) for name, fields in data.get("environments", {}).items()]
    except (tomllib.TOMLDecodeError, TypeError) as error:
        raise ConfigError(
            f"The record of branch environments {path} cannot be read: {error}.",
            hint=f"Move it aside (`mv {path} {path}.bad`); `invoke server-up` on each branch records them again.",
        ) from None


def _render(entries: list[Entry]) -> bytes:
    lines = ["# Branch environments of this repository (all worktrees); written by the kit.", ""]
    for entry in sorted(entries, key=lambda e: e.name):
        lines.append(f"[environments.{json.dumps(entry.name)}]")
        for key, value in asdict(entry).items():
            if key != "name":
                lines.append(f"{key} = {value if isinstance(value, int) else json.dumps(value)}")
        lines.append("")
    return "\n".join(lines).encode("utf-8")


def entries(root: Path) -> list[Entry]:
    """Every recorded branch environment of the repository ``root`` is in (none outside git)."""
    path = registry_path(root)
    return _parse(path) if path is not None else []


def find(root: Path, name: str) -> Entry | None:
    return next((entry for entry in entries(root) if entry.name == name), None)


def find_branch(root: Path, branch: str) -> Entry | None:
    return next((entry for entry in entries(root) if entry.branch == branch), None)


@contextmanager
def editing(root: Path) -> Iterator[list[Entry]]:
    """The entries, under the registry's lock; what the block leaves in the list is written back atomically."""
    path = registry_path(root)
    if path is None:
        raise ConfigError(f"{root} is not in a git repository: branch environments need one.", hint="git init")
    private_folder(path.parent, "the folder of the branch environments' record")
    with file_lock(path.with_suffix(".lock")):
        current = _parse(path)
        kept = list(current)
        yield kept
        if kept != current:
            write_atomic(path, _render(kept), mode=0o600)


def _name(branch: str, taken: Collection[str]) -> str:
    name = slug(branch)
    return with_hash(name, branch) if name in taken else name


def _port(ports: range, taken: Collection[int], is_free: Callable[[int], bool]) -> int:
    for port in ports:
        if port not in taken and is_free(port):
            return port
    raise ConfigError(
        f"No free port for a new branch environment in {ports.start}-{ports.stop - 1}.",
        hint="Remove environments of gone branches with `invoke env-prune`, or widen PREFECT_JULIA_BRANCH_PORTS "
        "(e.g. PREFECT_JULIA_BRANCH_PORTS=4310-4499 in envs/dev.local.env).",
    )


def claim(
    root: Path,
    branch: str,
    *,
    base: str,
    declared: Collection[str],
    ports: range,
    reserved_ports: Collection[int],
    is_free: Callable[[int], bool],
) -> Entry:
    """The environment of ``branch``: the recorded one (its checkout brought up to date), or a new one with a
    collision-free name and a free port, recorded before it is returned."""
    checkout = str(root.resolve())
    with editing(root) as kept:
        for index, entry in enumerate(kept):
            if entry.branch == branch:
                if entry.checkout != checkout or entry.base != base:
                    kept[index] = replace(entry, checkout=checkout, base=base)
                return kept[index]
        name = _name(branch, {*declared, *(entry.name for entry in kept)})
        port = _port(ports, {*reserved_ports, *(entry.port for entry in kept)}, is_free)
        start = gitrepo.git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
        entry = Entry(name=name, branch=branch, checkout=checkout, port=port, base=base, start=start)
        kept.append(entry)
        return entry


def remove(root: Path, names: Collection[str]) -> None:
    """Forget the environments ``names`` (their files and processes are the caller's)."""
    with editing(root) as kept:
        kept[:] = [entry for entry in kept if entry.name not in names]


__all__ = [
    "Entry",
    "claim",
    "common_dir",
    "editing",
    "entries",
    "find",
    "find_branch",
    "registry_path",
    "remove",
    "shared_checkout",
]
