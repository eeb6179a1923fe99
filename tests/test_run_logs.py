"""`invoke run`'s log follower: it waits for the flow run's own closing line, not a task run's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import RunningServer
from harness import eventually
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.kit.run.runs import LogFollower

pytestmark = [pytest.mark.server]


def _log(run_id: str, message: str, task_run_id: str | None = None) -> dict[str, object]:
    stamp = datetime.now(UTC).isoformat()
    return {"name": "prefect", "level": 20, "message": message, "timestamp": stamp,
            "flow_run_id": run_id, "task_run_id": task_run_id}  # fmt: skip


def test_a_task_runs_closing_line_does_not_end_the_wait_for_the_flow_runs_last_lines(
    prefect_server: RunningServer,
) -> None:
    api = ApiClient(prefect_server.api_url, timeout=30)
    flow = api.request("POST", "/flows/", {"name": "log-follower"})
    run_id = str(api.request("POST", "/flow_runs/", {"flow_id": flow["id"]})["id"])
    task = {"flow_run_id": run_id, "task_key": "extract", "dynamic_key": "0", "name": "extract-0"}
    task_run_id = str(api.request("POST", "/task_runs/", task)["id"])
    lines: list[str] = []
    follower = LogFollower(api, run_id, lines.append)

    def poll_until(count: int) -> None:
        def polled() -> bool:
            if len(lines) < count:
                follower.poll()
            assert len(lines) >= count, lines
            return True

        eventually(polled, 30, f"{count} log lines")

    api.request("POST", "/logs/", [_log(run_id, "extracted 96 readings", task_run_id)])
    api.request("POST", "/logs/", [_log(run_id, "Finished in state Completed()", task_run_id)])
    poll_until(2)
    assert not follower.finished  # a task run ended; the flow run's last lines are still to come

    api.request("POST", "/logs/", [_log(run_id, "Julia program summarize_readings.jl finished in 1.9 s")])
    api.request("POST", "/logs/", [_log(run_id, "Finished in state Completed()")])
    poll_until(4)
    assert follower.finished
    assert "finished in 1.9 s" in lines[2]
