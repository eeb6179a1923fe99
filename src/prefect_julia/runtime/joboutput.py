"""Where a Julia job's output goes: batched into few log records, capped, and kept whole in a file.

A job may print millions of lines. Sending each as its own run log record floods the server (and keeps the
run's process alive for minutes shipping them), so :class:`OutputSink`:

- joins consecutive DEBUG/INFO lines into one record, sent at least every ``batch_seconds`` (0.1 s) or when it
  reaches ``batch_bytes`` (64 KB); WARNING and above stay records of their own, with their level;
- stops sending after ``cap_bytes`` (1 MB by default, ``PREFECT_JULIA_LOG_CAP_BYTES``) and says so once;
- writes every line to a file; the file is named in the log and kept when the cap was reached (removed
  otherwise: everything is then in the run's log);
- keeps the tails of stdout and stderr for the error message of a failed job, and the job's own account of
  the error that ended it (:attr:`OutputSink.failure`, set by the bridge from the job's uncaught-error record).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from prefect_julia.core.files import private_folder

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_CAP_BYTES",
    "OutputSink",
    "output_folder",
    "unique_output_path",
]

DEFAULT_BATCH_SECONDS = 0.1
DEFAULT_BATCH_BYTES = 64 * 1024
DEFAULT_CAP_BYTES = 1024 * 1024
TAIL_LINES = 40

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


def output_folder(env: Mapping[str, str]) -> Path:
    """Where full outputs are kept: ``$PREFECT_HOME/julia-output``, else ``$XDG_CACHE_HOME/prefect-julia/output``
    (``~/.cache`` by default), never a shared folder; made 0700, and refused when others may enter it."""
    home = env.get("PREFECT_HOME", "")
    if home:
        folder = Path(home) / "julia-output"
    else:
        cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
        folder = Path(cache) / "prefect-julia" / "output"
    return private_folder(folder, "the Julia jobs' output folder")


class OutputSink:
    """Receives a job's output lines and log records (from any thread) and forwards them to ``log``."""

    def __init__(
        self,
        log: Log,
        full_output: Path,
        *,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        cap: int = DEFAULT_CAP_BYTES,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        self.log = log
        self.scrub = scrub  # hides known secret values before a line is stored, kept in a tail or forwarded
        self.full_output = full_output
        self.batch_seconds = batch_seconds
        self.batch_bytes = batch_bytes
        self.cap = cap
        self.stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines = 0
        self.bytes = 0
        self.sent = 0
        self.capped = False
        self.tails_frozen = False
        #: The job's own account of the error that ended it (``file.jl:LINE: message``), from its error record.
        self.failure: str | None = None
        self._pending: list[str] = []
        self._pending_level = logging.INFO
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> OutputSink:
        self.full_output.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.full_output.open("w", encoding="utf-8", errors="replace")
        # The flusher runs in a copy of this context, so Prefect's run context reaches its log calls.
        self._flusher = threading.Thread(target=contextvars.copy_context().run, args=(self._flush_loop,), daemon=True)
        self._flusher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Send what is pending; keep the full output file only when the cap was reached."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
            self._flusher = None
        with self._lock:
            self._send_pending()
            if self._file is not None:
                self._file.close()
                self._file = None
            if self.capped:
                self.log.warning(
                    "Julia output: %d lines, %d bytes; %d bytes were sent to the run log. The full output is in %s",
                    self.lines,
                    self.bytes,
                    self.sent,
                    self.full_output,
                )
            else:
                with contextlib.suppress(OSError):
                    self.full_output.unlink()

    def freeze_tails(self) -> None:
        """Keep the tails as they are now: what a job prints while it is being killed is not its story."""
        self.tails_frozen = True

    # --- input -------------------------------------------------------------------------------------------

    def line(self, text: str, *, stderr: bool = False, level: int = logging.INFO, record: bool = False) -> None:
        """One output line: a plain line, or (``record``) a rendered log record at ``level``."""
        if not text.strip():
            return
        if self.scrub is not None:
            text = self.scrub(text)
        with self._lock:
            self.lines += 1
            self.bytes += len(text) + 1
            if self._file is not None:
                self._file.write(text + "\n")
            if not self.tails_frozen:
                tail = self.stderr_tail if stderr else self.stdout_tail
                tail.append(f"{logging.getLevelName(level)}: {text}" if record else text)
            if record or level >= logging.WARNING:  # a log record of the job stays one record, at its level
                self._send_pending()
                self._send(level, text)
                return
            if self._pending and (level != self._pending_level or self._pending_bytes >= self.batch_bytes):
                self._send_pending()
            if not self._pending:
                self._pending_level, self._pending_since = level, time.monotonic()
            self._pending.append(text)
            self._pending_bytes += len(text) + 1

    # --- output ------------------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.batch_seconds / 2):
            with self._lock:
                if self._pending and time.monotonic() - self._pending_since >= self.batch_seconds:
                    self._send_pending()

    def _send_pending(self) -> None:
        if self._pending:
            text = "\n".join(self._pending)
            self._pending, self._pending_bytes = [], 0
            self._send(self._pending_level, text)

    def _send(self, level: int, text: str) -> None:
        if self.capped:
            return
        if self.sent + len(text) > self.cap:
            self.capped = True
            self.log.warning(
                "The Julia job's output passed %d bytes: the rest is not sent to the run log. "
                "The full output is kept in %s",
                self.cap,
                self.full_output,
            )
            return
        self.sent += len(text)
        self.log.log(level, text)


def unique_output_path(folder: Path, stem: str) -> Path:
    """A new file name in ``folder`` for the output of job ``stem``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return folder / f"{stem}-{stamp}-{os.getpid()}-{threading.get_ident() % 100000}-{time.monotonic_ns() % 10**6}.log"
