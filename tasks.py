"""The kit's front door: `invoke --list` shows every task, `invoke --help TASK` its options.

Tasks only parse arguments, call the library in ``src/prefect_julia`` and print; errors from the library
become a message and a non-zero exit in ``prefect_julia.edge``. ENV is ``dev`` or ``prod``; left out, it is
the environment of the current git branch (``envs/branches.toml``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path

from invoke import task
from invoke.context import Context

from prefect_julia import environments, profiles, servers
from prefect_julia.console import Progress, human_bytes, table
from prefect_julia.edge import guarded
from prefect_julia.files import tail
from prefect_julia.invoke_args import allow_optional_positionals

ROOT = Path(__file__).resolve().parent
allow_optional_positionals()  # `invoke server-up` and `invoke server-up dev` both work


def _env(name: str | None = None) -> environments.Environment:
    notes: list[str] = []
    env = environments.resolve_environment(name or None, ROOT, os.environ, notes=notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return env


def _sync_profiles(active: str) -> profiles.SyncReport:
    return profiles.sync(ROOT / profiles.PROFILES_FILE, environments.all_environments(ROOT, os.environ), active=active)


@task(
    positional=["env"],
    help={"env": "dev or prod (default: the current branch's)", "shell": "print export lines to eval"},
)
@guarded
def env(c: Context, env: str | None = None, shell: bool = False) -> None:
    """Show an environment's resolved settings and where each came from (secrets masked)."""
    resolved = _env(env)
    if shell:
        exports = {**resolved.prefect_settings(), "PREFECT_JULIA_ENV": resolved.name}
        exports["PREFECT_PROFILES_PATH"] = str(ROOT / profiles.PROFILES_FILE)
        for name, value in resolved.values.items():
            if not value.secret and name.startswith(("PREFECT_JULIA_", "PREFECT_DATA")):
                exports[name] = value.value
        for name, value in exports.items():
            print(f"export {name}={shlex.quote(value)}")
        return
    print(f"environment {resolved.name}: {resolved.ui_url} (PREFECT_HOME {resolved.home})")
    print(table(["setting", "value", "source"], environments.describe_sources(resolved)))


@task(name="profile-sync")
@guarded
def profile_sync(c: Context) -> None:
    """Write profiles/profiles.toml: one Prefect profile per environment, your own edits kept."""
    report = _sync_profiles(active=_env().name)
    changes = [f"created {', '.join(report.created)}"] if report.created else []
    changes += [f"updated {', '.join(report.updated)}"] if report.updated else []
    print(f"{report.path.relative_to(ROOT)}: {'; '.join(changes) or 'already up to date'}")


@task(
    name="server-up",
    positional=["env"],
    help={"env": "dev or prod (default: the current branch's)", "timeout": "seconds to wait (0: setting)"},
)
@guarded
def server_up(c: Context, env: str | None = None, timeout: float = 0.0) -> None:
    """Start the environment's Prefect server in the background and wait until it is healthy."""
    resolved = _env(env)
    _sync_profiles(active=resolved.name)
    progress = Progress(f"waiting for the {resolved.name} server on port {resolved.port}")
    try:
        result = servers.server_up(resolved, os.environ, progress=progress, timeout=timeout or None)
    finally:
        progress.done()
    for note in result.notes:
        print(f"note: {note}")
    state = "already up" if result.already_up else f"started in {result.seconds:.1f} s"
    print(f"{resolved.name} server {state} (pid {result.pid}): {resolved.ui_url}")


@task(name="server-down", positional=["env"], help={"env": "dev or prod (default: the current branch's)"})
@guarded
def server_down(c: Context, env: str | None = None) -> None:
    """Stop the environment's server (and its worker first)."""
    resolved = _env(env)
    result = servers.server_down(resolved)
    for note in result.notes:
        print(f"note: {note}")
    if not result.was_running:
        print(f"{resolved.name} server is not running: nothing to stop.")
    else:
        print(f"{resolved.name} server stopped{' (killed after the grace period)' if result.killed else ''}.")


@task(name="server-status")
@guarded
def server_status(c: Context) -> None:
    """Show every environment's server: branch, port, pid, health, database and URL."""
    mapping = environments.load_branch_mapping(ROOT)
    rows = []
    for resolved in environments.all_environments(ROOT, os.environ):
        s = servers.server_status(resolved, mapping.branches_of(resolved.name))
        rows.append(
            [
                s.env,
                s.branches,
                s.port,
                s.pid or "-",
                "healthy" if s.healthy else ("starting/unhealthy" if s.pid else "down"),
                f"{s.database} ({human_bytes(s.database_bytes)})",
                s.url,
            ]
        )
    print(table(["env", "branch", "port", "pid", "state", "database", "url"], rows))


@task(
    name="server-logs",
    positional=["env"],
    help={
        "env": "dev or prod (default: the current branch's)",
        "follow": "keep printing new lines",
        "lines": "how many lines",
    },
)
@guarded
def server_logs(c: Context, env: str | None = None, follow: bool = False, lines: int = 50) -> None:
    """Show the environment's server log (--follow to keep watching; Ctrl-C stops)."""
    resolved = _env(env)
    if not resolved.log_file.exists():
        print(f"No log yet at {resolved.log_file}: start the server with `invoke server-up {resolved.name}`.")
        return
    if not follow:
        print(tail(resolved.log_file, lines))
        return
    with contextlib.suppress(KeyboardInterrupt):
        servers.follow_log(
            resolved.log_file, lines=lines, write=lambda s: print(s, end="", flush=True), stop=lambda: False
        )
