"""A server's log as the kit shows it: `invoke server-logs` starts at a record, `invoke server-status` explains
each service that logs errors (what it means, what to do). Plain files, no server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect_julia.kit.server import serverlog

RECORDS = [
    "06:00:00.100 | INFO    | uvicorn.error - Started server process [4242]",
    "06:00:01.000 | ERROR   | prefect.server.services.scheduler - Error scheduling deployment 'abc'.",
    "Traceback (most recent call last):",
    '  File "/x/scheduler.py", line 10, in run',
    "    insert()",
    "sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement",
    "06:01:01.000 | INFO    | prefect.server.services.foreman - fine",
]


def test_server_logs_start_at_the_record_a_traceback_belongs_to(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("\n".join(RECORDS) + "\n")
    assert serverlog.tail_records(log, 3).splitlines() == RECORDS[1:]  # the last 3 begin inside the traceback
    assert serverlog.tail_records(log, 1).splitlines() == RECORDS[-1:]  # a record: as asked
    assert serverlog.tail_records(log, 6).splitlines() == RECORDS[1:]
    assert serverlog.tail_records(tmp_path / "missing.log", 5) == ""


def test_a_log_without_any_record_is_shown_as_it_is(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("banner\n\nConfigure Prefect to communicate with the server with:\n")
    assert serverlog.tail_records(log, 2).splitlines() == ["", "Configure Prefect to communicate with the server with:"]


def test_uvicorn_records_count_as_records(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n  File x\nKeyError: 1\n"
    )
    assert serverlog.tail_records(log, 2).splitlines()[0] == "ERROR:    Exception in ASGI application"


def test_each_failing_service_is_explained_with_what_to_do() -> None:
    scheduler, other = serverlog.explain("dev", Counter({"scheduler": 12, "mystery": 1}))
    assert scheduler == (
        "dev: the server's scheduler service logged 12 errors since the server started, so deployments' schedules "
        "create no new runs. Read them with `invoke server-logs dev`; once the cause is fixed, restart the server "
        "(`invoke server-down dev`, then `invoke server-up dev`)."
    )
    assert other.startswith("dev: the server's mystery service logged 1 error since") and "server-logs dev" in other
    assert serverlog.explain("dev", Counter()) == []


def test_server_logs_follow_starts_at_a_record_then_prints_what_is_appended(tmp_path: Path) -> None:
    from prefect_julia.kit.server.servers import follow_log

    log = tmp_path / "server.log"
    log.write_text("\n".join(RECORDS) + "\n")
    shown: list[str] = []
    rounds = iter([False, True])

    def stop() -> bool:
        if not next(rounds):  # the first look at the file: a record is appended meanwhile
            with log.open("a") as more:
                more.write("06:02:00.000 | INFO    | appended\n")
            return False
        return True

    follow_log(log, lines=3, write=shown.append, stop=stop)
    assert "".join(shown).splitlines() == [*RECORDS[1:], "06:02:00.000 | INFO    | appended"]
