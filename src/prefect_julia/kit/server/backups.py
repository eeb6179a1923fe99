"""Backing up and restoring an environment's database (sqlite's online backup, ``pg_dump -Fc``) around its running
server.

A backup is taken while the server runs. A restore refuses while flow runs are in flight, keeps a copy of
the database it replaces, stops the worker, server and database, restores, and starts the server again when it
was running before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import DatabaseError
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.server import database, inflight, servers
from prefect_julia.kit.server.database import external_url, kind
from prefect_julia.kit.server.postgres import DB_NAME, run

# --- the database's own copy -----------------------------------------------------------------------------------


def _pg_env(url: str) -> dict[str, str]:
    """libpq's variables for ``url``: the password never reaches a command line."""
    parts = urllib.parse.urlsplit(url.replace("+asyncpg", ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=parts.hostname or "127.0.0.1",
        PGPORT=str(parts.port or 5432),
        PGUSER=urllib.parse.unquote(parts.username or ""),
        PGPASSWORD=urllib.parse.unquote(parts.password or ""),
        PGDATABASE=parts.path.lstrip("/") or DB_NAME,
    )
    return env


def _client_program(env: Environment, name: str) -> str:
    path = Path(env.require("PREFECT_JULIA_POSTGRES_BIN")).expanduser() / name
    if os.access(path, os.X_OK):
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise DatabaseError(
            f"The PostgreSQL program {name} is missing.",
            hint="Install the PostgreSQL client (`apt-get install postgresql-client`) or set PREFECT_JULIA_POSTGRES_BIN.",
        )
    return found


def default_backup_path(env: Environment) -> Path:
    suffix = "db" if kind(env) == "sqlite" and external_url(env) is None else "dump"
    return env.files.backups / f"{env.name}-{time.strftime('%Y%m%d-%H%M%S')}.{suffix}"


def _postgres_url(env: Environment) -> tuple[str, bool]:
    """The URL of the environment's PostgreSQL, started when it is managed and down; (url, started here)."""
    url = external_url(env)
    if url is not None:
        return url, False
    ready = database.ensure_running(env)
    return ready.server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"], ready.started


def copy_database(env: Environment, target: Path) -> Path:
    """Write a consistent copy of the environment's database to ``target`` (never a half-written file)."""
    target = target.expanduser().resolve()
    if target.exists():
        raise DatabaseError(f"{target} already exists; it was left as it is.", hint="Name a new backup file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if kind(env) == "sqlite" and external_url(env) is None:
            if not env.files.database.exists():
                raise DatabaseError(
                    f"The {env.name} environment has no database yet ({env.files.database}).",
                    hint=f"Start its server once: `invoke server-up {env.name}`.",
                )
            with (
                contextlib.closing(sqlite3.connect(env.files.database)) as source,
                contextlib.closing(sqlite3.connect(partial)) as copy,
            ):
                source.backup(copy)
        else:
            url, started = _postgres_url(env)
            try:
                run(
                    [_client_program(env, "pg_dump"), "-Fc", "--no-owner", "-f", str(partial)],
                    env=_pg_env(url),
                    what=f"Backing up the {env.name} database (pg_dump)",
                    hint="Check that the database answers (`invoke server-status`).",
                    timeout=3600,
                )
            finally:
                if started:
                    database.stop(env)
        os.chmod(partial, 0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def check_restorable(env: Environment, source: Path) -> None:
    """Refuse a file that is not a backup of this environment's database kind (before anything is touched)."""
    if not source.is_file():
        raise DatabaseError(f"The backup file {source} does not exist.", hint="Name a file `invoke db-backup` wrote.")
    if kind(env) == "sqlite" and external_url(env) is None:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as db:
                ok = db.execute("PRAGMA quick_check").fetchone()
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as error:
            raise DatabaseError(
                f"{source} is not a sqlite backup ({error}).", hint="Name a file `invoke db-backup` wrote for sqlite."
            ) from None
        if ok != ("ok",) or "flow_run" not in tables:
            raise DatabaseError(
                f"{source} is not a Prefect sqlite backup.", hint="Name a file `invoke db-backup` wrote."
            )
        return
    listed = subprocess.run(
        [_client_program(env, "pg_restore"), "-l", str(source)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0 or "flow_run" not in listed.stdout:
        raise DatabaseError(
            f"{source} is not a PostgreSQL backup of a Prefect database.",
            hint="Name a file `invoke db-backup` wrote for postgresql.",
        )


def restore_database(env: Environment, source: Path, *, safety_copy: Path) -> None:
    """Replace the environment's database by ``source`` (server stopped by the caller); ``safety_copy`` first."""
    source = source.expanduser().resolve()
    check_restorable(env, source)
    backup(env, safety_copy)
    if kind(env) == "sqlite" and external_url(env) is None:
        with (
            contextlib.closing(sqlite3.connect(source)) as backup_db,
            contextlib.closing(sqlite3.connect(env.files.database)) as live,
        ):
            backup_db.backup(live)
        return
    url, started = _postgres_url(env)
    try:
        run(
            [
                _client_program(env, "pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "-d",
                _pg_env(url)["PGDATABASE"],
                str(source),
            ],
            env=_pg_env(url),
            what=f"Restoring the {env.name} database (pg_restore)",
            hint=f"Nothing was changed (one transaction). The copy taken before is {safety_copy}.",
            timeout=3600,
        )
    finally:
        if started:
            database.stop(env)


# --- around the running server --------------------------------------------------------------------------------


def backup(env: Environment, target: Path | None = None) -> Path:
    """Write a consistent copy of ``env``'s database to ``target`` (default: ``$PREFECT_HOME/backups/``)."""
    return copy_database(env, target or default_backup_path(env))


@dataclass(frozen=True)
class Restored:
    source: Path
    safety_copy: Path
    restarted: bool


def restore(env: Environment, source: Path, environ: Mapping[str, str]) -> Restored:
    """Replace ``env``'s database by the backup ``source``; refuse while runs are in flight."""
    source = source.expanduser().resolve()
    check_restorable(env, source)
    was_running = servers.is_healthy(env.local_api_url)
    if was_running:
        in_flight = inflight.count(env)
        if in_flight is None:
            raise DatabaseError(
                f"Cannot ask the {env.name} server which flow runs are in flight; nothing was restored.",
                hint=f"Check `invoke server-status`, or stop the server (`invoke server-down {env.name}`) and retry.",
            )
        if in_flight:
            raise DatabaseError(
                f"{in_flight} flow run(s) of {env.name} are in flight (pending, running, paused or cancelling); "
                "nothing was restored.",
                hint="Wait for them to finish (or cancel them in the UI), then retry.",
            )
    safety = default_backup_path(env)
    safety = safety.with_name(f"before-restore-{safety.name}")
    servers.server_down(env)
    restore_database(env, source, safety_copy=safety)
    if was_running:
        servers.server_up(env, environ)
    return Restored(source, safety, was_running)
