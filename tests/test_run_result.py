"""What a completed run hands back: the flow run's return value (kit/runs.result_line), its own closing log line
told apart from its task runs', and the demo's table artifact with the Julia job's column order.

Real server, real process worker, real julia (the session's shared kit, tests/live_kit.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from live_kit import LiveKit
from prefect_julia.kit.run import runs

pytestmark = [pytest.mark.server, pytest.mark.julia]

#: The order the Julia job (julia/jobs/summarize_readings.jl) declares its summary's columns in.
SUMMARY_COLUMNS = [
    "station",
    "readings",
    "mean_temperature_c",
    "min_temperature_c",
    "max_temperature_c",
    "mean_humidity_pct",
]


def _run(kit: LiveKit, deployment: str, **params: str) -> tuple[runs.RunOutcome, list[str]]:
    lines: list[str] = []
    outcome = runs.run(kit.env, deployment, dict(params), timeout=600, write_log=lines.append)
    return outcome, lines


def _artifact_rows(kit: LiveKit, flow_run_id: str, key: str) -> list[dict[str, Any]]:
    from prefect_julia.kit.access.security import api_client

    found = api_client(kit.env).request(
        "POST", "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}}
    )
    assert len(found) == 1, found
    data = found[0]["data"]
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else data
    return rows


def test_a_flow_runs_return_value_is_shown(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    outcome, lines = _run(live_kit, "quick", count="3", label="shown")
    assert runs.result_line(live_kit.env, outcome) == 'returned: "shown-3"'
    closing = [line for line in lines if "Finished in state" in line]
    assert [line for line in closing if runs.FLOW_RUN_CLOSING in line] == closing[-1:], lines


def test_the_demo_returns_its_summary_and_publishes_the_columns_in_the_jobs_order(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    live_kit.repo.invoke("blocks", "--env", "dev", timeout=300, check=True, DEMO_API_TOKEN="result-test-token")
    outcome, lines = _run(live_kit, "daily")

    closing = [line for line in lines if "Finished in state Completed()" in line]
    own = [line for line in closing if runs.FLOW_RUN_CLOSING in line]
    assert len(own) == 1 and len(closing) > 1, lines  # task runs close with the same words, unmarked

    shown = runs.result_line(live_kit.env, outcome, limit=120)
    assert shown.startswith('returned: {"'), shown
    assert shown.endswith(")") and "... (all of it: " in shown, shown  # cut, naming the file with all of it
    kept = json.loads(Path(shown.rsplit("(all of it: ", 1)[1][:-1]).read_text(encoding="utf-8"))
    assert kept["output_path"].endswith(".csv")
    assert kept["columns"] == SUMMARY_COLUMNS
    assert [list(row) for row in kept["rows"]] == [SUMMARY_COLUMNS] * 4  # the job's own order, end to end

    table = _artifact_rows(live_kit, outcome.flow_run_id, "station-summary")
    assert [list(row) for row in table] == [SUMMARY_COLUMNS] * 4
    assert [row["station"] for row in table] == ["east", "north", "south", "west"]
