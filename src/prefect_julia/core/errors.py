"""The kit's one root error and its few narrow kinds.

Library code raises these; only the edge (``tasks.py``, ``prefect_julia.cli``) turns them into a message on
stderr and an exit code. Every message is an actionable sentence: what went wrong, and what to do.
"""

from __future__ import annotations

from prefect_julia.core.redact import scrub


class PrefectJuliaError(Exception):
    """An expected failure with a message meant for a person. ``exit_code`` is what the edge exits with."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class ConfigError(PrefectJuliaError):
    """A settings, profile, branch-mapping or declaration file is missing or malformed."""

    exit_code = 2


class ServerError(PrefectJuliaError):
    """A Prefect server (or worker) could not be started, reached or stopped."""

    exit_code = 3


class CommandFailed(PrefectJuliaError):
    """An external command failed. Keeps its command line, exit code and the tail of its stderr.

    The message and the stderr tail are scrubbed of secrets (``core.redact``): they reach logs, run states
    and notifications.
    """

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | str | None = None,
        return_code: int | None = None,
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(scrub(message), hint=hint)
        self.command = command
        self.return_code = return_code
        self.stderr_tail = scrub(stderr_tail)

    def __str__(self) -> str:
        parts = [self.message]
        if self.return_code is not None:
            parts.append(f"  exit code: {self.return_code}")
        if self.stderr_tail:
            tail = "\n".join("    " + line for line in self.stderr_tail.rstrip().splitlines())
            parts.append(f"  stderr (last lines):\n{tail}")
        if self.hint:
            parts.append(f"  fix: {self.hint}")
        return "\n".join(parts)


class GateFailed(PrefectJuliaError):
    """A gate (lint, type check, tests, declaration check) or a promotion precondition failed."""

    exit_code = 5


class DatabaseError(PrefectJuliaError):
    """An environment's database (sqlite file, kit-managed PostgreSQL cluster or external URL) failed."""

    exit_code = 6


class DatastoreError(PrefectJuliaError):
    """A remote datastore (S3 or S3-compatible) could not be reached, refused the credentials or lacks the bucket."""

    exit_code = 7
