"""The kit-managed PostgreSQL cluster of an environment (``PREFECT_JULIA_DATABASE=postgresql`` without an
external URL): its folder in ``$PREFECT_HOME/postgres/``, ``initdb`` on first use, ``pg_ctl`` start and stop on a
free local port with the Unix socket in that folder, and password authentication with a generated password kept
in the git-ignored ``envs/<env>.local.env``. As root the cluster runs as the unprivileged ``postgres`` user
(``runuser``), so every folder above the home must be reachable by that user. Passwords go to programs through
the environment (``PGPASSWORD``), never on a command line, and are masked wherever a location is shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prefect_julia.core.errors import DatabaseError
from prefect_julia.core.files import tail
from prefect_julia.core.processes import describe_pid, port_is_free, port_owner
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.settings import set_local_setting

DB_NAME = "prefect"
DB_USER = "prefect"
#: The unprivileged user a cluster runs as when the kit runs as root.
CLUSTER_USER = "postgres"
#: Longest Unix socket path the kernel takes (108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 107
#: Prefect's own names for an external database URL (the second is its newer alias).
URL_SETTINGS = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``********``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1********@", url)


@dataclass(frozen=True)
class Cluster:
    """Paths and settings of an environment's kit-managed PostgreSQL cluster."""

    env: Environment
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", self.env.files.postgres)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def marker(self) -> Path:
        return self.env.files.postgres_marker

    @property
    def bin(self) -> Path:
        return Path(self.env.require("PREFECT_JULIA_POSTGRES_BIN")).expanduser()

    @property
    def local_env(self) -> Path:
        return self.env.local_file

    def program(self, name: str) -> str:
        path = self.bin / name
        if not os.access(path, os.X_OK):
            raise DatabaseError(
                f"The PostgreSQL program {name} is missing: {path} does not exist or cannot run. "
                f"The {self.env.name} environment uses PREFECT_JULIA_DATABASE=postgresql.",
                hint="Install the PostgreSQL server (`bash scripts/bootstrap.sh` does, or `apt-get install postgresql`),"
                " or set PREFECT_JULIA_POSTGRES_BIN to the folder holding initdb and pg_ctl.",
            )
        return str(path)

    def runner(self) -> list[str]:
        """The prefix that runs a server program as the cluster's user (initdb and postgres refuse root)."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", CLUSTER_USER, "--"]

    def owner_ids(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            raise DatabaseError(
                f"The kit runs as root, and PostgreSQL refuses root, but there is no {CLUSTER_USER!r} user.",
                hint="Install the PostgreSQL server package (it creates the user), or run the kit as a normal user.",
            ) from None
        return entry.pw_uid, entry.pw_gid

    def pid(self) -> int | None:
        """The postmaster's pid when it runs (from ``postmaster.pid``), else None."""
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError, IndexError):
            return None
        ours = b"postgres" in cmd and stat != "Z" and Path(cwd) == self.data.resolve()
        return pid if ours else None

    def port(self) -> int | None:
        raw = self.env.get("PREFECT_JULIA_DATABASE_PORT")
        if not raw:
            return None
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise DatabaseError(
                f"PREFECT_JULIA_DATABASE_PORT={raw!r} is not a port number.",
                hint=f"Use a free port, e.g. 5433, in envs/{self.env.name}.local.env.",
            )
        return int(raw)

    def password(self) -> str | None:
        return self.env.lookup("PREFECT_JULIA_DATABASE_PASSWORD")

    def url(self, port: int, password: str) -> str:
        return f"postgresql+asyncpg://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"

    def size(self) -> int:
        total = 0
        for path in self.data.rglob("*") if self.data.is_dir() else ():
            with contextlib.suppress(OSError):
                if path.is_file():
                    total += path.stat().st_size
        return total


def run(
    argv: Sequence[str],
    *,
    what: str,
    hint: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a database program; a failure is a DatabaseError with its exit code and the tail of its output."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DatabaseError(f"{what} failed: {error}.", hint=hint) from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        if log is not None and log.exists():
            output = f"{output}\n{tail(log, 12)}".strip()
        lines = "\n".join("    " + line for line in output.splitlines()[-15:])
        raise DatabaseError(f"{what} failed (exit code {done.returncode}):\n{lines}", hint=hint)
    return done


def _reachable_by(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder above ``path`` the user ``uid`` cannot enter, or None when all can be entered."""
    for folder in [*reversed(path.parents)]:
        try:
            st = folder.stat()
        except OSError:
            return folder
        if st.st_uid == uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return folder
    return None


def check_folder(cluster: Cluster) -> None:
    """Refuse a data folder the kit did not create, a broken one, or one the cluster's user cannot reach."""
    env = cluster.env
    socket_path = cluster.folder / ".s.PGSQL.65535"
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise DatabaseError(
            f"The PostgreSQL socket path under {cluster.folder} would be longer than the system allows.",
            hint=f"Set PREFECT_JULIA_HOME in envs/{env.name}.local.env to a shorter folder.",
        )
    ids = cluster.owner_ids()
    if ids is not None:
        blocked = _reachable_by(cluster.folder, *ids)
        if blocked is not None:
            raise DatabaseError(
                f"The {CLUSTER_USER} user (PostgreSQL refuses to run as root) cannot enter {blocked}, "
                f"so it cannot run a cluster in {cluster.folder}.",
                hint=f"Allow it (`chmod o+x {blocked}`), or set PREFECT_JULIA_HOME in envs/{env.name}.local.env "
                "to a folder every user can enter.",
            )
    if cluster.data.exists() and any(cluster.data.iterdir()):
        if not cluster.marker.exists():
            raise DatabaseError(
                f"{cluster.data} holds data the kit did not create; it was left untouched.",
                hint=f"Move it away to let the kit create its own cluster, or point PREFECT_API_DATABASE_CONNECTION_URL "
                f"in envs/{env.name}.local.env at that database.",
            )
        version_file = cluster.data / "PG_VERSION"
        wanted = _server_version(cluster)
        if not version_file.exists() or not (cluster.data / "global" / "pg_control").exists():
            raise DatabaseError(
                f"The PostgreSQL data folder {cluster.data} is damaged (PG_VERSION or global/pg_control is missing); "
                "it was left untouched.",
                hint=f"Move it away and restore a backup: `invoke server-up {env.name}` creates an empty cluster, then "
                f"`invoke db-restore FILE {env.name}`.",
            )
        have = version_file.read_text().strip()
        if wanted and have != wanted:
            raise DatabaseError(
                f"{cluster.data} was made by PostgreSQL {have}, but {cluster.bin} holds PostgreSQL {wanted}.",
                hint=f"Set PREFECT_JULIA_POSTGRES_BIN to the PostgreSQL {have} programs (e.g. /usr/lib/postgresql/{have}/bin).",
            )


def _server_version(cluster: Cluster) -> str:
    done = run(
        [cluster.program("postgres"), "--version"],
        what="Asking PostgreSQL its version",
        hint="Check the PostgreSQL installation in PREFECT_JULIA_POSTGRES_BIN.",
    )
    found = re.search(r"(\d+)(?:\.\d+)?", done.stdout)
    return found.group(1) if found else ""


def choose_port(cluster: Cluster) -> int:
    port = cluster.port()
    if port is not None:
        return port
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    set_local_setting(cluster.local_env, "PREFECT_JULIA_DATABASE_PORT", str(port))
    return port


def initdb(cluster: Cluster, password: str) -> None:
    env = cluster.env
    cluster.folder.mkdir(parents=True, exist_ok=True)
    ids = cluster.owner_ids()
    os.chmod(cluster.folder, 0o700)
    pwfile = cluster.folder / "initdb.pw"
    pwfile.write_text(password + "\n")
    os.chmod(pwfile, 0o600)
    if ids is not None:
        os.chown(cluster.folder, *ids)
        os.chown(pwfile, *ids)
    try:
        run(
            [
                *cluster.runner(),
                cluster.program("initdb"),
                "-D",
                str(cluster.data),
                "-U",
                DB_USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            what=f"Creating the {env.name} PostgreSQL cluster (initdb)",
            hint=f"Fix the cause above, remove {cluster.folder}, and run `invoke server-up {env.name}` again.",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    marker = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": DB_USER, "database": DB_NAME}
    cluster.marker.write_text(json.dumps(marker) + "\n")


def start(cluster: Cluster, port: int) -> None:
    env = cluster.env
    if not port_is_free("127.0.0.1", port):
        owner = port_owner(port)
        held_by = describe_pid(owner) if owner else "another process"
        raise DatabaseError(
            f"Port {port} for the {env.name} PostgreSQL is held by {held_by}.",
            hint=f"Stop that process, or set PREFECT_JULIA_DATABASE_PORT to a free port in envs/{env.name}.local.env.",
        )
    wait_for_dead_postmaster(cluster)
    options = f"-p {port} -k {cluster.folder} -c listen_addresses=127.0.0.1"
    argv = [*cluster.runner(), cluster.program("pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.log),
            "-w", "-t", "90", "-o", options, "start"]  # fmt: skip
    for attempt in range(3):
        try:
            run(
                argv,
                what=f"Starting the {env.name} PostgreSQL (pg_ctl start)",
                hint=f"Read {cluster.log}; its data in {cluster.data} was left untouched.",
                log=cluster.log,
            )
            return
        except DatabaseError:
            # After a kill -9, orphaned backends may hold the shared memory for a moment: try again.
            if attempt == 2 or "still in use" not in tail(cluster.log, 20):
                raise
            time.sleep(3)


def wait_for_dead_postmaster(cluster: Cluster, timeout: float = 20) -> None:
    """After a kill -9 the old postmaster (and its backends) may linger for a moment: wait until they are gone."""
    try:
        old = int((cluster.data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(old, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return  # a process of another user took the pid: postgres itself sees it is not its postmaster
        time.sleep(0.2)


async def _probe(url: str, *, create: bool = False) -> None:
    import asyncpg

    parts = urllib.parse.urlsplit(url.replace("+asyncpg", ""))
    kwargs = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": urllib.parse.unquote(parts.username or ""),
        "password": urllib.parse.unquote(parts.password or ""),
        "timeout": 10,
    }
    database = parts.path.lstrip("/") or "postgres"
    if create:
        conn = await asyncpg.connect(database="postgres", **kwargs)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()
    conn = await asyncpg.connect(database=database, **kwargs)
    await conn.close()


def check_connection(url: str, *, where: str, hint_setting: str, create: bool = False) -> None:
    """Connect once to ``url``; wrong credentials, a missing database or no answer are DatabaseErrors."""
    import asyncio

    import asyncpg

    shown = mask_url(url)
    try:
        asyncio.run(_probe(url, create=create))
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        raise DatabaseError(
            f"The {where} database at {shown} refused the credentials.",
            hint=f"Correct {hint_setting}.",
        ) from None
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseError(f"The {where} database at {shown} does not exist.", hint="Create it first.") from None
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise DatabaseError(
            f"The {where} database at {shown} did not answer: {error}.",
            hint=f"Start it, or correct {hint_setting}.",
        ) from None
