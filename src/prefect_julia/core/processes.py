"""Processes the kit owns: started detached, found again by pid file, stopped with their children.

A pid file records the pid and the process's start time, so a pid that was reused by an unrelated process
after a crash is recognised and never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.files import write_atomic


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: str
    command: str

    def to_json(self) -> bytes:
        return json.dumps({"pid": self.pid, "start_time": self.start_time, "command": self.command}).encode()


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return _ps_start_time(pid)
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19]  # field 22 of stat: starttime


def _ps_start_time(pid: int) -> str | None:
    if Path("/proc").is_dir():  # Linux: no /proc entry means no such process
        return None
    out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
        return out.stdout.strip()


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``; None when there is none or it cannot be read (a torn or foreign file)."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), start_time=str(data["start_time"]), command=str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_pid_file(path: Path, pid: int, command: str) -> PidRecord:
    record = PidRecord(pid=pid, start_time=start_time(pid) or "", command=command)
    write_atomic(path, record.to_json())
    return record


def is_alive(record: PidRecord) -> bool:
    """True when the recorded process still runs: same pid AND same start time (not a reused pid)."""
    now = start_time(record.pid)
    if now is None or now != record.start_time:
        return False
    try:
        with Path(f"/proc/{record.pid}/stat").open() as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie has exited
                return False
    except OSError:
        pass
    return True


def spawn_detached(
    argv: Sequence[str], *, env: Mapping[str, str], log_file: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (it outlives the caller), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


def stop_group(record: PidRecord, *, grace: float = 10.0) -> bool:
    """SIGTERM the process group of ``record``; SIGKILL after ``grace`` seconds. True if it had to kill."""
    if not is_alive(record):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_alive(record) and not group_alive(record.pid):
            return False
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGKILL)
    for _ in range(50):
        _reap(record.pid)
        if not is_alive(record):
            break
        time.sleep(0.1)
    return True


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the block: two callers for one environment take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def port_is_free(host: str, port: int) -> bool:
    """False when something listens on ``host:port``; other bind errors (a bad host) propagate."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_owner(port: int) -> int | None:
    """The pid listening on TCP ``port`` where it can be found (Linux /proc), else None."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return int(proc.name)
    return None


def describe_pid(pid: int) -> str:
    cmd = command_line(pid)
    return f"pid {pid} ({cmd[:80]})" if cmd else f"pid {pid}"
