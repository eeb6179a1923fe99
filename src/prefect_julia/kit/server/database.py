"""The database of an environment's server: sqlite, a kit-managed PostgreSQL cluster, or an external URL.

``PREFECT_JULIA_DATABASE=sqlite`` (the default) keeps Prefect's own ``$PREFECT_HOME/prefect.db``. With
``postgresql`` and no ``PREFECT_API_DATABASE_CONNECTION_URL``, the kit runs a cluster of its own
(:mod:`.postgres`). An external URL means the kit manages no database; it only checks that it answers.
Backups of either: :mod:`.backups`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from prefect_julia.core.errors import DatabaseError
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.settings import DATABASE, set_local_setting
from prefect_julia.kit.server.postgres import (
    DB_NAME,
    DB_USER,
    Cluster,
    check_connection,
    check_folder,
    choose_port,
    initdb,
    mask_url,
    run,
    start,
)

#: Prefect's own names for an external database URL (the second is its newer alias).
URL_SETTINGS = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


def kind(env: Environment) -> str:
    return env.choice(DATABASE, error=DatabaseError)


def external_url(env: Environment) -> str | None:
    for name in URL_SETTINGS:
        found = env.lookup(name)
        if found:
            return found
    return None


def is_managed(env: Environment) -> bool:
    """True when the kit runs this environment's PostgreSQL itself."""
    return kind(env) == "postgresql" and external_url(env) is None


@dataclass(frozen=True)
class Ready:
    """What the server needs to use the database (extra process settings), and what happened on the way."""

    server_env: dict[str, str]
    started: bool = False
    notes: tuple[str, ...] = ()


def ensure_running(env: Environment) -> Ready:
    """Make the environment's database ready for its server: start (and on first use create) a managed cluster."""
    db_kind = kind(env)
    url = external_url(env)
    if db_kind == "sqlite" and url is None:
        return Ready({})
    if url is not None:
        if url.startswith("postgresql"):
            check_connection(
                url,
                where=f"{env.name} external",
                hint_setting=f"PREFECT_API_DATABASE_CONNECTION_URL in envs/{env.name}.local.env",
            )
        return Ready({"PREFECT_SERVER_DATABASE_CONNECTION_URL": url, "PREFECT_API_DATABASE_CONNECTION_URL": url})
    cluster = Cluster(env)
    cluster.program("pg_ctl")
    cluster.program("initdb")
    notes: list[str] = []
    check_folder(cluster)
    password = cluster.password()
    fresh = not (cluster.data / "PG_VERSION").exists()
    if fresh:
        if password is None:
            password = secrets.token_urlsafe(24)
            set_local_setting(cluster.local_env, "PREFECT_JULIA_DATABASE_PASSWORD", password)
            notes.append(f"Generated the {env.name} database password into envs/{env.name}.local.env (mode 0600).")
        initdb(cluster, password)
        notes.append(f"Created the {env.name} PostgreSQL cluster in {cluster.folder}.")
    elif password is None:
        raise DatabaseError(
            f"The {env.name} PostgreSQL cluster in {cluster.folder} exists, but PREFECT_JULIA_DATABASE_PASSWORD is not "
            f"set (envs/{env.name}.local.env).",
            hint=f"Put its password back into envs/{env.name}.local.env as PREFECT_JULIA_DATABASE_PASSWORD=...",
        )
    port = choose_port(cluster)
    started = False
    if cluster.pid() is None:
        start(cluster, port)
        started = True
        if not fresh:
            notes.append(f"Started the {env.name} PostgreSQL on port {port}.")
    url = cluster.url(port, password)
    try:
        check_connection(
            url,
            where=f"{env.name} kit-managed",
            hint_setting=f"PREFECT_JULIA_DATABASE_PASSWORD in envs/{env.name}.local.env",
            create=fresh or started,
        )
    except DatabaseError:
        if started:
            stop(env)  # leave nothing running behind a failed start
        raise
    return Ready({"PREFECT_SERVER_DATABASE_CONNECTION_URL": url}, started=started, notes=tuple(notes))


def stop(env: Environment, *, grace: float = 60) -> bool:
    """Stop the environment's managed cluster (after its server); False when none ran."""
    if kind(env) != "postgresql" or external_url(env) is not None:
        return False
    cluster = Cluster(env)
    if cluster.pid() is None:
        return False
    run(
        [
            *cluster.runner(),
            cluster.program("pg_ctl"),
            "-D",
            str(cluster.data),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(grace)),
            "stop",
        ],
        what=f"Stopping the {env.name} PostgreSQL (pg_ctl stop)",
        hint=f"Read {cluster.log}.",
        log=cluster.log,
    )
    return True


@dataclass(frozen=True)
class Status:
    kind: str
    location: str
    size: int
    running: bool | None  # None: not the kit's to run (sqlite, external)


def status(env: Environment) -> Status:
    """Database kind, where it lives (password masked) and its size, for ``server-status``."""
    db_kind = kind(env)
    url = external_url(env)
    if url is not None:
        return Status(f"{db_kind} (external)", mask_url(url), 0, None)
    if db_kind == "sqlite":
        return Status("sqlite", str(env.files.database), env.files.database_bytes(), None)
    cluster = Cluster(env)
    port = env.get("PREFECT_JULIA_DATABASE_PORT") or "?"
    running = cluster.pid() is not None
    location = f"postgresql://{DB_USER}:********@127.0.0.1:{port}/{DB_NAME} in {cluster.folder}"
    return Status("postgresql", location, cluster.size(), running)
