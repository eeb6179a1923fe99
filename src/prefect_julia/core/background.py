"""One background process the kit keeps running after the command that started it exits.

Servers, workers, PostgreSQL clusters, warm Julia sessions and image builds all live the same way: a pid file
(``PidRecord``: pid, start time, command line, so a recycled pid is never taken for ours), a log its owner
alone reads, an optional lock so two starts take turns, a detached start that is stopped again (with
everything it started) when it never becomes ready, and a stop that reaches the whole process tree.
:class:`Background` owns that sequence; what "ready" means stays with the caller.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from prefect_julia.core.processes import (
    PidRecord,
    file_lock,
    is_alive,
    read_pid_file,
    spawn_detached,
    stop_recorded,
    stop_tree,
    write_pid_file,
)
from prefect_julia.core.secrets import create_private


@dataclass(frozen=True)
class Stopped:
    """A process :meth:`Background.stop` stopped."""

    pid: int
    killed: bool  # it outlived the grace period and was killed


@dataclass(frozen=True)
class Background:
    """The files of one background process: ``pid_file``, ``log_file`` and, when starts may race, ``lock_file``."""

    name: str
    pid_file: Path
    log_file: Path
    lock_file: Path | None = None

    def record(self) -> PidRecord | None:
        """The running process the pid file names; None when there is none (no file, a torn one, or a stale pid)."""
        record = read_pid_file(self.pid_file)
        return record if record is not None and is_alive(record) else None

    def pid(self) -> int | None:
        record = self.record()
        return record.pid if record is not None else None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lock (when there is one): a second start of the same process waits for the first."""
        if self.lock_file is None:
            yield
            return
        with file_lock(self.lock_file):
            yield

    def forget_stale(self) -> str | None:
        """Remove a pid file that names no running process; say what was removed (None: nothing was)."""
        if not self.pid_file.exists():
            return None
        record = read_pid_file(self.pid_file)
        if record is not None and is_alive(record):
            return None
        self.pid_file.unlink(missing_ok=True)
        if record is None:
            return f"Removed an unreadable pid file {self.pid_file}."
        return f"Removed a stale pid file ({self.pid_file.name}: pid {record.pid} no longer runs the {self.name})."

    def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        ready: Callable[[subprocess.Popen[bytes]], None] | None = None,
        grace: float = 5.0,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` detached (output appended to the log, created 0600), record it, and wait for ``ready``.

        When ``ready`` raises (the process exited, a timeout, Ctrl-C), the process tree is stopped and the pid
        file removed before the error goes on: a failed start leaves nothing running.
        """
        create_private(self.log_file)
        os.chmod(self.log_file, 0o600)
        process = spawn_detached(argv, env=env, log_file=self.log_file, cwd=cwd)
        write_pid_file(self.pid_file, process.pid, argv)
        if ready is not None:
            try:
                ready(process)
            except BaseException:
                stop_tree(process.pid, grace=grace)
                self.pid_file.unlink(missing_ok=True)
                raise
        return process

    def record_again(self, pid: int) -> PidRecord:
        """Record ``pid`` as it runs now: a wrapper script that exec'd its program changed its command line."""
        return write_pid_file(self.pid_file, pid, psutil.Process(pid).cmdline())

    def stop(self, *, grace: float = 10.0) -> Stopped | None:
        """Stop the recorded process and everything it started (SIGTERM, SIGKILL after ``grace`` seconds); what
        was stopped (None: nothing ran). The pid file is removed either way."""
        record = self.record()
        self.pid_file.unlink(missing_ok=True)
        if record is None:
            return None
        return Stopped(record.pid, stop_recorded(record, grace=grace))
