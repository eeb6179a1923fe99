"""Warm Julia sessions: kept ``julia`` processes that run job after job, with packages loaded and compiled.

With ``PREFECT_JULIA_SESSION=warm`` the bridge hands each job to a session instead of starting ``julia``.
Sessions live in a small pool of slots (``PREFECT_JULIA_SESSION_POOL``, default 2) in the session folder
(``$PREFECT_HOME/julia-sessions``): per slot a lock file, a state file (pid, start time, socket, project
fingerprint) and the session's own log. A job:

1. claims a free slot by locking its lock file for the whole job, so two jobs never share a process at once
   (when every slot is busy, the job runs in a fresh process instead);
2. reuses the slot's session when it still runs the same julia on the same project files, else stops it and
   starts a new one (a changed ``Project.toml`` or ``src/*.jl`` restarts sessions; job files are read anew
   by every job anyway);
3. sends its program, arguments, environment and working directory over the session's Unix socket, and
   reads back its output lines and exit code (``PrefectInterfaces.serve_session`` on the Julia side).

A session serves only its own user (it checks the uid at the other end of each connection) and runs only
programs under the project's ``jobs/`` and the folders of ``PREFECT_JULIA_SESSION_PROGRAMS``; a job whose
program lies elsewhere (``run_julia(..., anywhere=True)``) runs in a fresh process.

A timeout or the death of the flow-run process (a watchdog notices) kills the session's process tree; a
session that dies mid-job fails only that job. The next job starts a new session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from prefect_julia.core.background import Background
from prefect_julia.core.errors import ConfigError
from prefect_julia.core.files import private_folder, socket_path, write_atomic
from prefect_julia.core.processes import (
    PidRecord,
    file_lock,
    is_alive,
    read_pid_file,
    stop_recorded,
)
from prefect_julia.core.setting import JULIA_SESSION_DIR, JULIA_SESSION_POOL, JULIA_SESSION_PROGRAMS
from prefect_julia.runtime import julia_process
from prefect_julia.runtime.joboutput import OutputSink
from prefect_julia.runtime.julia_image import julia_start, package_files
from prefect_julia.runtime.julia_log import StderrParser

__all__ = [
    "SessionInfo",
    "program_folders",
    "project_fingerprint",
    "run_in_session",
    "runs_program",
    "session_folder",
    "sessions",
    "stop_sessions",
]

DEFAULT_POOL = 2
START_TIMEOUT = 120.0
IDLE_SECONDS = 3600
WATCH_INTERVAL = 0.25


def session_folder(env: Mapping[str, str]) -> Path:
    """``PREFECT_JULIA_SESSION_DIR``, else ``$PREFECT_HOME/julia-sessions``, else
    ``$XDG_CACHE_HOME/prefect-julia/sessions`` (``~/.cache`` by default): never a shared folder anyone could
    create first. It is made 0700, and refused when another user owns it or others may enter it."""
    configured = JULIA_SESSION_DIR.lookup(env)
    home = env.get("PREFECT_HOME", "")
    if configured:
        folder = Path(configured).expanduser()
    elif home:
        folder = Path(home) / "julia-sessions"
    else:
        cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
        folder = Path(cache) / "prefect-julia" / "sessions"
    return private_folder(folder, "the warm Julia sessions' folder", JULIA_SESSION_DIR.name)


def pool_size(env: Mapping[str, str]) -> int:
    """``PREFECT_JULIA_SESSION_POOL``: how many sessions (so jobs at once) a session folder holds at most."""
    raw = JULIA_SESSION_POOL.lookup(env) or str(DEFAULT_POOL)
    if not raw.isdigit() or not 1 <= int(raw) <= 16:
        raise ConfigError(
            f"{JULIA_SESSION_POOL.name}={raw!r} is not a number of sessions from 1 to 16.",
            hint=f"Set e.g. {JULIA_SESSION_POOL.name}=2.",
        )
    return int(raw)


def project_fingerprint(project: Path) -> str:
    """A digest of the Julia project's files (names, sizes, modification times): it changes when they do."""
    digest = hashlib.sha256()
    for path in package_files(project):
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def program_folders(project: Path, env: Mapping[str, str]) -> list[Path]:
    """The folders a session runs programs from: ``<project>/jobs``, then those ``PREFECT_JULIA_SESSION_PROGRAMS``
    lists (separated by ``:``; relative ones to the working directory), links resolved."""
    listed = (JULIA_SESSION_PROGRAMS.lookup(env) or "").split(os.pathsep)
    return [(project / "jobs").resolve(), *(Path(item).expanduser().resolve() for item in listed if item.strip())]


def runs_program(program: str | Path, folders: list[Path]) -> bool:
    """True when the file ``program`` (links resolved) lies inside one of ``folders``: the rule the session
    itself applies (``PrefectInterfaces.program_allowed``)."""
    path = Path(program).resolve()
    return path.is_file() and any(path.is_relative_to(folder) and path != folder for folder in folders)


def _julia_string(text: str) -> str:
    """``text`` as a Julia string literal (JSON's escapes, and ``$`` kept from interpolating)."""
    return json.dumps(text).replace("$", "\\$")


@dataclass(frozen=True)
class SessionInfo:
    """One session: its process (a pid file's record), its socket, and the julia and project it runs."""

    slot: int
    record: PidRecord
    socket: str
    julia: str
    project: str
    fingerprint: str
    log: str

    @property
    def pid(self) -> int:
        return self.record.pid

    def alive(self) -> bool:
        return is_alive(self.record)


def _state_file(folder: Path, slot: int) -> Path:
    return folder / f"slot-{slot}.json"


def _pid_file(folder: Path, slot: int) -> Path:
    return folder / f"slot-{slot}.pid"


def _process(folder: Path, slot: int) -> Background:
    return Background("warm Julia session", _pid_file(folder, slot), folder / f"slot-{slot}.log")


def _read_state(folder: Path, slot: int) -> SessionInfo | None:
    record = read_pid_file(_pid_file(folder, slot))
    if record is None:
        return None
    try:
        data = json.loads(_state_file(folder, slot).read_text())
        return SessionInfo(slot=slot, record=record, **data)
    except (OSError, ValueError, TypeError):
        return None


def _forget(folder: Path, slot: int) -> None:
    _state_file(folder, slot).unlink(missing_ok=True)
    _pid_file(folder, slot).unlink(missing_ok=True)


def sessions(folder: Path) -> list[SessionInfo]:
    """The sessions in ``folder`` that still run."""
    found = []
    for path in sorted(folder.glob("slot-*.json")) if folder.is_dir() else []:
        slot = path.stem.removeprefix("slot-")
        info = _read_state(folder, int(slot)) if slot.isdigit() else None
        if info is not None and info.alive():
            found.append(info)
    return found


def _kill(info: SessionInfo, grace: float) -> None:
    """Stop the session's process tree (only if the pid file still describes that process), and remove its
    socket (a stand-in outside the folder, for a deep folder, is not swept with the folder)."""
    stop_recorded(info.record, grace=grace)
    Path(info.socket).unlink(missing_ok=True)


def stop_sessions(folder: Path, *, grace: float = 5.0) -> list[int]:
    """Stop every session in ``folder`` (busy ones too); returns their pids."""
    stopped = []
    for info in sessions(folder):
        _kill(info, grace)
        stopped.append(info.pid)
    for path in [*folder.glob("slot-*.json"), *folder.glob("slot-*.pid")] if folder.is_dir() else []:
        path.unlink(missing_ok=True)
    return stopped


@contextlib.contextmanager
def _claim(folder: Path, size: int) -> Iterator[int | None]:
    """Lock the first free slot for the block; ``None`` when every slot is busy."""
    for slot in range(size):
        with file_lock(folder / f"slot-{slot}.lock", wait=False) as held:
            if held:
                yield slot
                return
    yield None


def _start(
    folder: Path,
    slot: int,
    julia: str,
    project: Path,
    fingerprint: str,
    env: Mapping[str, str],
    image: Path | None,
    programs: list[Path],
) -> SessionInfo:
    sock_path = socket_path(folder / f"slot-{slot}.sock")  # a short stand-in when the folder lies deep
    sock_path.unlink(missing_ok=True)
    session = _process(folder, slot)
    folders = ", ".join(_julia_string(str(path)) for path in programs)
    code = (
        f"using PrefectInterfaces; PrefectInterfaces.serve_session({_julia_string(str(sock_path))}; "
        f"idle={IDLE_SECONDS}, programs=[{folders}])"
    )
    command = [*julia_start(julia, image), f"--project={project}", "--startup-file=no", "-e", code]

    def ready(process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not sock_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SessionFailed(f"The warm Julia session did not start; see {session.log_file}.")
            time.sleep(0.02)

    try:  # the umask 077 of every process the kit starts makes the socket julia binds 0600: no other user connects
        process = session.start(command, env={**env, "PREFECT_JULIA_LOG_FORMAT": "prefect"}, ready=ready, grace=1.0)
    except BaseException:
        sock_path.unlink(missing_ok=True)
        _forget(folder, slot)
        raise
    record = read_pid_file(session.pid_file)
    with contextlib.suppress(psutil.Error):  # julia runs now: a wrapper script may have exec'd it
        record = session.record_again(process.pid)
    assert record is not None
    info = SessionInfo(
        slot=slot,
        record=record,
        socket=str(sock_path),
        julia=julia,
        project=str(project),
        fingerprint=fingerprint,
        log=str(session.log_file),
    )
    data = {k: v for k, v in info.__dict__.items() if k not in ("slot", "record")}
    write_atomic(_state_file(folder, slot), json.dumps(data).encode(), mode=0o600)
    return info


class SessionFailed(RuntimeError):
    """A session could not be started or reached (the job then runs in a fresh process)."""


def _session(
    folder: Path,
    slot: int,
    julia: str,
    project: Path,
    env: Mapping[str, str],
    image: Path | None = None,
    programs: list[Path] | None = None,
) -> SessionInfo:
    """The slot's session, started (or restarted) when it does not run this julia on these project files, with
    this Julia image (so a session started before an image was built is replaced by one using it) and these
    program folders."""
    programs = programs if programs is not None else program_folders(project, env)
    fingerprint = project_fingerprint(project) + (f"+{image.name}" if image is not None else "")
    fingerprint += "+" + hashlib.sha256("\0".join(map(str, programs)).encode()).hexdigest()[:8]
    info = _read_state(folder, slot)
    if info is not None:
        same = info.julia == julia and info.project == str(project) and info.fingerprint == fingerprint
        if same and info.alive() and Path(info.socket).exists():
            return info
        _kill(info, 2.0)
        _forget(folder, slot)
    return _start(folder, slot, julia, project, fingerprint, env, image, programs)


def _watchdog(session_pid: int) -> subprocess.Popen[bytes]:
    """A tiny process that kills the session's tree if this process dies while the job runs."""
    script = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep {WATCH_INTERVAL}; done; "
        f"kill -KILL -{session_pid} 2>/dev/null"
    )
    return subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def run_in_session(
    command: list[str],
    env: Mapping[str, str],
    timeout: float,
    grace: float,
    sink: OutputSink,
    base: Mapping[str, str],
) -> tuple[int, float]:
    """Run ``command`` (as :func:`.julia_process.build_command` made it) in a warm session; (exit code, seconds).

    Falls back to a fresh process when every session is busy or none can start.
    """
    parts = julia_process.CommandParts.of(command)
    julia, project, program, args = parts.julia, parts.project, parts.program, parts.args
    folder = session_folder(base)
    programs = program_folders(project, base)
    if not runs_program(program, programs):
        sink.log.info(
            "A warm Julia session runs only programs under %s (%s lists more folders): running %s in a fresh process.",
            ", ".join(map(str, programs)),
            JULIA_SESSION_PROGRAMS.name,
            program,
        )
        return julia_process.supervise(command, env, timeout, grace, sink)
    started = time.monotonic()
    with _claim(folder, pool_size(base)) as slot:
        if slot is None:
            sink.log.info("Every warm Julia session is busy: running this job in a fresh process.")
            return julia_process.supervise(command, env, timeout, grace, sink)
        try:
            info = _session(folder, slot, julia, project, env, parts.image, programs)
        except SessionFailed as error:
            sink.log.warning("%s Running this job in a fresh process.", error)
            return julia_process.supervise(command, env, timeout, grace, sink)
        request = {"program": program, "args": args, "env": dict(env), "cwd": os.getcwd()}
        watchdog = _watchdog(info.pid)
        try:
            code = _exchange(info, request, started + timeout, sink)
        except TimeoutError:
            _kill(info, grace)
            _forget(folder, slot)
            raise julia_process.timeout_error(command, timeout, sink) from None
        finally:
            watchdog.kill()
            watchdog.wait()
        if code is None:  # the session died mid-job
            _kill(info, 0.5)
            _forget(folder, slot)
            sink.line(f"The warm Julia session (pid {info.pid}) ended while running this job.", stderr=True)
            code = 1
    return code, time.monotonic() - started


def _exchange(info: SessionInfo, request: Mapping[str, object], deadline: float, sink: OutputSink) -> int | None:
    """Send the job, stream its output to ``sink``; its exit code, or None when the session died first."""

    parser = StderrParser()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(info.socket)
        except OSError:
            return None
        conn.sendall(json.dumps(request).encode() + b"\n")
        stream: IO[bytes] = conn.makefile("rb")
        code: int | None = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                conn.settimeout(left)
                try:
                    raw = stream.readline()
                except TimeoutError:
                    raise
                except OSError:
                    break
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                tag, text = line[:2], line[2:]
                if tag == "1 ":
                    sink.line(text)
                elif tag == "2 ":
                    julia_process.emit_events(sink, parser.feed(text))
                elif tag == "x ":
                    code = int(text) if text.strip().lstrip("-").isdigit() else 1
                    break
        finally:
            julia_process.emit_events(sink, parser.flush())
            stream.close()
    return code
