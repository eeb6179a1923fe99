"""kit/environment/home.py: where an environment's files live, which of them are the kit's, and making them 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prefect_julia.kit.environment.home import Home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_is_named_inside_the_home(tmp_path: Path) -> None:
    home = Home(tmp_path / "dev")
    named = {
        home.database: "prefect.db",
        home.server_pid: "server.pid",
        home.server_log: "server.log",
        home.server_lock: "server.lock",
        home.worker_pid: "worker.pid",
        home.worker_log: "worker.log",
        home.worker_lock: "worker.lock",
        home.identity: "kit-identity.json",
        home.code: "code",
        home.postgres: "postgres",
        home.postgres_marker: "kit-cluster.json",
        home.backups: "backups",
    }
    for path, name in named.items():
        assert path == home.path / name
    assert [b.pid_file for b in home.dependents()] == [home.worker_pid]  # stopped before the server


def test_database_bytes_counts_the_wal_and_shm_files_and_nothing_else(tmp_path: Path) -> None:
    home = Home(tmp_path / "dev")
    assert home.database_bytes() == 0  # no home yet
    home.path.mkdir()
    assert home.database_bytes() == 0
    for name, size in (("prefect.db", 100), ("prefect.db-wal", 20), ("prefect.db-shm", 3), ("server.log", 999)):
        (home.path / name).write_bytes(b"x" * size)
    (home.path / "prefect.db-journal-folder").mkdir()
    assert home.database_bytes() == 123


def test_kit_files_are_the_database_and_the_named_files_that_exist(tmp_path: Path) -> None:
    home = Home(tmp_path / "dev")
    assert home.kit_files() == []  # no home yet
    home.path.mkdir()
    for path in (home.database, home.path / "prefect.db-wal", home.server_pid, home.worker_log, home.identity):
        path.write_text("x")
    (home.path / "notes.txt").write_text("not the kit's")
    home.code.mkdir()
    assert home.kit_files() == [
        home.database,
        home.path / "prefect.db-wal",
        home.server_pid,
        home.worker_log,
        home.identity,
    ]


def test_tighten_makes_open_kit_files_0600_and_says_which(tmp_path: Path) -> None:
    home = Home(tmp_path / "dev")
    home.path.mkdir()
    for path in (home.database, home.server_log, home.worker_log, home.server_pid):
        path.write_text("x")
    os.chmod(home.database, 0o644)
    os.chmod(home.server_log, 0o640)  # open to the group
    os.chmod(home.worker_log, 0o604)  # open to others only
    os.chmod(home.server_pid, 0o600)
    other = home.path / "notes.txt"
    other.write_text("not the kit's")
    os.chmod(other, 0o644)

    assert sorted(home.tighten()) == sorted([home.database, home.server_log, home.worker_log])
    assert {_mode(p) for p in (home.database, home.server_log, home.worker_log, home.server_pid)} == {0o600}
    assert _mode(other) == 0o644  # only the kit's files
    assert home.tighten() == []  # nothing left to change
