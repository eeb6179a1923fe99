"""Retries of Julia jobs: off by default, per call, a timeout retried only when asked; real server, real julia."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefect_julia.core.errors import ConfigError
from prefect_julia.runtime.bridge import julia_job

FLAKY = """
marker = ARGS[1][length("--marker=") + 1:end]
if isfile(marker)
    println("second attempt works")
else
    touch(marker)
    println(stderr, "first attempt fails")
    exit(2)
end
"""

HANGS = """
println("attempt started")
sleep(60)
"""


def _logs(flow_run_id: Any) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


@pytest.mark.server
@pytest.mark.julia
def test_a_job_failing_once_then_passing_leaves_a_completed_run_with_both_attempts(
    on_server: Any, tmp_path: Path
) -> None:
    from prefect import flow

    program = tmp_path / "flaky.jl"
    program.write_text(FLAKY)

    @flow(name="julia-flaky")
    def flaky(retries: int = 0) -> Any:
        return julia_job(
            str(program),
            {"marker": str(tmp_path / "marker")},
            timeout=120,
            retries=retries,
            retry_delay=0.5,
            anywhere=True,
        )

    failed = flaky(return_state=True)  # off by default: the first failure fails the run
    assert failed.is_failed()
    (tmp_path / "marker").unlink()

    state = flaky(retries=1, return_state=True)
    assert state.is_completed(), state.message
    logs = _logs(state.state_details.flow_run_id)
    for expected in (
        "attempt 1 of 2",
        "first attempt fails",
        "attempt 1 of 2 failed (Julia program flaky.jl exited with code 2.); retrying in 0.5 s",
        "attempt 2 of 2",
        "second attempt works",
    ):
        assert expected in logs, logs
    assert "attempt 1 of" not in _logs(failed.state_details.flow_run_id)  # no retry was asked for


@pytest.mark.server
@pytest.mark.julia
@pytest.mark.parametrize("retry_timeouts", [False, True])
def test_a_timeout_is_retried_only_when_asked(on_server: Any, tmp_path: Path, retry_timeouts: bool) -> None:
    from prefect import flow

    program = tmp_path / "hangs.jl"
    program.write_text(HANGS)

    @flow(name="julia-hangs")
    def hangs() -> Any:
        return julia_job(str(program), {}, timeout=3, retries=1, retry_timeouts=retry_timeouts, anywhere=True)

    state = hangs(return_state=True)
    assert state.is_failed() and "timeout" in (state.message or "")
    logs = _logs(state.state_details.flow_run_id)
    assert logs.count("Running Julia program hangs.jl") == (2 if retry_timeouts else 1), logs  # one per attempt
    assert ("attempt 2 of 2" in logs) is retry_timeouts
    assert ("timeouts are not retried" in logs) is not retry_timeouts


@pytest.mark.parametrize(
    ("kwargs", "problem"), [({"retries": -1}, "retries=-1"), ({"retry_delay": -2}, "retry_delay=-2")]
)
def test_bad_retry_settings(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        julia_job.fn("anything", {}, **kwargs)
    assert "fix:" in str(raised.value)
