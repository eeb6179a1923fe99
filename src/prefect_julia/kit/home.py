"""An environment's home: its ``PREFECT_HOME`` and every file the kit keeps there.

One place names them all: the sqlite database or the kit-managed PostgreSQL cluster, database backups, the
pid, log and lock files of the environment's server and of its worker, the home's identity and the checkouts
of deployed code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    def identity(self) -> Path:
        """Which checkout and environment this home belongs to (``kit/identity.py``)."""
        return self.path / "kit-identity.json"

    @property
    def code(self) -> Path:
        """The worktrees of deployed commits that runs execute (``kit/codesource.py``)."""
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

    def dependent_pid_files(self) -> tuple[Path, ...]:
        """Pid files of processes the kit runs against the server, stopped before it (a lone worker hangs)."""
        return (self.worker_pid,)
