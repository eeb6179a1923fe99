"""The Julia process of a job: finding julia and the program, the command line and environment, running it
under supervision (output, timeout, its whole process tree), its result document, and the errors of each step.

:mod:`.bridge` runs it for a flow (and as a Prefect task); :mod:`.julia_session` runs the same command line in a
warm session.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from prefect_julia.core.errors import CommandFailed, ConfigError
from prefect_julia.core.processes import (
    Descendants,
    ExitWatch,
    group_alive,
    parent_death_prefix,
    spawn,
    stop_tree,
)
from prefect_julia.core.setting import (
    DATA_BLOCK_LOCAL,
    DATA_BLOCK_REMOTE,
    DATASTORE_DEFAULT_TYPE,
    JULIA_API_PATIENCE,
    JULIA_BIN,
    JULIA_LOG_CAP_BYTES,
    JULIA_PROJECT,
    JULIA_TIMEOUT,
)
from prefect_julia.runtime.datastore import FALLBACK_NAME_VAR, FALLBACK_ROOT_VAR
from prefect_julia.runtime.joboutput import OutputSink
from prefect_julia.runtime.julia_image import SYSIMAGE_FLAG, julia_start
from prefect_julia.runtime.julia_log import Event, JuliaLog, StderrParser
from prefect_julia.runtime.secrets import allowed_env

DEFAULT_TIMEOUT = float(JULIA_TIMEOUT.default or 3600)
KILL_GRACE = 5.0
MAX_RESULT_BYTES = 16 * 1024 * 1024
INSTALL_HINT = "Install it with `bash scripts/install-julia.sh`, or set PREFECT_JULIA_BIN to a julia executable."
PASSED_THROUGH = (
    DATA_BLOCK_LOCAL.name,
    DATA_BLOCK_REMOTE.name,
    DATASTORE_DEFAULT_TYPE.name,
    JULIA_API_PATIENCE.name,
    FALLBACK_ROOT_VAR,
    FALLBACK_NAME_VAR,
)
#: What julia runs: the package's entry point, which runs the job file (the next argument) with the rest as its
#: ARGS, and reports an uncaught error as one ERROR record (``PrefectInterfaces.runjob`` in julia/src/bridge.jl).
#: In a project without the package, the job file runs as ``julia FILE ARGS...`` would run it.
ENTRY_POINT = (
    'if Base.find_package("PrefectInterfaces") === nothing; Core.eval(Base, :(PROGRAM_FILE = $(ARGS[1]))); '
    "Base.include(Main, popfirst!(ARGS)) else import PrefectInterfaces; PrefectInterfaces.runjob(popfirst!(ARGS)) end"
)

_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # as PrefectInterfaces.parseargs reads them


# --- errors -----------------------------------------------------------------------------------------------


class JuliaNotFound(ConfigError):
    """No ``julia`` executable: neither ``PREFECT_JULIA_BIN`` nor ``julia`` on PATH."""


class JuliaProgramMissing(ConfigError):
    """The Julia program to run does not exist."""


class JuliaProgramOutside(ConfigError):
    """The Julia program lies outside the project's ``jobs`` folder and the caller did not allow that."""


class JuliaFailed(CommandFailed):
    """The Julia program exited non-zero (or was killed by a signal).

    When the job reported the error that ended it (``reported``), the message is that error with the job's file
    and line, and it is the whole text: the record already went to the log with its stack trace."""

    def __init__(self, message: str, *, reported: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reported = reported

    def __str__(self) -> str:
        return self.message if self.reported else super().__str__()


class JuliaTimeout(CommandFailed):
    """The Julia program ran past its timeout; its process tree was killed."""

    def __init__(self, message: str, *, timeout: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout = timeout


class JuliaResultError(CommandFailed):
    """The result document the Julia program wrote is malformed."""


# --- command, environment, result -------------------------------------------------------------------------


def default_project(env: Mapping[str, str] | None = None) -> Path:
    """The Julia project of the running repository.

    ``PREFECT_JULIA_PROJECT`` when set (the kit's servers and workers set it to ``<repo>/julia``), else
    ``./julia`` of the working directory (a deployment runs in its repository), else the ``julia/`` folder
    next to this package's source tree.
    """
    env = os.environ if env is None else env
    configured = JULIA_PROJECT.lookup(env)
    if configured:
        return Path(configured)
    here = Path.cwd() / "julia"
    if (here / "Project.toml").is_file():
        return here
    return Path(__file__).resolve().parents[2] / "julia"


def find_julia(env: Mapping[str, str]) -> str:
    """The julia executable: ``PREFECT_JULIA_BIN`` if set, else ``julia`` on the env's PATH."""
    configured = JULIA_BIN.lookup(env)
    if configured:
        found = shutil.which(configured)
        if not found:
            raise JuliaNotFound(f"PREFECT_JULIA_BIN={configured!r} is not an executable julia.", hint=INSTALL_HINT)
        return found
    found = shutil.which("julia", path=env.get("PATH", os.defpath))
    if not found:
        raise JuliaNotFound("julia is not installed (no `julia` on PATH).", hint=INSTALL_HINT)
    return found


def resolve_program(program: str | Path, project: Path, *, anywhere: bool = False) -> Path:
    """``program`` as a file: a path as given, or a job name under ``<project>/jobs`` (``.jl`` optional).

    Only programs under ``<project>/jobs`` run, unless the caller passes ``anywhere=True``.
    """
    given = Path(program)
    if isinstance(program, Path) or given.is_absolute() or len(given.parts) > 1:
        path = given.resolve()
    else:
        path = project / "jobs" / (program if program.endswith(".jl") else f"{program}.jl")
    jobs_dir = (project / "jobs").resolve()
    if not anywhere and not path.resolve().is_relative_to(jobs_dir):
        raise JuliaProgramOutside(
            f"Julia program {path} is outside the project's jobs folder {jobs_dir}; it was not run.",
            hint="Move it under julia/jobs/, or pass anywhere=True to run_julia/julia_job to run it from elsewhere.",
        )
    if path.is_file():
        return path
    jobs = sorted(p.stem for p in (project / "jobs").glob("*.jl")) if (project / "jobs").is_dir() else []
    raise JuliaProgramMissing(
        f"Julia program {path} does not exist. Jobs in {project / 'jobs'}: {', '.join(jobs) or 'none'}.",
        hint="Check the program name, or add the file under julia/jobs/.",
    )


def format_parameter(key: str, value: object) -> str:
    """One ``--key=value`` argument; booleans are written as Julia spells them."""
    if not _PARAM_KEY.match(key):
        raise ConfigError(
            f"Invalid Julia parameter name {key!r}: start with a letter or '_', "
            "then use letters, digits, '_', '-' or '.'."
        )
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"--{key}={text}"


def build_command(
    julia: str, project: Path, program: Path, parameters: Mapping[str, object], image: Path | None = None
) -> list[str]:
    """The command line running ``program`` in ``project`` with ``parameters`` as ``--key=value``; started
    with the Julia image ``image`` when given (see :mod:`.julia_image`)."""
    args = [format_parameter(k, v) for k, v in parameters.items()]
    start = [*julia_start(julia, image), f"--project={project}", "--startup-file=no"]
    return [*start, "-e", ENTRY_POINT, str(program), *args]


@dataclass(frozen=True)
class CommandParts:
    """The parts of a command line :func:`build_command` made."""

    julia: str
    image: Path | None
    project: Path
    program: str
    args: list[str]

    @classmethod
    def of(cls, command: list[str]) -> CommandParts:
        image = Path(command[1].removeprefix(SYSIMAGE_FLAG)) if command[1].startswith(SYSIMAGE_FLAG) else None
        rest = command[2:] if image is not None else command[1:]
        program = 4 if rest[2] == "-e" else 2  # after the entry point, or (a command of old) right there
        return cls(command[0], image, Path(rest[0].removeprefix("--project=")), rest[program], rest[program + 1 :])


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def shell_line(command: list[str]) -> str:
    """``command`` as a shell would take it, one quoted word per argument; an argument with a newline or
    another control character is written ``$'...'`` with the character escaped, so the line stays one line."""

    def word(arg: str) -> str:
        if not _UNPRINTABLE.search(arg):
            return shlex.quote(arg)
        escaped = arg.replace("\\", "\\\\").replace("'", "\\'")
        escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
        return "$'" + _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped) + "'"

    return " ".join(word(arg) for arg in command)


def current_api_url() -> str | None:
    """The API URL from Prefect's settings (env beats profile), if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def julia_env(base: Mapping[str, str], result_path: Path, api_url: str | None) -> dict[str, str]:
    """The Julia process's environment: ``base``'s allow-listed variables plus the server, result path and log format."""
    env = allowed_env(base)
    url = base.get("PREFECT_API_URL") or api_url
    if url:
        env["PREFECT_API_URL"] = url
    for name in PASSED_THROUGH:
        if base.get(name):
            env[name] = base[name]
    env["PREFECT_JULIA_RESULT_PATH"] = str(result_path)
    env["PREFECT_JULIA_LOG_FORMAT"] = "prefect"
    return env


def read_result(path: Path, command: list[str] | None = None) -> Any:
    """The JSON document at ``path``; ``None`` if the program wrote none."""
    if not path.exists():
        return None
    data = path.read_bytes()
    if len(data) > MAX_RESULT_BYTES:
        raise JuliaResultError(
            f"The Julia result document {path} is {len(data)} bytes; the limit is {MAX_RESULT_BYTES}.",
            command=command,
            hint="Return a small summary and write the data to a Dataset instead.",
        )
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        snippet = data[:200].decode("utf-8", "replace")
        raise JuliaResultError(
            f"The Julia result document is not valid JSON ({error}): {snippet!r}",
            command=command,
            hint="Write the result with PrefectInterfaces' result helper, or as one valid JSON document.",
        ) from error


# --- running ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JuliaResult:
    """What a finished Julia program left: exit code, result document, output tails and duration (s)."""

    command: list[str]
    exit_code: int
    result: Any
    stdout_tail: str
    stderr_tail: str
    duration: float


#: Seconds between sweeps for the job's descendants while it runs (the first comes sooner).
SWEEP_INTERVAL = 0.5


def _pump(stream: IO[bytes], handle: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        handle(raw.decode("utf-8", "replace").rstrip("\r\n"))
    stream.close()


def emit_events(sink: OutputSink, events: Iterable[Event]) -> None:
    for event in events:
        if isinstance(event, JuliaLog):
            if event.uncaught:
                sink.failure = event.summary()
            sink.line(event.render(), stderr=True, level=event.level, record=True)
        else:
            sink.line(event, stderr=True)


def stderr_handler(sink: OutputSink, parser: StderrParser) -> Callable[[str], None]:
    """A handler for Julia's stderr lines: log records at their level, other lines as output."""

    def handle(line: str) -> None:
        emit_events(sink, parser.feed(line))

    return handle


def kill_tree(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the process tree of ``proc``; SIGKILL whatever is left after ``grace`` seconds."""
    stop_tree(proc.pid, grace=grace)
    proc.wait()


def tail_text(tail: deque[str]) -> str:
    return "\n".join(tail)


def _start(command: list[str], env: Mapping[str, str], cwd: Path | None) -> subprocess.Popen[bytes]:
    try:
        # Killed by the kernel if this process dies first (a SIGKILLed flow run leaves no julia behind).
        return spawn([*parent_death_prefix(), *command], env=env, cwd=cwd)
    except OSError as error:
        raise JuliaNotFound(f"Cannot start {command[0]}: {error}", hint=INSTALL_HINT) from error


def log_cap(env: Mapping[str, str]) -> int:
    """``PREFECT_JULIA_LOG_CAP_BYTES``: how many bytes of a job's output go to the run log."""
    raw = JULIA_LOG_CAP_BYTES.lookup(env) or "0"
    if not raw.isdigit():
        raise ConfigError(
            f"{JULIA_LOG_CAP_BYTES.name}={raw!r} is not a whole number of bytes.",
            hint=f"Use e.g. {JULIA_LOG_CAP_BYTES.name}=1048576.",
        )
    return int(raw)


def supervise(
    command: list[str],
    env: Mapping[str, str],
    timeout: float,
    grace: float,
    sink: OutputSink,
    on_start: Callable[[], None] | None = None,
) -> tuple[int, float]:
    """Run ``command`` streaming both pipes to ``sink``; kill its tree on timeout (raising JuliaTimeout).

    ``on_start`` is called once the process is started and before any of its output is read. While it runs,
    its descendants are recorded (:class:`Descendants`), so none outlives it: not its process group, and not
    one that left the group with ``setsid``.
    """
    started = time.monotonic()
    proc = _start(command, env, None)
    if on_start is not None:
        try:
            on_start()
        except BaseException:
            kill_tree(proc, grace)
            raise
    parser = StderrParser()
    readers = _start_readers(proc, sink, parser)
    descendants = Descendants(proc.pid)
    timed_out = False
    exited = ExitWatch(proc)
    try:
        timed_out = _wait_for_exit(exited, descendants, started + timeout)
    finally:
        exited.close()
        # The program is done (or out of time): nothing it started may outlive it.
        if timed_out:
            sink.freeze_tails()  # julia prints a backtrace when it is sent SIGTERM
        if timed_out or group_alive(proc.pid):
            kill_tree(proc, grace)
        else:
            proc.wait()
        descendants.kill()
        for reader in readers:
            reader.join(timeout=grace)
        emit_events(sink, parser.flush())
    duration = time.monotonic() - started
    if timed_out:
        raise timeout_error(command, timeout, sink)
    return proc.returncode, duration


def _start_readers(proc: subprocess.Popen[bytes], sink: OutputSink, parser: StderrParser) -> list[threading.Thread]:
    """Started threads reading ``proc``'s stdout and stderr into ``sink`` (stderr through ``parser``)."""
    assert proc.stdout is not None and proc.stderr is not None
    # Each reader runs in a copy of this context, so Prefect's run and settings context reach its log calls.
    readers = [
        threading.Thread(target=contextvars.copy_context().run, args=(_pump, stream, handler), daemon=True)
        for stream, handler in (
            (proc.stdout, functools.partial(sink.line, stderr=False)),
            (proc.stderr, stderr_handler(sink, parser)),
        )
    ]
    for reader in readers:
        reader.start()
    return readers


def _wait_for_exit(exited: ExitWatch, descendants: Descendants, deadline: float) -> bool:
    """Wait for the process to exit, recording its descendants meanwhile; True if ``deadline`` (a
    ``time.monotonic()`` value) came first."""
    wait = SWEEP_INTERVAL / 5
    while True:
        if exited.within(max(0.0, min(wait, deadline - time.monotonic()))):
            return False
        if time.monotonic() >= deadline:
            return True
        descendants.scan()
        wait = SWEEP_INTERVAL


def timeout_error(command: list[str], timeout: float, sink: OutputSink) -> JuliaTimeout:
    return JuliaTimeout(
        f"Julia program {Path(CommandParts.of(command).program).name} ran past its timeout of {timeout:g} s; its process tree was killed.",
        timeout=timeout,
        command=command,
        stderr_tail=tail_text(sink.stderr_tail),
        hint="Raise the timeout, or find where the program hangs.",
    )


def failure(
    path: Path, command: list[str], exit_code: int, stderr_tail: str, reported: str | None = None
) -> JuliaFailed:
    """The error of a job that exited ``exit_code``; ``reported`` is the job's own account of the error that
    ended it (:meth:`JuliaLog.summary` of its uncaught-error record), which then says it all."""
    if reported is not None and exit_code > 0:
        return JuliaFailed(reported, reported=True, command=command, return_code=exit_code)
    how = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
    return JuliaFailed(
        f"Julia program {path.name} {how}.",
        command=command,
        return_code=exit_code,
        stderr_tail=stderr_tail,
        hint="Read the stderr tail above and the run's logs.",
    )
