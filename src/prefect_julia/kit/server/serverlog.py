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

from prefect_julia.core.files import tail

#: Prefect's standard log line: ``12:00:00.000 | ERROR   | prefect.server.services.scheduler - message``.
LINE = re.compile(r"\|\s*(ERROR|CRITICAL)\s*\|\s*([\w.\-]+) - ")
#: Written once at each start of ``prefect server start`` (uvicorn); errors before the last one are history.
START_MARKERS = ("Started server process", "Configure Prefect to communicate with the server")
#: Bytes read from the end of the log at most (a long-running server's log can be large).
WINDOW = 1_000_000
#: Where a log record starts: Prefect's ``12:00:00.000 | LEVEL | ...`` or uvicorn's ``ERROR:    ...``; every other
#: line (a traceback, a banner) continues the record above it.
RECORD = re.compile(r"^(?:\d{2}:\d{2}:\d{2}\.\d+ \||(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):\s)")
#: Lines before the last ``lines`` that :func:`tail_records` reads back at most to find where a record starts.
LOOK_BACK = 500
#: What a failing background service of the server means for its users.
SERVICE_EFFECTS = {
    "scheduler": "deployments' schedules create no new runs",
    "late_runs": "runs past their start are not marked Late (late-run automations do not fire)",
    "foreman": "workers and work pools that went away are not marked offline",
    "cancellation_cleanup": "cancelled flow runs may leave their task runs and subflows running",
    "pause_expirations": "paused runs whose pause timed out are not failed",
    "task_run_recorder": "task runs' states may be missing from the UI",
    "repossessor": "expired concurrency slots are not given back (runs may wait on a limit)",
    "db_vacuum": "old records are not removed (the database keeps growing)",
    "events.services.event_persister": "events are not stored (the UI's event feed and automations miss them)",
    "events.services.triggers": "automations do not fire",
    "events.services.actions": "automations' actions (notifications) are not carried out",
}
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


def tail_records(log_file: Path, lines: int) -> str:
    """The last ``lines`` lines of a server log, begun at a record: when they start inside one (the middle of a
    traceback), that record's earlier lines come first (up to ``LOOK_BACK`` of them)."""
    shown = tail(log_file, lines + LOOK_BACK).splitlines()
    first = max(0, len(shown) - max(lines, 1))
    before = [i for i in range(first, -1, -1) if i < len(shown) and RECORD.match(shown[i])]
    after = [i for i in range(first, len(shown)) if RECORD.match(shown[i])]
    start = before[0] if before else after[0] if after else first  # no record at all: as it is
    return "\n".join(shown[start:])


def explain(env_name: str, errors: Counter[str]) -> list[str]:
    """One sentence per service in ``errors``: what its errors mean and what to do (for ``invoke server-status``)."""
    lines = []
    for name, count in errors.most_common():
        effect = SERVICE_EFFECTS.get(name, "that part of the server does not do its work")
        lines.append(
            f"{env_name}: the server's {name} service logged {count} error{'s' if count != 1 else ''} since the "
            f"server started, so {effect}. Read them with `invoke server-logs {env_name}`; once the cause is fixed, "
            f"restart the server (`invoke server-down {env_name}`, then `invoke server-up {env_name}`)."
        )
    return lines
