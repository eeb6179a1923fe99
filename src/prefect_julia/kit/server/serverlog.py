"""What a server's log says about its health beyond ``/api/health``: the services that log errors.

A server can answer ``/api/health`` while one of its background services fails every loop (e.g. the
scheduler with an incompatible SQLAlchemy: no scheduled run is ever created). ``service_errors`` reads the
log since the server's last start and counts ERROR/CRITICAL lines per logger, named by service.

Errors of the request handlers (``prefect.server.api.*``) are not counted: each is answered to the client
that made the request, which retries or reports it (e.g. a worker's channel dropped while sqlite was busy,
which Prefect itself logs as "a transient server error").
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

#: Prefect's standard log line: ``12:00:00.000 | ERROR   | prefect.server.services.scheduler - message``.
LINE = re.compile(r"\|\s*(ERROR|CRITICAL)\s*\|\s*([\w.\-]+) - ")
#: Written once at each start of ``prefect server start`` (uvicorn); errors before the last one are history.
START_MARKERS = ("Started server process", "Configure Prefect to communicate with the server")
#: Bytes read from the end of the log at most (a long-running server's log can be large).
WINDOW = 1_000_000
#: Loggers of request handlers: their errors reach the requesting client, so they say nothing of the services.
REQUEST_LOGGERS = "prefect.server.api."


def service_name(logger: str) -> str:
    """``prefect.server.services.scheduler`` -> ``scheduler``; other loggers lose their ``prefect.`` prefix."""
    for prefix in ("prefect.server.services.", "prefect.server.", "prefect."):
        if logger.startswith(prefix):
            return logger[len(prefix) :]
    return logger


def recent_lines(log_file: Path) -> list[str]:
    """The log's lines since the server's last start (within the last ``WINDOW`` bytes)."""
    try:
        with log_file.open("rb") as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(max(0, size - WINDOW))
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if any(marker in line for marker in START_MARKERS)]
    return lines[starts[-1] :] if starts else lines


def service_errors(log_file: Path) -> Counter[str]:
    """ERROR/CRITICAL lines per service since the server's last start (empty: none, or no log)."""
    found: Counter[str] = Counter()
    for line in recent_lines(log_file):
        match = LINE.search(line)
        if match and not match[2].startswith(REQUEST_LOGGERS):
            found[service_name(match[2])] += 1
    return found


def describe(errors: Counter[str]) -> str:
    """``scheduler: 12 errors`` style summary for a status table; ``-`` when there are none."""
    if not errors:
        return "-"
    return ", ".join(f"{name}: {count} error{'s' if count != 1 else ''}" for name, count in errors.most_common())
