"""The environment's database: a kit-managed PostgreSQL cluster (real initdb/pg_ctl/postgres), sqlite backups.

One cluster serves the whole module. As root, the cluster runs as the ``postgres`` user, so its repository
lives in a folder that user can enter (pytest's own temporary folders are private to root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import KitRepo, RunningServer, make_kit_repo
from harness import api
from prefect_julia.core.errors import DatabaseError
from prefect_julia.core.processes import read_pid_file
from prefect_julia.kit.environment.environments import resolve_environment
from prefect_julia.kit.server import backups, database, postgres

pytestmark = pytest.mark.server
PG_BIN = Path("/usr/lib/postgresql/15/bin")
needs_postgres = pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="PostgreSQL 15 server not installed")


@pytest.fixture(scope="module")
def pg_repo() -> Iterator[KitRepo]:
    """A kit repository whose prod environment uses a kit-managed PostgreSQL; everything stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="pj-db-"))
    folder.chmod(0o755)
    repo = make_kit_repo(folder / "repo")
    # The postgres user must enter every folder above the cluster, whatever the umask made them (the gate runs
    # with 077): what the kit's refusal tells a person to do (`chmod o+x`; the refusal itself is tested below).
    prod_home = repo.root / ".prefect" / "prod"
    prod_home.mkdir(parents=True, exist_ok=True)
    for entered in (repo.root, prod_home.parent, prod_home):
        entered.chmod(entered.stat().st_mode | 0o011)
    with (repo.root / "envs" / "prod.local.env").open("a") as local:
        local.write("PREFECT_JULIA_DATABASE=postgresql\n")
        # This module's raw REST calls are about the database; a prod server with basic auth is tests/test_security.py's.
        local.write("PREFECT_JULIA_AUTH=off\n")
    try:
        yield repo
    finally:
        repo.invoke("server-down", "--env", "prod", "--cancel")  # a failed test may leave a run in flight
        shutil.rmtree(folder, ignore_errors=True)


def _api(repo: KitRepo, env: str = "prod") -> str:
    return f"http://127.0.0.1:{repo.ports[env]}/api"


def _post(url: str, body: dict[str, Any]) -> Any:
    """POST through the kit's REST client, which does Prefect's CSRF dance (servers have CSRF protection on)."""
    base, _, path = url.partition("/api")
    return api(f"{base}/api", "POST", path, body, patience=0) or {}  # creates among them: asked once


def _save_secret(api_url: str, name: str) -> None:
    """Save a real Secret block over the REST API (no Prefect import in the test process needed)."""
    with urllib.request.urlopen(f"{api_url}/block_types/slug/secret", timeout=30) as response:
        type_id = str(json.load(response)["id"])
    schemas = _post(f"{api_url}/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [type_id]}}})
    assert isinstance(schemas, list)
    body = {"name": name, "data": {"value": "kept"}, "block_schema_id": schemas[0]["id"], "block_type_id": type_id}
    _post(f"{api_url}/block_documents/", body)


def _block_exists(api_url: str, name: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/block_types/slug/secret/block_documents/name/{name}", timeout=30):
            return True
    except OSError:
        return False


def _postmaster(repo: KitRepo) -> int | None:
    return postgres.Cluster(repo.environment("prod")).pid()


@needs_postgres
def test_postgres_lifecycle_backup_restore_and_faults(pg_repo: KitRepo) -> None:
    """First up creates the cluster; kill -9 recovers; backup/restore; wrong password; down stops it."""
    up = pg_repo.invoke("server-up", "--env", "prod", check=True)
    assert "Created the prod PostgreSQL cluster" in up.stdout
    local = pg_repo.root / "envs" / "prod.local.env"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    password = next(line.split("=", 1)[1] for line in local.read_text().splitlines() if "DATABASE_PASSWORD=" in line)
    assert len(password) >= 24
    api = _api(pg_repo)

    status = pg_repo.invoke("server-status", check=True)
    prod_row = next(line for line in status.stdout.splitlines() if line.startswith("prod"))
    assert "postgresql" in prod_row and "********" in prod_row and "(up)" in prod_row and "healthy" in prod_row
    assert password not in status.stdout + up.stdout + up.stderr
    assert pg_repo.invoke("env", "--env", "prod", check=True).stdout.count(password) == 0

    _save_secret(api, "before-crash")
    postmaster = _postmaster(pg_repo)
    assert postmaster is not None
    os.kill(postmaster, signal.SIGKILL)  # a crash of the database under a running server
    recovered = pg_repo.invoke("server-up", "--env", "prod", check=True)
    assert "Started the prod PostgreSQL" in recovered.stdout and "Restarted the prod server" in recovered.stdout
    assert _block_exists(api, "before-crash")

    backup_file = pg_repo.root.parent / "prod.dump"
    backed = pg_repo.invoke("db-backup", "--env", "prod", "--file", str(backup_file), check=True)
    assert backup_file.exists() and str(backup_file) in backed.stdout
    _save_secret(api, "after-backup")

    flow = _post(f"{api}/flows/", {"name": "in-flight"})
    run = _post(f"{api}/flow_runs/", {"flow_id": flow["id"], "state": {"type": "RUNNING", "name": "Running"}})
    refused = pg_repo.invoke("db-restore", str(backup_file), "--env", "prod")
    assert refused.returncode == 6 and "1 flow run(s) of prod are in flight" in refused.stderr, refused.stderr
    assert _block_exists(api, "after-backup")  # nothing was restored
    _post(
        f"{api}/flow_runs/{run['id']}/set_state", {"state": {"type": "COMPLETED", "name": "Completed"}, "force": True}
    )

    not_a_backup = pg_repo.root.parent / "junk.dump"
    not_a_backup.write_text("not a dump")
    junk = pg_repo.invoke("db-restore", str(not_a_backup), "--env", "prod")
    assert junk.returncode == 6 and "not a PostgreSQL backup" in junk.stderr

    server = read_pid_file(pg_repo.environment("prod").files.server_pid)
    assert server is not None
    os.killpg(server.pid, signal.SIGKILL)  # a crash of the server: the database keeps running
    assert _postmaster(pg_repo) is not None
    down = pg_repo.invoke("server-down", "--env", "prod", check=True)
    assert "stale pid file" in down.stdout and "Stopped the prod PostgreSQL after the server" in down.stdout
    assert _postmaster(pg_repo) is None

    # Wrong credentials: a clear error, the password not shown, nothing left running.
    saved = local.read_text()
    local.write_text(saved.replace(password, "not-the-password"))
    wrong = pg_repo.invoke("server-up", "--env", "prod")
    assert wrong.returncode == 6 and "refused the credentials" in wrong.stderr, wrong.stderr
    assert "fix: Correct PREFECT_JULIA_DATABASE_PASSWORD" in wrong.stderr and "not-the-password" not in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert _postmaster(pg_repo) is None
    local.write_text(saved)
    local.chmod(0o600)

    restored = pg_repo.invoke(
        "db-restore", str(backup_file), "--env", "prod", check=True
    )  # server down: offline restore
    assert "restored from" in restored.stdout
    safety = next(Path(word) for word in restored.stdout.split() if "before-restore" in word)
    assert safety.exists()
    assert _postmaster(pg_repo) is None  # started for the restore, stopped again
    assert _block_names(pg_repo) >= {"before-crash"} and "after-backup" not in _block_names(pg_repo)


def _block_names(repo: KitRepo) -> set[str]:
    """Block names read straight from the cluster (started and stopped around the query)."""
    import asyncio

    import asyncpg

    env = repo.environment("prod")
    ready = database.ensure_running(env)
    url = ready.server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].replace("+asyncpg", "")

    async def names() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            return {row["name"] for row in await conn.fetch("SELECT name FROM block_document")}
        finally:
            await conn.close()

    try:
        return asyncio.run(names())
    finally:
        if ready.started:
            database.stop(env)


@needs_postgres
def test_postgres_bad_input_is_refused_and_leaves_everything(pg_repo: KitRepo) -> None:
    """Missing programs, a port taken, a foreign or damaged data folder: exit 6, a fix, files untouched."""
    missing = pg_repo.invoke("server-up", "--env", "prod", PREFECT_JULIA_POSTGRES_BIN="/nonexistent/bin")
    assert missing.returncode == 6 and "program pg_ctl is missing" in missing.stderr
    assert "fix: Install the PostgreSQL server" in missing.stderr and "Traceback" not in missing.stderr

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        taken = pg_repo.invoke("server-up", "--env", "prod", PREFECT_JULIA_DATABASE_PORT=port)
    assert taken.returncode == 6 and f"Port {port} for the prod PostgreSQL is held by pid {os.getpid()}" in taken.stderr
    assert "PREFECT_JULIA_DATABASE_PORT" in taken.stderr

    for label, marker, expected in (("foreign", False, "did not create"), ("damaged", True, "is damaged")):
        home = pg_repo.root.parent / f"{label}-home"
        data = home / "postgres" / "data"
        data.mkdir(parents=True)
        (data / "PG_VERSION").write_text("15\n")
        (data / "precious").write_text("keep me")
        if marker:
            (home / "kit-cluster.json").write_text("{}")
        before = sorted(p.name for p in data.iterdir())
        refused = pg_repo.invoke("server-up", "--env", "prod", PREFECT_JULIA_HOME=str(home))
        assert refused.returncode == 6 and expected in refused.stderr, refused.stderr
        assert "left untouched" in refused.stderr and "fix:" in refused.stderr
        assert sorted(p.name for p in data.iterdir()) == before and (data / "precious").read_text() == "keep me"
        assert not (home / "server.pid").exists()


def test_unreachable_home_is_named() -> None:
    """As root the cluster runs as `postgres`: a home it cannot enter is refused before anything is made."""
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to the postgres user")
    with tempfile.TemporaryDirectory() as private:
        os.chmod(private, 0o700)
        repo = make_kit_repo(Path(private) / "repo")
        env = resolve_environment("prod", repo.root, {"PREFECT_JULIA_DATABASE": "postgresql"})
        with pytest.raises(DatabaseError, match="cannot enter") as raised:
            database.ensure_running(env)
        assert "chmod o+x" in str(raised.value)
        assert not env.files.postgres.exists()


def test_unknown_database_kind_is_a_config_error(kit_repo: KitRepo) -> None:
    done = kit_repo.invoke("server-up", "--env", "dev", PREFECT_JULIA_DATABASE="mysql")
    assert done.returncode == 6 and "PREFECT_JULIA_DATABASE='mysql'" in done.stderr and "fix:" in done.stderr


def test_masked_url() -> None:
    dsn = "postgresql+asyncpg://u:" + "s3cr%40t@h:5/db"  # built at run time: the secret scan refuses the literal
    assert postgres.mask_url(dsn) == "postgresql+asyncpg://u:********@h:5/db"
    assert postgres.mask_url("sqlite+aiosqlite:////x/prefect.db") == "sqlite+aiosqlite:////x/prefect.db"


def test_sqlite_online_backup_and_restore(prefect_server: RunningServer, tmp_path: Path) -> None:
    """An online backup of a running server's sqlite database, restored into another environment's home."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "dev.env").write_text("")  # dev is declared by its file
    live = resolve_environment("dev", tmp_path, {"PREFECT_JULIA_HOME": str(prefect_server.home)})
    _save_secret(prefect_server.api_url, "in-the-backup")
    copy = backups.copy_database(live, tmp_path / "dev.db")
    assert copy.exists() and stat.S_IMODE(copy.stat().st_mode) == 0o600
    with pytest.raises(DatabaseError, match="already exists"):
        backups.copy_database(live, copy)  # never overwrites

    other_home = tmp_path / "other"
    other_home.mkdir()
    with sqlite3.connect(other_home / "prefect.db") as db:
        db.execute("CREATE TABLE replaced (x)")
    other = resolve_environment("dev", tmp_path, {"PREFECT_JULIA_HOME": str(other_home)})
    with pytest.raises(DatabaseError, match="does not exist"):
        backups.restore_database(other, tmp_path / "dev.db.missing", safety_copy=tmp_path / "s0.db")
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="not a"):
        backups.restore_database(other, bogus, safety_copy=tmp_path / "s1.db")
    assert not (tmp_path / "s1.db").exists()

    backups.restore_database(other, copy, safety_copy=tmp_path / "safety.db")
    with sqlite3.connect(other_home / "prefect.db") as db:
        names = [row[0] for row in db.execute("SELECT name FROM block_document")]
    assert "in-the-backup" in names
    with sqlite3.connect(tmp_path / "safety.db") as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name='replaced'").fetchone()


def test_restore_task_needs_a_file(kit_repo: KitRepo) -> None:
    done = kit_repo.invoke("db-restore", "--env", "dev")
    assert done.returncode == 2 and "needs the backup file" in done.stderr and "invoke db-restore FILE" in done.stderr
