"""Stopping never strands work: with runs in flight, `server-down`/`worker-down` refuse and list them; with
`--cancel` the runs end Cancelled and every process of theirs (flow run, Julia) is gone. After a worker crash,
`worker-up` marks the runs that can no longer finish Crashed, saying why.

Real server, real process worker, real Julia jobs (``sleepy``), through the front door (`invoke ...`).
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil
import pytest

from harness import eventually, kit_api
from live_kit import LiveKit, read_run, start_run, wait_state
from prefect_julia.core import processes
from prefect_julia.core.processes import is_alive, read_pid_file
from prefect_julia.kit.server import inflight, servers
from prefect_julia.kit.server.inflight import InFlightRun

pytestmark = [pytest.mark.server, pytest.mark.julia]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_with_julia(kit: LiveKit, run_id: str, timeout: float = 300) -> list[psutil.Process]:
    """Wait until the run is Running and its process tree holds the Julia job; return the tree."""
    wait_state(kit.env, run_id, {"Running"}, timeout=timeout)

    def with_julia() -> list[psutil.Process]:
        run = read_run(kit.env, run_id)
        pid = int(run.infrastructure_pid) if run.infrastructure_pid else None
        members = processes.tree(pid) if pid else []
        return members if any("julia" in " ".join(m.cmdline()) for m in members[1:] if _alive(m)) else []

    return eventually(with_julia, timeout, f"run {run_id} to start its Julia job")


def _worker(kit: LiveKit) -> object:
    record = read_pid_file(kit.env.files.worker_pid)
    assert record is not None and is_alive(record)
    return record


def test_stops_refuse_while_runs_are_in_flight_and_cancel_ends_them(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    worker = _worker(live_kit)
    run_id = start_run(live_kit.env, "sleepy/sleepy")
    members = _running_with_julia(live_kit, run_id)
    name = read_run(live_kit.env, run_id).name

    for task in ("worker-down", "server-down"):
        refused = live_kit.invoke(task, "--env", "dev")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert name in refused.stderr and "in flight" in refused.stderr
        assert f"invoke {task} dev --cancel" in refused.stderr and "fix:" in refused.stderr
        assert "Traceback" not in refused.stdout + refused.stderr
    assert is_alive(worker) and servers.is_healthy(live_kit.env.api_url)  # nothing was stopped
    assert _alive(members[0]) and read_run(live_kit.env, run_id).state.name == "Running"

    down = live_kit.invoke("worker-down", "--env", "dev", "--cancel")
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"cancelled  {name}" in down.stdout and "worker stopped" in down.stdout
    run = read_run(live_kit.env, run_id)
    assert run.state.name == "Cancelled" and "--cancel" in (run.state.message or "")
    assert not [m.pid for m in members if _alive(m)], "a process of the cancelled run survived"
    assert not is_alive(worker)


def test_worker_up_after_a_worker_crash_marks_lost_runs_crashed(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    worker = read_pid_file(live_kit.env.files.worker_pid)
    assert worker is not None
    run_id = start_run(live_kit.env, "sleepy/sleepy")
    members = _running_with_julia(live_kit, run_id)
    for member in [psutil.Process(worker.pid), *members]:  # the worker and its run die at once, as in a crash
        os.kill(member.pid, signal.SIGKILL)
    eventually(lambda: not any(_alive(m) for m in members), 30, "the killed run's processes to die")
    assert read_run(live_kit.env, run_id).state.name == "Running"  # what the server believes: stuck

    up = live_kit.invoke("worker-up", "--env", "dev")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "marked Crashed" in up.stdout and read_run(live_kit.env, run_id).name in up.stdout
    run = read_run(live_kit.env, run_id)
    assert run.state.name == "Crashed"
    assert "worker stopped" in run.state.message and f"pid {members[0].pid}" in run.state.message

    again = live_kit.invoke("worker-up", "--env", "dev")  # a running worker: nothing more is marked
    assert again.returncode == 0 and "marked Crashed" not in again.stdout


def test_server_up_after_a_server_crash_marks_lost_runs_crashed(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    run_id = start_run(live_kit.env, "sleepy/sleepy")
    members = _running_with_julia(live_kit, run_id)
    server = read_pid_file(live_kit.env.files.server_pid)
    worker = read_pid_file(live_kit.env.files.worker_pid)
    assert server is not None and worker is not None
    doomed = [*processes.tree(server.pid), *processes.tree(worker.pid), *members]  # a power cut: all at once
    for process in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    eventually(lambda: not any(_alive(p) for p in doomed), 30, "the killed server, worker and run to die")

    up = live_kit.invoke("server-up", "--env", "dev")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "marked Crashed" in up.stdout, up.stdout
    run = read_run(live_kit.env, run_id)
    assert run.state.name == "Crashed" and "server stopped" in run.state.message, run.state
    live_kit.worker_up()  # the session's later tests want a worker


def test_the_kits_cancel_message_is_the_last_word_once_the_worker_has_stopped(live_kit: LiveKit) -> None:
    """Prefect's runner in the worker reacts to the Cancelling state the kit sets and, when it finishes after the
    kit, writes its own Cancelled message: the race seen once under load in the test above. Here the runner's
    write is made by hand (its timing cannot be forced), then the stop confirms what it cancelled."""
    env = live_kit.env
    flow = kit_api(env, "POST", "/flows/", {"name": "confirm-cancel"})
    made = [kit_api(env, "POST", "/flow_runs/", {"flow_id": flow["id"]}) for _ in range(2)]
    runner_says = {"type": "CANCELLED", "name": "Cancelled", "message": "Flow run was cancelled successfully."}
    completed = {"type": "COMPLETED", "name": "Completed", "message": "done"}
    for run, state in zip(made, (runner_says, completed), strict=True):
        kit_api(env, "POST", f"/flow_runs/{run['id']}/set_state", {"state": state, "force": True})
    runs = [InFlightRun(run["id"], run["name"], "-", "Running", None, "") for run in made]

    inflight.confirm_cancelled(env, runs, task="worker-down")

    overwritten, left = (read_run(env, run["id"]).state for run in made)
    assert overwritten.name == "Cancelled" and overwritten.message == "Cancelled by `invoke worker-down dev --cancel`."
    assert left.name == "Completed" and left.message == "done"  # only a cancelled run is confirmed
