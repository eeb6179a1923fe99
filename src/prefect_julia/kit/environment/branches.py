"""Which environments a repository declares, and which one each git branch uses.

The set of environments is data: one ``envs/<name>.env`` file each (``*.local.env`` files are a checkout's own
settings, not environments). ``envs/branches.toml`` maps branch names or glob patterns to them; every other
branch gets an environment of its own based on ``[default] base`` (``per_branch = true``), or shares one
(``default = "dev"``, the older form, still read).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core.errors import ConfigError

BRANCHES_FILE = Path("envs/branches.toml")
ENVS_DIR = Path("envs")
SAFE_NAME = re.compile(r"[a-z][a-z0-9-]*")
#: Longest environment name made from a branch (before its hash suffix).
SLUG_LENGTH = 40
EXAMPLE = (
    '[branches]\nmain = "prod"\ndev = "dev"\n"release/*" = "staging"\n\n[default]\nper_branch = true\nbase = "dev"'
)


def task_names(root: Path) -> set[str]:
    """The tasks of the repository's ``tasks.py``: a bare word that names one is read as that task."""
    path = root / "tasks.py"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    names = {match.replace("_", "-") for match in re.findall(r"^def ([a-z]\w*)\(c: Context", text, re.M)}
    return names | set(re.findall(r'\bname="([a-z][\w-]*)"', text))


def check_name(name: str, root: Path, where: str) -> str:
    """``name`` when it can be an environment: a safe file name that no task has; a ConfigError if not."""
    if not SAFE_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: {name!r} cannot be an environment name.",
            hint="Name environments with lowercase letters, digits and '-', starting with a letter (e.g. staging).",
        )
    if name in task_names(root):
        raise ConfigError(
            f"{where}: the environment name {name!r} is also a task (`invoke {name}`).",
            hint=f"Rename envs/{name}.env (and its mentions in envs/branches.toml) to a word that is not a task.",
        )
    return name


def declared_environments(root: Path) -> tuple[str, ...]:
    """The environments ``envs/<name>.env`` declares, sorted; an unsafe file name is refused with the fix."""
    folder = root / ENVS_DIR
    files = sorted(folder.glob("*.env")) if folder.is_dir() else []
    names = [path.name.removesuffix(".env") for path in files if not path.name.endswith(".local.env")]
    return tuple(check_name(name, root, f"envs/{name}.env") for name in names)


@dataclass(frozen=True)
class BranchMapping:
    """Branch names or glob patterns -> environment names; every other branch gets ``default`` (a shared
    environment) or, with ``per_branch``, an environment of its own based on ``base``."""

    branches: dict[str, str]
    default: str | None = None
    per_branch: bool = False
    base: str | None = None
    path: Path = field(default=BRANCHES_FILE, compare=False)

    def environment_for(self, branch: str) -> str | None:
        """The environment ``branch`` uses; None when it gets one of its own (based on :attr:`base`)."""
        if branch in self.branches:
            return self.branches[branch]
        matched = [pattern for pattern in self.branches if fnmatch.fnmatchcase(branch, pattern)]
        if len(matched) > 1:
            raise ConfigError(
                f"{self.path}: the branch {branch!r} matches {len(matched)} patterns: {', '.join(matched)}.",
                hint=f'Make the patterns exclusive, or name the branch itself: "{branch}" = "ENV" under [branches].',
            )
        if matched:
            return self.branches[matched[0]]
        return None if self.per_branch else self.default

    def branches_of(self, env: str) -> str:
        """How the mapping reads for ``env``, e.g. ``main`` or ``any other branch``."""
        named = [b for b, e in self.branches.items() if e == env]
        if not self.per_branch and env == self.default:
            named.append("any other branch")
        return ", ".join(named) or "-"


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"The branch mapping {path} is missing.", hint=f"Create it with:\n{EXAMPLE}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.", hint=f"It should read like:\n{EXAMPLE}") from None


def _default(path: Path, raw: object) -> tuple[str | None, bool, str | None]:
    """(shared default, per_branch, base) from ``default = "dev"`` or a ``[default]`` table."""
    if isinstance(raw, str):
        return raw, False, None
    if not isinstance(raw, dict) or set(raw) - {"per_branch", "base"}:
        raise ConfigError(f"{path}: `default` must be a name or a [default] table.", hint=EXAMPLE)
    per_branch, base = raw.get("per_branch", False), raw.get("base", "dev")
    if not isinstance(per_branch, bool) or not isinstance(base, str):
        raise ConfigError(f"{path}: [default] per_branch must be true or false, base a name.", hint=EXAMPLE)
    return (None, True, base) if per_branch else (base, False, None)


def load_branch_mapping(root: Path) -> BranchMapping:
    """Read ``envs/branches.toml``; a malformed file, or a name no ``envs/<name>.env`` declares, is an error."""
    path = root / BRANCHES_FILE
    data = _read(path)
    branches = data.get("branches", {})
    if not isinstance(branches, dict) or not all(isinstance(v, str) for v in branches.values()):
        raise ConfigError(f"{path}: [branches] must map branch names to environment names.", hint=EXAMPLE)
    default, per_branch, base = _default(path, data.get("default", "dev"))
    declared = declared_environments(root)
    for env in [default, base, *branches.values()]:
        if env is not None and env not in declared:
            raise ConfigError(
                f"{path} names the unknown environment {env!r}: no envs/{env}.env declares it.",
                hint=f"Add envs/{env}.env (its committed settings), or use one of: {', '.join(declared)}.",
            )
    return BranchMapping(branches=dict(branches), default=default, per_branch=per_branch, base=base, path=path)


def slug(branch: str) -> str:
    """An environment name for ``branch``: ``feature/sales`` -> ``feature-sales``. A branch whose name loses
    more than its slashes (case, other characters, length) gets a short hash of the name as a suffix."""
    lowered = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    if not lowered or not lowered[0].isalpha():
        lowered = f"b-{lowered}".rstrip("-")
    short = lowered[:SLUG_LENGTH].rstrip("-")
    return short if short == branch.replace("/", "-") else with_hash(short, branch)


def with_hash(name: str, branch: str) -> str:
    """``name`` with a short hash of ``branch``: distinct names for branches whose slugs meet."""
    return f"{name}-{hashlib.sha1(branch.encode('utf-8')).hexdigest()[:6]}"


__all__ = [
    "BRANCHES_FILE",
    "BranchMapping",
    "check_name",
    "declared_environments",
    "load_branch_mapping",
    "slug",
    "task_names",
    "with_hash",
]
