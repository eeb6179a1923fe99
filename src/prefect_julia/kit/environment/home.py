"""An environment's home: its ``PREFECT_HOME`` and every file the kit keeps there.

One place names them all: the sqlite database or the kit-managed PostgreSQL cluster, database backups, the
pid, log and lock files of the environment's server and of its worker, the home's identity and the checkouts
of deployed code.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.background import Background


@dataclass(frozen=True)
class Home:
    """The ``PREFECT_HOME`` folder ``path`` of one environment and the kit's files in it."""

    path: Path

    @property
    def database(self) -> Path:
        """The server's sqlite database (unless PREFECT_SERVER_DATABASE_CONNECTION_URL points elsewhere)."""
        return self.path / "prefect.db"

    def database_bytes(self) -> int:
        """The size of the database with its WAL and shared-memory files (0 when there is none)."""
        if not self.path.exists():
            return 0
        return sum(p.stat().st_size for p in self.path.glob(f"{self.database.name}*") if p.is_file())

    @property
    def server_pid(self) -> Path:
        return self.path / "server.pid"

    @property
    def server_log(self) -> Path:
        return self.path / "server.log"

    @property
    def server_lock(self) -> Path:
        return self.path / "server.lock"

    @property
    def worker_pid(self) -> Path:
        return self.path / "worker.pid"

    @property
    def worker_log(self) -> Path:
        return self.path / "worker.log"

    @property
    def worker_lock(self) -> Path:
        return self.path / "worker.lock"

    @property
    def server(self) -> Background:
        """The environment's Prefect server process."""
        return Background("server", self.server_pid, self.server_log, self.server_lock)

    @property
    def worker(self) -> Background:
        """The environment's process worker."""
        return Background("worker", self.worker_pid, self.worker_log, self.worker_lock)

    @property
    def identity(self) -> Path:
        """Which checkout and environment this home belongs to (``kit/access/identity.py``)."""
        return self.path / "kit-identity.json"

    @property
    def code(self) -> Path:
        """The worktrees of deployed commits that runs execute (``kit/declarations/codesource.py``)."""
        return self.path / "code"

    @property
    def postgres(self) -> Path:
        """The folder of a kit-managed PostgreSQL cluster (data, log and Unix socket)."""
        return self.path / "postgres"

    @property
    def postgres_marker(self) -> Path:
        """Written when the kit creates the cluster: a data folder without it is not the kit's."""
        return self.path / "kit-cluster.json"

    @property
    def backups(self) -> Path:
        """Where ``invoke db-backup`` writes by default, and ``db-restore`` keeps what it replaced."""
        return self.path / "backups"

    def dependents(self) -> tuple[Background, ...]:
        """Processes the kit runs against the server, stopped before it (a lone worker hangs)."""
        return (self.worker,)

    def kit_files(self) -> list[Path]:
        """The files of the home that exist: the database (with its -wal and -shm files), pid, log, lock and
        identity files. Each holds what only its owner may read (``prefect.db`` holds the blocks' key)."""
        named = [
            self.server_pid, self.server_log, self.server_lock, self.worker_pid,
            self.worker_log, self.worker_lock, self.identity,
        ]  # fmt: skip
        found = sorted(self.path.glob(f"{self.database.name}*")) if self.path.is_dir() else []
        return [path for path in [*found, *named] if path.is_file()]

    def tighten(self) -> list[Path]:
        """Make every one of :meth:`kit_files` 0600 (a database restored or made before the kit started its
        processes with umask 077 may be open to others); the files it changed."""
        changed: list[Path] = []
        for path in self.kit_files():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                    changed.append(path)
        return changed
