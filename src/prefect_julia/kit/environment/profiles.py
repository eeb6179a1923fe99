"""The Prefect profiles file ``profiles/profiles.toml``: one profile per environment, edited with tomlkit.

``sync`` creates missing profiles and updates the kit's own keys; every comment, unknown key and foreign
profile a person added survives. A malformed file is reported with line and column and left untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from prefect_julia.core.errors import ConfigError
from prefect_julia.core.files import write_atomic
from prefect_julia.kit.environment.environments import Environment

HEADER = (
    " Prefect profiles, one per environment, kept in step by `invoke profile-sync`.\n"
    " The kit updates only its own keys; your comments, keys and profiles stay.\n"
    " Use: export PREFECT_PROFILES_PATH=$PWD/profiles/profiles.toml; prefect --profile dev config view"
)


@dataclass
class SyncReport:
    path: Path
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    written: bool = False


def load(path: Path) -> tomlkit.TOMLDocument:
    """Parse the profiles file; a syntax error names line and column."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        raise ConfigError(
            f"{path} is not valid TOML (line {error.line}, column {error.col}): {error}. It was left untouched.",
            hint="Fix that line by hand, or move the file away and run `invoke profile-sync` to write a new one.",
        ) from None


def sync(path: Path, environments: Iterable[Environment], *, active: str | None = None) -> SyncReport:
    """Bring ``path`` in step with ``environments``; write (mode 0600) only when something changed."""
    original = path.read_text(encoding="utf-8") if path.exists() else None
    doc = load(path)
    report = SyncReport(path=path)
    if original is None:
        for line in HEADER.splitlines():
            doc.add(tomlkit.comment(line))
    if "active" not in doc and active is not None:
        doc["active"] = active
    profiles = doc.get("profiles")
    if profiles is None:
        profiles = tomlkit.table(is_super_table=True)
        doc["profiles"] = profiles
    elif not isinstance(profiles, Table):
        raise ConfigError(f"{path}: `profiles` must be a table of profiles.", hint="Rename that key.")
    for env in environments:
        wanted = env.prefect_settings()
        table = profiles.get(env.name)
        if table is None:
            table = tomlkit.table()
            for key, value in wanted.items():
                table[key] = value
            profiles[env.name] = table
            report.created.append(env.name)
            continue
        changed = False
        for key, value in wanted.items():
            if table.get(key) != value:
                table[key] = value
                changed = True
        if changed:
            report.updated.append(env.name)
    text = tomlkit.dumps(doc)
    if text != original or (path.stat().st_mode & 0o777) != 0o600:
        write_atomic(path, text.encode("utf-8"), mode=0o600)
        report.written = True
    return report
