"""The boundary: turns every failure into a message on stderr with a ``fix:`` line and a documented exit code.

Only ``tasks.py`` (and other entry points) use this; library code raises ``PrefectJuliaError``s. Anything
else that escapes (a file system error, a server that went away, a bug) is mapped here too, so a person
never sees a traceback. ``PREFECT_JULIA_DEBUG=1`` adds the traceback of an unexpected error.

Exit codes (README, "Exit codes"): 0 success, 1 a run did not complete, 2 configuration or bad input,
3 server or worker, 4 a failed command, 5 a failed gate, 6 the database, 7 a remote datastore, 70 an unexpected error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect_julia.core.errors import ConfigError, PrefectJuliaError, ServerError
from prefect_julia.core.setting import DEBUG

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_CONFIG = 2
EXIT_SERVER = 3
EXIT_COMMAND = 4
EXIT_GATE = 5
EXIT_DATABASE = 6
EXIT_DATASTORE = 7
EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130

#: (exit code, meaning) in the order the README lists them.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (EXIT_RUN_FAILED, "a flow run ended in a state other than Completed"),
    (EXIT_CONFIG, "configuration or bad input: a settings file, a name, a parameter, a folder"),
    (EXIT_SERVER, "a server or worker is down, unreachable, or went away"),
    (EXIT_COMMAND, "an external command failed (its exit code and stderr are shown)"),
    (EXIT_GATE, "the gate failed, or a promotion precondition"),
    (
        EXIT_DATABASE,
        "the database: PostgreSQL programs missing, its port taken, a foreign or damaged data folder, wrong "
        "credentials, a bad backup file, a restore while runs are in flight",
    ),
    (EXIT_DATASTORE, "a remote datastore: S3 endpoint unreachable, credentials refused, bucket missing"),
    (EXIT_UNEXPECTED, "an unexpected error (a bug): rerun with PREFECT_JULIA_DEBUG=1 for the traceback"),
    (EXIT_INTERRUPTED, "interrupted with Ctrl-C"),
)

_SERVER_ERROR_NAMES = ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ReadError")


#: The ``fix:`` line of an error raised without one, by exit code.
GENERIC_HINTS = {
    EXIT_RUN_FAILED: "Read the run's logs (above, or in the UI), fix the cause, and run it again.",
    EXIT_CONFIG: "Correct the file, setting or argument named above, then run the command again.",
    EXIT_SERVER: "Check the servers and workers with `invoke server-status` and `invoke worker-status`, then retry.",
    EXIT_COMMAND: "Fix the cause shown in the command's output above, then retry.",
    EXIT_GATE: "Fix what the gate reports above, then run `invoke gate` again.",
}


def fail(error: PrefectJuliaError) -> None:
    """Print ``error`` for a person, with a ``fix:`` line, and exit with its code."""
    if not error.hint:
        error.hint = GENERIC_HINTS.get(error.exit_code, "See the README, then retry.")
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)


def translate(error: BaseException) -> PrefectJuliaError:
    """The kit error a person should see for ``error``, which the kit did not expect."""
    if isinstance(error, PrefectJuliaError):
        return error
    name = type(error).__name__
    if name in _SERVER_ERROR_NAMES or _is_http_status(error, 503):
        return ServerError(
            f"The Prefect server stopped answering ({name}: {error}).",
            hint="Check it with `invoke server-status`; start it with `invoke server-up --env ENV`, then retry.",
        )
    if isinstance(error, OSError):
        return _file_error(error)
    unexpected = PrefectJuliaError(
        f"Unexpected {name}: {error}",
        hint="This is a bug in the kit. Rerun with PREFECT_JULIA_DEBUG=1 to see the traceback, and report it.",
    )
    unexpected.exit_code = EXIT_UNEXPECTED
    return unexpected


def _is_http_status(error: BaseException, status: int) -> bool:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) == status


def _file_error(error: OSError) -> PrefectJuliaError:
    where = f" {error.filename}" if error.filename else ""
    reason = error.strerror or str(error)
    hints = {
        errno.EACCES: "Make the folder writable, or point the setting (e.g. PREFECT_JULIA_HOME) at one that is.",
        errno.EPERM: "Make the folder writable, or point the setting (e.g. PREFECT_JULIA_HOME) at one that is.",
        errno.EROFS: "Point the setting (e.g. PREFECT_JULIA_HOME or PREFECT_JULIA_DATA_ROOT) at a writable folder.",
        errno.ENOTDIR: "A file stands where a folder is expected: move it away or point the setting elsewhere.",
        errno.EEXIST: "A file stands where a folder is expected: move it away or point the setting elsewhere.",
        errno.ENOENT: "Create the missing folder, or point the setting at an existing one.",
        errno.ENOSPC: "Free disk space, then retry.",
    }
    hint = hints.get(error.errno or 0, "Check the path and its permissions, then retry.")
    return ConfigError(f"Cannot use{where}: {reason}.", hint=hint)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate an entry point: every failure becomes a message and a documented exit code, Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PrefectJuliaError as error:
            fail(error)
            raise  # unreachable: fail() exits
        except KeyboardInterrupt:
            print("interrupted.", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except (SystemExit, GeneratorExit):
            raise
        except BrokenPipeError:  # `invoke ... | head`: the reader left, nothing more to say
            _quiet_stdout()
            raise SystemExit(EXIT_OK) from None
        except Exception as error:
            if DEBUG.lookup(os.environ):
                traceback.print_exc()
            fail(translate(error))
            raise  # unreachable

    return wrapper


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
