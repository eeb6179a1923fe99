"""Local Prefect servers, one per environment: start detached, wait until healthy, stop, report, show logs.

``prefect server start --background`` dies of SIGPIPE when started from a script, so the kit starts the
foreground command itself as a detached child, keeps its pid file and log file in the environment's
``PREFECT_HOME``, and polls ``GET /api/health``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import ServerError
from prefect_julia.core.files import tail
from prefect_julia.core.processes import (
    describe_pid,
    port_is_free,
    port_owner,
)
from prefect_julia.kit.access import identity
from prefect_julia.kit.access.prefect_api import is_healthy as is_healthy  # owned by access; asked here too
from prefect_julia.kit.access.security import (
    check_server_settings,
    ensure_auth_string,
    private_home,
    server_env,
)
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.julia import sessions
from prefect_julia.kit.server import database, server_process, template
from prefect_julia.kit.server.serverlog import tail_records

Progress = Callable[[float], None]
POLL_INTERVAL = 0.1


def server_command(env: Environment) -> list[str]:
    return server_process.command(env.host, env.port)


@dataclass(frozen=True)
class UpResult:
    env: str
    pid: int
    already_up: bool
    seconds: float
    notes: tuple[str, ...] = ()
    #: The environment as it is after the start (with the auth string a first start wrote).
    resolved: Environment | None = None


def server_up(
    env: Environment,
    environ: Mapping[str, str],
    *,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> UpResult:
    """Start the server of ``env`` unless a healthy one runs; return once it is healthy.

    Two calls at once for one environment take turns on a lock, so exactly one server results.
    """
    started = time.monotonic()
    timeout = env.health_timeout if timeout is None else timeout
    notes: list[str] = []
    check_server_settings(env, before_start=True)  # a bad auth setting is refused before anything is written
    if not env.files.server_pid.exists():
        _check_port(env)  # a bad host or a taken port is refused before anything is written
    private_home(env, managed_postgres=database.is_managed(env))
    server = env.files.server
    with server.lock():
        db = database.ensure_running(env)
        notes.extend(db.notes)
        record = server.record()
        if record is not None and db.started:
            server.stop(grace=10)  # its database had stopped: a fresh server reconnects cleanly
            notes.append(f"Restarted the {env.name} server: its database had stopped.")
            record = None
        if record is not None:
            if is_healthy(env.local_api_url):
                identity.check(env)
            else:
                _wait_healthy(env, record.pid, None, started, timeout, progress)
            return UpResult(env.name, record.pid, True, time.monotonic() - started, resolved=env)
        stale = server.forget_stale()
        if stale is not None:
            notes.append(stale)
        _check_port(env)
        env = ensure_auth_string(env, environ)  # after every check: a refused start writes nothing
        identity.ensure(env)
        notes.extend(template.seed_home(env, environ))  # a new sqlite home: a migrated copy, not a migration
        command = server_command(env)
        try:  # the timeout is the server's own: building a database template before it does not count
            process = server.start(
                command,
                env={**server_env(env, environ), **db.server_env},
                cwd=env.root,
                ready=lambda started: _wait_healthy(
                    env, started.pid, started.poll, time.monotonic(), timeout, progress
                ),
            )
        except BaseException:
            if db.started:
                database.stop(env)
            raise
        if port_owner(env.port) != process.pid:
            identity.check(env)  # another process answered on the port: whose (our own listener needs no request)
        return UpResult(env.name, process.pid, False, time.monotonic() - started, tuple(notes), env)


def _check_port(env: Environment) -> None:
    """Raise ``ServerError`` unless the server of ``env`` can listen on its host and port."""
    try:
        free = port_is_free(env.host, env.port)
    except OSError as error:
        raise ServerError(
            f"Cannot listen on {env.host}:{env.port} for the {env.name} server: {error.strerror or error}.",
            hint=f"Check PREFECT_JULIA_HOST in envs/{env.name}.env (e.g. 127.0.0.1).",
        ) from None
    if not free:
        identity.check(env)  # another checkout's server: say whose
        owner = port_owner(env.port)
        held_by = describe_pid(owner) if owner else "another process"
        raise ServerError(
            f"Port {env.port} ({env.name}) is held by {held_by}, which is not this environment's server.",
            hint=f"Stop that process, or set PREFECT_JULIA_PORT to a free port in envs/{env.name}.local.env.",
        )


def _wait_healthy(
    env: Environment,
    pid: int,
    poll: Callable[[], int | None] | None,
    started: float,
    timeout: float,
    progress: Progress | None,
) -> None:
    while True:
        if is_healthy(env.local_api_url, timeout=1.0):
            return
        elapsed = time.monotonic() - started
        exit_code = poll() if poll is not None else None
        if exit_code is not None:
            raise ServerError(
                f"The {env.name} server exited during start-up (exit code {exit_code}). Last lines of {env.files.server_log}:\n"
                + tail(env.files.server_log, 25),
                hint=f"Fix the cause above, then run `invoke server-up {env.name}` again.",
            )
        if elapsed > timeout:
            raise ServerError(
                f"The {env.name} server (pid {pid}) was not healthy after {timeout:.0f} s; it was stopped. "
                f"Last lines of {env.files.server_log}:\n" + tail(env.files.server_log, 25),
                hint=f"Raise PREFECT_JULIA_HEALTH_TIMEOUT in envs/{env.name}.local.env if the machine is slow.",
            )
        if progress is not None:
            progress(elapsed)
        time.sleep(POLL_INTERVAL)


@dataclass(frozen=True)
class DownResult:
    env: str
    was_running: bool
    killed: bool
    notes: tuple[str, ...] = ()


def server_down(env: Environment, *, grace: float = 10.0) -> DownResult:
    """Stop the server of ``env`` (and the kit's worker first); succeed when nothing runs."""
    notes: list[str] = []
    for dependent in env.files.dependents():
        stopped = dependent.stop(grace=grace)
        if stopped is not None:
            notes.append(f"Stopped the {dependent.name} (pid {stopped.pid}) first.")
    stopped_sessions = sessions.stop(env)
    if stopped_sessions:
        notes.append(f"Stopped {len(stopped_sessions)} warm Julia session(s) first.")
    server = env.files.server
    with server.lock() if env.home.exists() else contextlib.nullcontext():
        stale = server.forget_stale()
        if stale is not None:
            notes.append(stale)
        stopped = server.stop(grace=grace)
        was_running = stopped is not None
        killed = stopped is not None and stopped.killed
        if database.stop(env):  # after the server, which holds connections to it
            notes.append(f"Stopped the {env.name} PostgreSQL after the server.")
        return DownResult(env.name, was_running, killed, tuple(notes))


@dataclass(frozen=True)
class Status:
    env: str
    branches: str
    port: int
    pid: int | None
    healthy: bool
    database: str
    database_bytes: int
    url: str


def server_status(env: Environment, branches: str) -> Status:
    pid = env.files.server.pid()
    db = database.status(env)
    shown = f"{db.kind} {db.location}" + ("" if db.running is None else (" (up)" if db.running else " (down)"))
    return Status(
        env=env.name,
        branches=branches,
        port=env.port,
        pid=pid,
        healthy=pid is not None and is_healthy(env.local_api_url),
        database=shown,
        database_bytes=db.size,
        url=env.ui_url,
    )


def follow_log(path: Path, *, lines: int, write: Callable[[str], None], stop: Callable[[], bool]) -> None:
    """Print the last ``lines`` lines of ``path`` (begun at a record), then what is appended, until ``stop()``."""
    write(tail_records(path, lines) + "\n")
    with contextlib.suppress(FileNotFoundError), path.open("rb") as stream:
        stream.seek(0, 2)
        while not stop():
            chunk = stream.read()
            if chunk:
                write(chunk.decode("utf-8", "replace"))
            else:
                time.sleep(0.3)


def footprint(env: Environment) -> int:
    """Bytes the environment keeps on disk: its home (database, logs) and its data root."""
    total = 0
    for folder in (env.home, env.data_root):
        if folder.is_dir():
            total += sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return total
