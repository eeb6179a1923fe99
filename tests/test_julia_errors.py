"""A Julia job's failure as a person sees it, and a Julia job riding out a restart of its server.

- ``invoke run`` of a flow whose Julia job calls ``error("bad data")``: exit code 1, the error and its trace
  printed once (one ERROR record with the job's file and line), no Python traceback, the run's state message
  ``bad_data.jl:LINE: bad data``; a warning logged before it keeps its level.
- A Julia job looking up a block again and again completes across a ``kill -9`` of its server and a restart of
  the server on the same home and port (``invoke server-up`` in a kit copy).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from harness import eventually, make_kit_repo
from kit_flows import add_flow, julia_flow
from live_kit import LiveKit
from prefect_julia.core.processes import read_pid_file

BAD_JOB = """using PrefectInterfaces
@warn "rows look odd" rows = 0
check(rows) = rows > 0 || error("bad data")
check(0)
"""
BAD_LINE = 3  # the line of error(...) above


@pytest.mark.server
@pytest.mark.julia
def test_invoke_run_prints_a_julia_error_once_without_python_tracebacks(live_kit: LiveKit) -> None:
    root = live_kit.repo.root
    add_flow(root, "baddata", julia_flow("baddata", "bad_data"), jobs={"bad_data": BAD_JOB})
    live_kit.invoke("deploy", "--env", "dev", timeout=300).check_returncode()

    run = live_kit.invoke("run", "baddata", "--env", "dev", "--timeout", "300", timeout=400)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback (most recent call last)" not in out, out
    # Records as invoke run prints them: "HH:MM:SS LEVEL   message" (a message may go on over more lines).
    records = [line.split(maxsplit=2) for line in run.stdout.splitlines() if re.match(r"^\d\d:\d\d:\d\d ", line)]
    errors = [r[2] for r in records if len(r) == 3 and r[1] == "ERROR" and "bad data" in r[2]]
    assert len(errors) == 1, out
    assert f"bad_data.jl:{BAD_LINE})" in errors[0], out
    assert out.count("Stacktrace:") == 1 and out.count(f"check(::Int64) at bad_data.jl:{BAD_LINE}") == 1, out
    assert "ERROR: LoadError" not in out, out
    assert any(r[1] == "WARNING" and r[2].startswith("rows look odd") for r in records if len(r) == 3), out
    found = re.search(r"flow-run/([0-9a-f-]{36})", out)
    assert found, out
    from prefect_julia.kit.access.security import api_client

    client = api_client(live_kit.repo.environment("dev"))  # with the credential the server's first start made
    tasks = client.request("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [found.group(1)]}}})
    assert [t["state"]["message"] for t in tasks] == [
        f"Task run encountered an exception JuliaFailed: bad_data.jl:{BAD_LINE}: bad data"
    ]


LOOKUP_JOB = """using PrefectInterfaces
args = parseargs()
stop, progress = args["stop"], args["progress"]
n, started = 0, time()
while true
    b = PrefectBlock("secret/outage-probe")
    @assert secretvalue(b) == "still-here"
    global n += 1
    write(progress, string(n))
    (isfile(stop) || time() - started > 600) && break
    sleep(0.2)
end
setresult(Dict("lookups" => n, "stopped" => isfile(stop)))
"""


@pytest.mark.server
@pytest.mark.julia
def test_a_julia_job_rides_out_a_killed_and_restarted_server(tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    from prefect_julia.kit.access.prefect_api import settings_for
    from prefect_julia.runtime.bridge import run_julia

    repo = make_kit_repo(tmp_path / "repo", project=True)
    repo.invoke("server-up", "--env", "dev", timeout=300, check=True)
    env = repo.environment("dev")  # with the credential the first start made
    try:
        with settings_for(env):
            Secret(value="still-here").save("outage-probe", overwrite=True)
        (repo.root / "julia" / "jobs" / "lookups.jl").write_text(LOOKUP_JOB)
        stop, progress = tmp_path / "stop", tmp_path / "progress"
        job_env = {**env.process_env(repo.environ()), "PREFECT_JULIA_API_PATIENCE": "120"}

        import threading

        outcome: dict[str, object] = {}

        def job() -> None:
            try:
                outcome["result"] = run_julia(
                    "lookups",
                    {"stop": stop, "progress": progress},
                    env=job_env,
                    project=repo.root / "julia",
                    timeout=600,
                ).result
            except Exception as error:  # reported by the assertion below
                outcome["error"] = error

        runner = threading.Thread(target=job)
        runner.start()
        eventually(lambda: progress.exists() or not runner.is_alive(), 180, "the job's first block lookup")
        assert "error" not in outcome, outcome.get("error")
        record = read_pid_file(env.files.server_pid)
        assert record is not None
        os.kill(record.pid, signal.SIGKILL)
        eventually(lambda: not _alive(record.pid), 30, "the killed server to be gone")
        before = int(progress.read_text() or 0)
        repo.invoke("server-up", "--env", "dev", timeout=300, check=True)
        assert env.files.server_pid.exists()
        eventually(lambda: int(progress.read_text() or 0) > before, 180, "a lookup after the restart")
        stop.touch()
        runner.join(timeout=300)
        assert not runner.is_alive()
        assert "error" not in outcome, outcome.get("error")
        result = outcome["result"]
        assert isinstance(result, dict) and result["stopped"] is True and result["lookups"] > before, result
    finally:
        repo.invoke("server-down", "--env", "dev", timeout=300)


def _alive(pid: int) -> bool:
    from prefect_julia.core import processes

    return processes.running(pid)


def test_invoke_run_prints_records_without_python_tracebacks_or_echoes_of_a_julia_error() -> None:
    from prefect_julia.kit.run.runs import LogFollower, _log_line

    traced = (
        "Task run failed with exception: ValueError('x')\nTraceback (most recent call last):\n  File ...\nValueError: x"
    )
    assert _log_line({"timestamp": "2026-01-02T03:04:05", "level": 40, "message": traced}) == (
        "03:04:05 ERROR   Task run failed with exception: ValueError('x')"
    )
    printed: list[str] = []
    follower = LogFollower(None, "run-id", printed.append)  # type: ignore[arg-type]  # only its printer is used
    lines = [
        "bad data (@ Main /j/bad_data.jl:3)\nStacktrace:\n [1] check(::Int64) at bad_data.jl:3",
        "Task run failed with exception: JuliaFailed('bad_data.jl:3: bad data')\nTraceback (most recent call last):",
        "Finished in state Failed('Task run encountered an exception JuliaFailed: bad_data.jl:3: bad data')",
        "Encountered exception during execution: JuliaFailed('bad_data.jl:3: bad data')",
        "flow run: Finished in state Failed('Flow run encountered an exception: JuliaFailed: bad_data.jl:3: bad data')",
        "Task run failed with exception: ValueError('x')",
    ]
    for message in lines:
        follower.write(_log_line({"timestamp": "2026-01-02T03:04:05", "level": 40, "message": message}))
    assert [line.split(maxsplit=2)[2] for line in printed] == [lines[0], lines[-1]]
