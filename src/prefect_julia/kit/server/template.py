"""A new sqlite home starts from a copy of an empty, migrated database: seconds instead of a full migration.

A fresh ``PREFECT_HOME`` spends most of its first start migrating an empty database. The kit keeps one migrated
empty database per Prefect version, built once with Prefect's own ``prefect server database upgrade`` in a
temporary home, in ``$XDG_CACHE_HOME/prefect-julia/templates/prefect-VERSION/prefect.db`` (``~/.cache`` by
default; folders 0700). ``invoke server-up`` copies it (0600) into a sqlite home that has no database yet.

A template is used only when its ``alembic_version`` is the newest sqlite migration this Prefect ships, sqlite's
``quick_check`` passes, and it holds no block encryption key (each home makes its own on first use). Otherwise
the server migrates its own database as it would without the kit, and the template is removed so the next new
home builds a fresh one. A PostgreSQL or external database is never touched.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from prefect_julia.core.errors import PrefectJuliaError, ServerError
from prefect_julia.core.files import private_folder, write_atomic
from prefect_julia.core.processes import file_lock
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.server import database

__all__ = ["build", "ensure", "expected_revision", "location", "revision_of", "seed", "seed_home"]

DATABASE_NAME = "prefect.db"
BUILD_TIMEOUT = 300.0
_REVISION = re.compile(r"""^revision\s*=\s*["']([0-9a-f]+)["']""", re.MULTILINE)
_DOWN = re.compile(r"""^down_revision\s*=\s*["']([0-9a-f]+)["']""", re.MULTILINE)


def prefect_version() -> str:
    return importlib.metadata.version("prefect")


def location(environ: Mapping[str, str]) -> Path:
    """Where the template of the installed Prefect lives (not created here)."""
    cache_root = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(cache_root) / "prefect-julia" / "templates" / f"prefect-{prefect_version()}" / DATABASE_NAME


@cache
def expected_revision() -> str | None:
    """The newest sqlite migration of the installed Prefect (its single alembic head), read from the migration
    files without importing Prefect's server (seconds here); None when there is not exactly one head."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "server/database/_migrations/versions/sqlite"
    revisions, parents = set(), set()
    for path in folder.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found:
            revisions.add(found[1])
            parents.update(_DOWN.findall(text))
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def revision_of(path: Path) -> str:
    """The alembic revision of the sqlite database ``path``; ``ServerError`` (saying why) when it cannot serve
    as a template: unreadable, damaged, not migrated, or holding an encryption key."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            check = connection.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise ServerError(f"{path} is damaged ({check[0] if check else 'no answer'}).")
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            keys = connection.execute("SELECT count(*) FROM configuration WHERE key = 'ENCRYPTION_KEY'").fetchone()
    except sqlite3.Error as error:
        raise ServerError(f"{path} is not a migrated Prefect database ({error}).") from None
    if keys and keys[0]:
        raise ServerError(f"{path} holds a block encryption key: a template must be empty.")
    if len(rows) != 1:
        raise ServerError(f"{path} records {len(rows)} alembic versions, not one.")
    return str(rows[0][0])


def check(path: Path) -> None:
    """Raise ``ServerError`` unless ``path`` is a template this Prefect would not migrate further."""
    wanted = expected_revision()
    found = revision_of(path)
    if wanted is None or found != wanted:
        raise ServerError(f"{path} is at migration {found}; Prefect {prefect_version()} expects {wanted}.")


def _migrate_env(environ: Mapping[str, str], home: Path) -> dict[str, str]:
    """A process environment for Prefect in ``home`` only: none of the caller's Prefect settings (a database
    URL among them) reach the migration."""
    env = {k: v for k, v in environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def build(target: Path, environ: Mapping[str, str]) -> None:
    """Migrate an empty database in a temporary home next to ``target`` with Prefect's own CLI, check it, and
    put a self-contained copy (no WAL file) at ``target`` (0600) in one step."""
    folder = private_folder(target.parent, "the database template folder")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as temporary:
        home = Path(temporary)
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
            env=_migrate_env(environ, home),
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        migrated = home / DATABASE_NAME
        if done.returncode != 0 or not migrated.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ServerError(f"Could not migrate an empty database for Prefect {prefect_version()}:\n{tail}")
        copy = home / "template.db"
        with contextlib.closing(sqlite3.connect(migrated)) as source, contextlib.closing(sqlite3.connect(copy)) as out:
            source.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
        check(copy)
        os.chmod(copy, 0o600)
        os.replace(copy, target)


def ensure(environ: Mapping[str, str], target: Path | None = None) -> Path:
    """The checked template of the installed Prefect, built first when there is none.

    A template that fails its check is removed and ``ServerError`` raised (the caller starts without it; the
    next call builds a fresh one). Callers at once take turns on a lock: one builds, the others wait for it.
    """
    target = target or location(environ)
    private_folder(target.parent.parent, "the database template folder")
    private_folder(target.parent, "the database template folder")
    with file_lock(target.parent / ".lock"):
        if not target.exists():
            build(target, environ)
            return target
        try:
            check(target)
        except ServerError:
            target.unlink(missing_ok=True)
            raise
        return target


def seed(database_file: Path, environ: Mapping[str, str], *, template: Path | None = None) -> str | None:
    """Copy the template to ``database_file`` (0600) when it does not exist yet.

    Returns a note when the template could not be used (the server then migrates as usual), else None.
    """
    if database_file.exists():
        return None
    try:
        source = ensure(environ, template)
        write_atomic(database_file, source.read_bytes(), mode=0o600)
    except (PrefectJuliaError, OSError, subprocess.SubprocessError) as error:
        reason = getattr(error, "message", None) or str(error)
        return (
            f"Started without the migrated database template ({reason.splitlines()[0]}); the server migrates its own."
        )
    return None


def seed_home(env: Environment, environ: Mapping[str, str]) -> list[str]:
    """:func:`seed` for the sqlite database of ``env``'s home; nothing for PostgreSQL or an external URL."""
    if database.kind(env) != "sqlite" or database.external_url(env) is not None:
        return []
    note = seed(env.files.database, environ)
    return [note] if note else []
