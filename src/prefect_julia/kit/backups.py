"""Backing up and restoring an environment's database around its running server.

A backup is taken while the server runs. A restore refuses while flow runs are in flight, keeps a copy of
the database it replaces, stops the worker, server and database, restores, and starts the server again when it
was running before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import DatabaseError
from prefect_julia.kit import database, inflight, servers
from prefect_julia.kit.environments import Environment


def backup(env: Environment, target: Path | None = None) -> Path:
    """Write a consistent copy of ``env``'s database to ``target`` (default: ``$PREFECT_HOME/backups/``)."""
    return database.backup(env, target or database.default_backup_path(env))


@dataclass(frozen=True)
class Restored:
    source: Path
    safety_copy: Path
    restarted: bool


def restore(env: Environment, source: Path, environ: Mapping[str, str]) -> Restored:
    """Replace ``env``'s database by the backup ``source``; refuse while runs are in flight."""
    source = source.expanduser().resolve()
    database.check_restorable(env, source)
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
    safety = database.default_backup_path(env)
    safety = safety.with_name(f"before-restore-{safety.name}")
    servers.server_down(env)
    database.restore(env, source, safety_copy=safety)
    if was_running:
        servers.server_up(env, environ)
    return Restored(source, safety, was_running)
