"""Every process the kit starts: spawned in its own session, supervised, stopped with its whole tree.

Servers and workers outlive the command that started them; they are found again by a pid file. A pid file is
trusted only when the process it names has both the recorded start time and the recorded command line, so a
pid reused by an unrelated process after a crash is recognised and never signalled. The Julia bridge and the
gate start short-lived children the same way and stop their trees the same way. Process facts come from
psutil.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from prefect_julia.core.files import write_atomic

__all__ = [
    "PRIVATE_UMASK",
    "Descendants",
    "ExitWatch",
    "PidRecord",
    "command_of",
    "describe_pid",
    "file_lock",
    "group_alive",
    "is_alive",
    "owned",
    "parent_death_prefix",
    "port_is_free",
    "port_owner",
    "read_pid_file",
    "running",
    "spawn",
    "spawn_detached",
    "stop_recorded",
    "stop_tree",
    "tree",
    "write_pid_file",
]

#: The umask of every process the kit starts: files 0600, folders 0700.
PRIVATE_UMASK = 0o077


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the pid, the process's start time (seconds since the epoch) and its command line."""

    pid: int
    start_time: float
    command: str

    def to_json(self) -> bytes:
        return json.dumps({"pid": self.pid, "start_time": self.start_time, "command": self.command}).encode()


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def running(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie waiting to be collected has exited)."""
    process = _process(pid)
    if process is None:
        return False
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``; None when there is none or it cannot be read (a torn or foreign file)."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), start_time=float(data["start_time"]), command=str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_pid_file(path: Path, pid: int, command: Sequence[str]) -> PidRecord:
    """Record the process ``pid`` the kit just started with ``command``."""
    process = _process(pid)
    started = process.create_time() if process is not None else 0.0
    record = PidRecord(pid=pid, start_time=started, command=" ".join(command))
    write_atomic(path, record.to_json(), mode=0o600)
    return record


def is_alive(record: PidRecord) -> bool:
    """True when the recorded process still runs: same pid, same start time AND same command line."""
    process = _process(record.pid)
    if process is None or not running(record.pid):
        return False
    try:
        same_start = process.create_time() == record.start_time
    except psutil.NoSuchProcess:
        return False
    return same_start and _command_line(process) == record.command


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    text: bool = False,
) -> subprocess.Popen[Any]:
    """Start ``argv`` in its own session (its own process group), so :func:`stop_tree` can stop all of it.

    Every process the kit starts (servers, workers, the flow runs they start, Julia jobs) runs with umask
    ``PRIVATE_UMASK``: what it creates (``prefect.db``, logs, job output) is its user's alone.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
        umask=PRIVATE_UMASK,
        text=text,
        errors="replace" if text else None,
    )


def spawn_detached(
    argv: Sequence[str], *, env: Mapping[str, str], log_file: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` so that it outlives the caller, output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return spawn(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_members(pgid: int) -> list[psutil.Process]:
    """The other processes of process group ``pgid``."""
    members = []
    for process in psutil.process_iter():
        if process.pid == pgid:
            continue
        with contextlib.suppress(OSError):
            if os.getpgid(process.pid) == pgid:
                members.append(process)
    return members


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` first, then the other members of the process group it leads (a flow run forked by the fork
    server joins its client's group), then every descendant of those."""
    process = _process(pid)
    if process is None:
        return []
    found: dict[int, psutil.Process] = {pid: process}
    for root in [process, *_group_members(pid)]:
        found.setdefault(root.pid, root)
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in root.children(recursive=True):
                found.setdefault(child.pid, child)
    return list(found.values())


def _signal(pid: int, processes: Sequence[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the session the kit started, including children that lost their parent
    for process in processes:  # and descendants that moved to a group of their own
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.send_signal(sig)


def stop_tree(pid: int, *, grace: float = 10.0) -> bool:
    """SIGTERM the process ``pid`` started by :func:`spawn`, its group and their descendants (:func:`tree`);
    SIGKILL what is left after ``grace`` seconds. Returns True when it had to kill."""
    members = tree(pid)
    _signal(pid, members, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        psutil.wait_procs(members, timeout=0.05)  # also collects our own children
        if not any(running(p.pid) for p in members) and not group_alive(pid):
            return False
        time.sleep(0.05)
    _signal(pid, [p for p in members if running(p.pid)], signal.SIGKILL)
    psutil.wait_procs(members, timeout=5)
    return True


def stop_recorded(record: PidRecord, *, grace: float = 10.0) -> bool:
    """Stop the process tree of a pid file's record, only if the record still describes it. True if killed."""
    if not is_alive(record):
        return False
    return stop_tree(record.pid, grace=grace)


@contextlib.contextmanager
def owned(process: subprocess.Popen[Any], *, grace: float = 5.0) -> Iterator[subprocess.Popen[Any]]:
    """Whatever happens in the block (an error, Ctrl-C, a normal end), nothing ``process`` started outlives it."""
    try:
        yield process
    finally:
        if process.poll() is None or group_alive(process.pid):
            stop_tree(process.pid, grace=grace)
        process.wait()


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive advisory lock held for the block: two callers for one environment take turns. With
    ``wait=False`` it is not waited for: the block gets False (holding nothing) while another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as handle:  # new: 0600
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
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
    """The pid listening on TCP ``port`` where it can be seen, else None."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            return int(connection.pid) if connection.pid is not None else None
    return None


def command_of(pid: int) -> str:
    """The command line of ``pid`` ('' when it does not run or cannot be read)."""
    process = _process(pid)
    return _command_line(process) if process is not None else ""


def describe_pid(pid: int) -> str:
    """``pid N (its command line)`` for a message."""
    process = _process(pid)
    command = _command_line(process) if process is not None else ""
    return f"pid {pid} ({command[:80]})" if command else f"pid {pid}"


# --- children that never outlive their parent -------------------------------------------------------------

_SETPRIV = "/usr/bin/setpriv"


def parent_death_prefix() -> list[str]:
    """Words to put before a command so the kernel SIGKILLs it when the process that started it dies.

    On Linux this is util-linux's ``setpriv --pdeathsig KILL`` (it sets ``PR_SET_PDEATHSIG``, then execs the
    command, so the pid, exit code and signals stay the command's own). Empty where it is not available.
    """
    if os.access(_SETPRIV, os.X_OK):
        return [_SETPRIV, "--pdeathsig", "KILL"]
    return []


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` from Linux's ``/proc/PID/task/*/children`` (cheap: no walk over every process);
    None where the kernel does not provide them."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return [] if os.path.isdir("/proc/self/task") else None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return found


class Descendants:
    """The processes started below ``root`` while it runs, remembered even after they leave its tree.

    Call :meth:`scan` now and then while ``root`` runs: every descendant is recorded (with its start time, by
    psutil), so one that called ``setsid`` and whose parent then exited (re-parented to init) is still found.
    :meth:`kill` SIGKILLs the recorded ones that still run (the same processes, not reused pids).
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, psutil.Process] = {}

    def scan(self) -> None:
        pending, visited = [self.root], {self.root}
        while pending:
            children = _children(pending.pop())
            if children is None:  # no children files here: ask psutil for the whole tree
                for process in tree(self.root)[1:]:
                    self.seen.setdefault(process.pid, process)
                return
            for child in children:
                if child in visited:
                    continue
                visited.add(child)
                pending.append(child)
                if child not in self.seen:
                    process = _process(child)
                    if process is not None:
                        self.seen[child] = process

    def kill(self) -> list[int]:
        killed = []
        for process in self.seen.values():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:  # same pid AND start time
                    process.kill()
                    killed.append(process.pid)
        return killed


class ExitWatch:
    """Waits for a child process to exit, told by the kernel the moment it does.

    Linux gives a pid file descriptor that turns readable on exit; ``Popen.wait(timeout=...)`` would instead
    poll in growing sleeps of up to 50 ms, which every job pays at its end. Elsewhere it falls back to that.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+, or the process is already gone
            self.fd = None

    def within(self, seconds: float) -> bool:
        """True (the process reaped) if it exits within ``seconds``; False if it is still running."""
        if self.fd is not None:
            readable, _, _ = select.select([self.fd], [], [], seconds)
            if not readable:
                return False
            self.proc.wait()
            return True
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
