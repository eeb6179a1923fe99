"""The Julia bridge: run a Julia program from ``julia/jobs`` as one process, from a Prefect flow or not.

``run_julia("clean_iris", {"dataset_name": "iris"})`` runs::

    julia --project=<repo>/julia --startup-file=no -e '<the package's entry point>' \
        <repo>/julia/jobs/clean_iris.jl --dataset_name=iris

with the caller's environment plus ``PREFECT_API_URL``, the data block names, ``PREFECT_JULIA_RESULT_PATH``
and ``PREFECT_JULIA_LOG_FORMAT=prefect``. Unlike ``ShellOperation`` it:

- raises :class:`JuliaFailed` on a non-zero exit, carrying the exit code and the tail of stderr; a job ended
  by an uncaught error (``PrefectInterfaces.runjob``, the entry point) reports it as one ERROR record, and the
  failure then reads ``clean_sales.jl:10: bad data``;
- forwards Julia's log records to the Prefect run logger at their own level (``@warn`` as WARNING,
  ``@error`` as ERROR), whether written as ``::prefect-log::{json}`` lines or by Julia's ConsoleLogger;
- kills the whole process tree on timeout (:class:`JuliaTimeout`), and any stragglers after exit;
- returns the small JSON document the program wrote to ``PREFECT_JULIA_RESULT_PATH`` (``None`` if none);
- never lets julia outlive the flow run: the kernel kills it when the calling process dies (parent-death
  signal), and its descendants, even those that left its process group, are recorded and killed at its end;
- sends output in few, capped log records and keeps the full output in a file (:mod:`.joboutput`);
- with ``PREFECT_JULIA_SESSION=warm``, runs the job in a kept Julia process instead (:mod:`.julia_session`).

:func:`julia_job` is the same as a Prefect task returning the result document, with retries on request.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from prefect_julia.core.errors import ConfigError
from prefect_julia.core.setting import JULIA_SESSION, JULIA_TIMEOUT
from prefect_julia.runtime import heartbeats, julia_session
from prefect_julia.runtime.joboutput import OutputSink, output_folder, unique_output_path
from prefect_julia.runtime.julia_image import current_image, start_build_for_job
from prefect_julia.runtime.julia_log import JuliaLog, StderrParser
from prefect_julia.runtime.julia_process import (
    DEFAULT_TIMEOUT,
    KILL_GRACE,
    CommandParts,
    JuliaFailed,
    JuliaNotFound,
    JuliaProgramMissing,
    JuliaProgramOutside,
    JuliaResult,
    JuliaResultError,
    JuliaTimeout,
    build_command,
    current_api_url,
    default_project,
    failure,
    find_julia,
    julia_env,
    log_cap,
    read_result,
    resolve_program,
    shell_line,
    supervise,
    tail_text,
)
from prefect_julia.runtime.secrets import PendingScrubber

__all__ = [
    "DEFAULT_TIMEOUT",
    "CommandParts",
    "JuliaFailed",
    "JuliaLog",
    "JuliaNotFound",
    "JuliaProgramMissing",
    "JuliaProgramOutside",
    "JuliaResult",
    "JuliaResultError",
    "JuliaTimeout",
    "StderrParser",
    "build_command",
    "default_project",
    "find_julia",
    "julia_env",
    "julia_job",
    "read_result",
    "resolve_program",
    "run_julia",
    "shell_line",
]

_MODULE_LOGGER = logging.getLogger("prefect_julia.julia")
heartbeats.install()  # a flow run that uses the bridge ends when its body does (see runtime/heartbeats.py)


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run logger inside a flow or task run, else this module's logger."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return _MODULE_LOGGER


def session_mode(env: Mapping[str, str]) -> str:
    """``PREFECT_JULIA_SESSION``: ``fresh`` (a new julia per job, the default) or ``warm``."""
    return JULIA_SESSION.choose(env.get(JULIA_SESSION.name))


def run_julia(
    program: str | Path,
    parameters: Mapping[str, object] | None = None,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    project: Path | None = None,
    grace: float = KILL_GRACE,
    session: str | None = None,
    anywhere: bool = False,
) -> JuliaResult:
    """Run a Julia program to completion and return its :class:`JuliaResult`.

    ``program`` is a job name under ``<project>/jobs`` or a path to a ``.jl`` file there (elsewhere only with
    ``anywhere=True``: :class:`JuliaProgramOutside` otherwise); ``parameters`` become
    ``--key=value`` arguments; ``env`` is the base environment (default ``os.environ``); ``project``
    defaults to the repository's ``julia/``; ``timeout`` to ``PREFECT_JULIA_JULIA_TIMEOUT`` (else 3600 s);
    ``session`` is ``fresh`` or ``warm`` (default: ``PREFECT_JULIA_SESSION``). Raises :class:`JuliaNotFound`,
    :class:`JuliaProgramMissing`, :class:`JuliaFailed`, :class:`JuliaTimeout` or :class:`JuliaResultError`.
    """
    base = os.environ if env is None else env
    timeout = JULIA_TIMEOUT.seconds(base) if timeout is None else timeout
    mode = session_mode({JULIA_SESSION.name: session} if session else base)
    project = (project or default_project(base)).resolve()
    julia = find_julia(base)
    path = resolve_program(program, project, anywhere=anywhere)
    image = current_image(julia, project, base)
    if image is None:  # built in the background for the jobs after this one
        start_build_for_job(julia, project, base)
    command = build_command(julia, project, path, parameters or {}, image)
    log = run_logger()
    with tempfile.TemporaryDirectory(prefix="prefect-julia-") as scratch:
        result_path = Path(scratch) / "result.json"
        api_url = base.get("PREFECT_API_URL") or current_api_url()
        process_env = julia_env(base, result_path, api_url)
        scrub = PendingScrubber(base, api_url)  # the server's secrets are read while julia starts
        output = unique_output_path(output_folder(base), path.stem)
        with OutputSink(log, output, cap=log_cap(base), scrub=scrub) as sink:
            if mode == "warm":
                log.info("Running Julia program %s in a warm session: %s", path.name, scrub(shell_line(command)))
                outcome = julia_session.run_in_session(command, process_env, timeout, grace, sink, base)
            else:

                def started() -> None:
                    log.info("Running Julia program %s: %s", path.name, scrub(shell_line(command)))

                outcome = supervise(command, process_env, timeout, grace, sink, on_start=started)
        exit_code, duration = outcome
        stdout_tail, stderr_tail = tail_text(sink.stdout_tail), tail_text(sink.stderr_tail)
        if exit_code != 0:
            raise failure(path, command, exit_code, stderr_tail, sink.failure)
        result = read_result(result_path, command)
    log.info("Julia program %s finished in %.1f s", path.name, duration)
    return JuliaResult(command, exit_code, result, stdout_tail, stderr_tail, duration)


def _job_run_name() -> str:
    """``julia-<program stem>`` for the task run's name."""
    from prefect.runtime import task_run

    return f"julia-{Path(str(task_run.parameters.get('program', 'job'))).stem}"


def _check_retries(retries: int, retry_delay: float) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"julia_job: retries={retries!r} is not a whole number >= 0.", hint="Use e.g. retries=2.")
    if isinstance(retry_delay, bool) or not isinstance(retry_delay, int | float) or retry_delay < 0:
        raise ConfigError(
            f"julia_job: retry_delay={retry_delay!r} is not a number of seconds >= 0.", hint="Use e.g. retry_delay=30."
        )


@task(name="julia-job", task_run_name=_job_run_name, cache_policy=NO_CACHE)
def julia_job(
    program: str,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    retry_timeouts: bool = False,
    anywhere: bool = False,
) -> Any:
    """Run a Julia job from ``julia/jobs`` in a Prefect task and return its result document.

    A failing, hanging or malformed job raises, so the task run (and the flow run) is Failed. With
    ``retries=N`` a job that exits non-zero runs again, up to N more times, ``retry_delay`` seconds apart;
    a job past its timeout is retried only with ``retry_timeouts=True``. Every attempt is logged in the same
    task run; the last failure is what the run reports. Off by default. A program outside ``julia/jobs``
    runs only with ``anywhere=True``.
    """
    _check_retries(retries, retry_delay)
    attempts = retries + 1
    log = run_logger()
    for attempt in range(1, attempts + 1):
        if attempts > 1:
            log.info("Julia program %s: attempt %d of %d", program, attempt, attempts)
        try:
            return run_julia(program, parameters or {}, timeout=timeout, anywhere=anywhere).result
        except (JuliaFailed, JuliaTimeout) as error:
            timed_out = isinstance(error, JuliaTimeout)
            if attempt == attempts or (timed_out and not retry_timeouts):
                if timed_out and attempt < attempts:
                    log.error("Julia program %s timed out; timeouts are not retried (retry_timeouts=False)", program)
                raise
            log.warning(
                "Julia program %s: attempt %d of %d failed (%s); retrying in %g s",
                program,
                attempt,
                attempts,
                error.message,
                retry_delay,
            )
            time.sleep(retry_delay)
    raise AssertionError("unreachable")  # pragma: no cover
