"""kit/run/status.py: the on-call screen as ``invoke status`` prints it (render), and how it reads times and
schedules, from values a server would give (no server: collect is exercised by test_automations)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from prefect_julia.kit.environment.environments import resolve_environment
from prefect_julia.kit.run.status import (
    AutomationRow,
    DeploymentRow,
    EnvironmentStatus,
    RunRow,
    _schedule,
    _span,
    _when,
    render,
)
from prefect_julia.kit.worker.workers import WorkerState

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LOG = Path("/home/ops/.prefect-dev/worker.log")


def _down(**changes: object) -> EnvironmentStatus:
    worker = WorkerState(env="dev", pool="dev-process", pid=None, online=False, log=LOG)
    status = EnvironmentStatus(
        env="dev",
        api_url="http://127.0.0.1:4201/api",
        ui_url="http://127.0.0.1:4201",
        server_pid=None,
        server_healthy=False,
        worker=worker,
    )
    return replace(status, **changes)  # type: ignore[arg-type]


def test_a_server_that_is_down_says_how_to_start_it_and_nothing_more() -> None:
    screen = render(_down(julia_image="Julia image: current"))
    assert screen.splitlines() == [
        "== dev   http://127.0.0.1:4201",
        "server   down   http://127.0.0.1:4201/api",
        f"worker   down   pool dev-process   log {LOG}",
        "Julia image: current",
        "Start it with `invoke server-up dev` to see deployments, runs and automations.",
    ]


def test_an_empty_healthy_environment_says_what_to_do_next() -> None:
    status = _down(server_healthy=True, server_pid=812)
    status.worker = replace(status.worker, pid=900, online=True)
    screen = render(status)
    assert "server   healthy (pid 812)   http://127.0.0.1:4201/api" in screen
    assert f"worker   online (pid 900)   pool dev-process   log {LOG}" in screen
    assert "deployments (0)\n  none: run `invoke deploy dev`" in screen
    assert "last runs (0)\n  none yet" in screen
    assert "automations (0)\n  none: declare them in envs/dev.automations.toml" in screen
    assert "schedules paused" not in screen and "Start it with" not in screen


def test_a_busy_environment_shows_its_tables_drift_limits_and_paused_schedules() -> None:
    status = _down(
        server_healthy=True,
        pool_limit=2,
        drift="plan: 1 to change (run `invoke plan dev`)",
        schedules_paused=True,
        deployments=[DeploymentRow("etl/nightly", "0 3 * * * (paused)", "-", paused=True, limit="1")],
        runs=[RunRow("brave-otter", "etl/nightly", "Failed", "2026-11-21 11:00 UTC (1.0 h ago)", "12 s")],
        automations=[AutomationRow("prefect-julia/run-failed", False, "notify ops when a run fails")],
    )
    status.worker = replace(status.worker, pid=900, online=False)
    lines = render(status).splitlines()
    assert (
        f"worker   running, not seen online (pid 900)   pool dev-process (at most 2 runs at once)   log {LOG}" in lines
    )
    assert lines[3] == "plan: 1 to change (run `invoke plan dev`)"
    at = lines.index("deployments (1)")
    assert lines[at + 1] == "  schedules paused in dev (PREFECT_JULIA_SCHEDULES=paused): runs start only when asked"
    assert lines[at + 2].split() == ["deployment", "schedule", "next", "run", "limit", "paused"]
    assert lines[at + 4].split() == ["etl/nightly", "0", "3", "*", "*", "*", "(paused)", "-", "1", "yes"]
    at = lines.index("last runs (1)")
    assert lines[at + 3].startswith("brave-otter  etl/nightly  Failed  2026-11-21 11:00 UTC (1.0 h ago)  12 s")
    at = lines.index("automations (1)")
    assert lines[at + 3].split(maxsplit=2) == ["prefect-julia/run-failed", "no", "notify ops when a run fails"]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.25, "0.2 s"), (9.96, "10.0 s"), (10, "10 s"), (89, "89 s"), (90, "2 min"), (5399, "90 min"),
     (5400, "1.5 h"), (172799, "48.0 h"), (172800, "2 d")],
)  # fmt: skip
def test_spans_are_read_in_the_unit_a_person_would_use(seconds: float, said: str) -> None:
    assert _span(seconds) == said


def test_a_moment_is_shown_in_utc_and_from_now() -> None:
    assert _when(None, NOW) == "-"
    assert _when(NOW + timedelta(minutes=30), NOW) == "2026-11-21 12:30 UTC (30 min from now)"
    assert _when(NOW - timedelta(hours=3), NOW) == "2026-11-21 09:00 UTC (3.0 h ago)"


def test_an_inactive_schedule_reads_paused_where_the_environment_pauses_them_else_off() -> None:
    cron = SimpleNamespace(schedule=SimpleNamespace(cron="0 3 * * *"), active=True)
    off = SimpleNamespace(schedule=SimpleNamespace(cron=None, interval=3600.0), active=False)
    deployment = SimpleNamespace(schedules=[cron, off])
    assert _schedule(deployment) == "0 3 * * *, 3600.0 (off)"
    assert _schedule(deployment, paused_here=True) == "0 3 * * *, 3600.0 (paused)"
    assert _schedule(SimpleNamespace(schedules=None)) == "-"


def test_an_environment_not_yet_created_reads_not_created_in_server_status(kit_repo: Any, tmp_path: Path) -> None:
    from prefect_julia.kit.run.status import size_cells
    from prefect_julia.kit.server import servers

    env = kit_repo.environment("dev")
    env.files.database.write_bytes(b"x" * 2048)  # a home with its database
    size, database = size_cells(env, servers.server_status(env, ""))
    assert size.endswith(" KB") and database.endswith(" (2.0 KB)"), (size, database)
    env.files.database.unlink()  # a home without one
    s = servers.server_status(env, "")
    assert size_cells(env, s) == ("not created", f"{s.database} (not created)")
    nowhere = resolve_environment("dev", kit_repo.root, kit_repo.environ(PREFECT_JULIA_HOME=str(tmp_path / "none")))
    assert not nowhere.home.exists()  # no home at all
    assert size_cells(nowhere, servers.server_status(nowhere, ""))[0] == "not created"
