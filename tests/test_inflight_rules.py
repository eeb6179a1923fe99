"""kit/server/inflight.py without a server: reading a run's pid, the refusal's table and fix, and which processes
count as a flow run's (real processes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from prefect_julia.kit.server.inflight import HEADERS, InFlightRun, RunsInFlight, _pid, is_flow_run_process, refuse

RUNS = [
    InFlightRun("id-1", "brave-otter", "nightly", "Running", 4321, "03:04:05"),
    InFlightRun("id-2", "calm-heron", "hourly", "Pending", None, ""),
]


@pytest.mark.parametrize(
    ("raw", "pid"),
    [("4321", 4321), ("host-a:4321", 4321), (" 12 ", 12), (None, None), ("", None), ("host:abc", None), ("-3", None)],
)
def test_a_runs_infrastructure_pid_is_read_after_its_host(raw: str | None, pid: int | None) -> None:
    assert _pid(raw) == pid


def test_a_row_shows_a_dash_for_what_is_not_known() -> None:
    assert [run.row() for run in RUNS] == [
        ["brave-otter", "nightly", "Running", "03:04:05", "4321", "id-1"],
        ["calm-heron", "hourly", "Pending", "-", "-", "id-2"],
    ]
    assert len(HEADERS) == len(RUNS[0].row())


def test_the_refusal_lists_the_runs_and_says_how_to_cancel_them() -> None:
    env: Any = SimpleNamespace(name="dev")  # refuse reads only the environment's name
    error = refuse(env, RUNS, "worker", "worker-down")
    assert isinstance(error, RunsInFlight) and error.runs == RUNS
    lines = error.message.splitlines()
    assert lines[0] == "2 flow run(s) of dev are in flight; stopping the worker now would strand them:"
    assert lines[1].split() == HEADERS
    assert lines[3].split() == RUNS[0].row() and lines[4].split() == [
        "calm-heron",
        "hourly",
        "Pending",
        "-",
        "-",
        "id-2",
    ]
    assert error.hint == "Wait for them to finish, or run `invoke worker-down dev --cancel` to cancel them first."


@pytest.fixture
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    started = {
        "prefect": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "prefect-flow-run"]),
        "other": subprocess.Popen(["sleep", "60"]),
    }
    yield started
    for process in started.values():
        process.kill()
        process.wait()


def test_only_a_running_prefect_process_is_a_flow_runs(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    assert is_flow_run_process(processes["prefect"].pid)
    assert not is_flow_run_process(processes["other"].pid)  # a pid reused by something else
    assert not is_flow_run_process(None)
    gone = processes["prefect"]
    gone.kill()
    gone.wait()
    assert not is_flow_run_process(gone.pid)
