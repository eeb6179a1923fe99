"""The fork server that starts flow runs warm (``runtime/forkserver.py``), against the session's real server.

Each test starts a real fork server and runs real flow runs through its client, exactly as the worker's
process does (``python -m prefect_julia.runtime.forkserver`` with PREFECT__FLOW_RUN_ID and the entrypoint in
its environment):
- a forked run takes the client's folder, environment and Prefect settings, not the server's (the server is
  started pointing at a dead API URL), and its output reaches the client's own streams;
- the exit status of a failing flow is the same as a cold ``python -m prefect.engine``;
- SIGTERM to the client reaches the run; SIGKILL of the client stops the run all the same;
- a client whose interpreter settings differ (PYTHONPATH), or that finds no server, runs cold and completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import RunningServer, eventually, free_port, wait_gone
from prefect_julia.core import processes
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.runtime.forkserver import CLIENT_MODULE, SOCKET_ENV

pytestmark = [pytest.mark.server]

FLOWS = """
import json, os, sys, time
from pathlib import Path
from prefect import flow


@flow(name="fs-report", log_prints=True)
def report(out: str = "") -> str:
    Path(os.environ["FS_OUT"]).write_text(json.dumps({
        "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "cwd": os.getcwd(),
        "marker": os.environ.get("FS_MARKER"),
        "argv": sys.argv,
    }))
    print("fs-report says hello")
    return "ok"


@flow(name="fs-fail")
def fail() -> None:
    raise RuntimeError("fs-fail fails on purpose")


@flow(name="fs-sleep")
def sleep() -> None:
    Path(os.environ["FS_OUT"]).write_text(json.dumps({"pid": os.getpid()}))
    time.sleep(600)
"""


class ForkServer:
    def __init__(self, process: subprocess.Popen[bytes], socket: Path, log: Path) -> None:
        self.process = process
        self.socket = socket
        self.log = log

    def lines(self) -> str:
        return self.log.read_text()


@pytest.fixture
def fork_server(tmp_path: Path, prefect_server: RunningServer) -> Iterator[ForkServer]:
    folder = tmp_path / "fs"
    folder.mkdir(mode=0o700)
    socket_path = folder / "socket"
    log = tmp_path / "forkserver.log"
    env = {**prefect_server.env(), "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}  # a dead API
    env.pop("PYTHONPATH", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", CLIENT_MODULE, "--serve", str(socket_path)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # in this session, as the worker's is in the worker's: a forked run can join its client's group
    ready = f"fork server ready on {socket_path}"  # what it prints once it listens

    def started() -> str:
        if process.poll() is not None:
            return "exited"  # a server that died is not waited for
        return "ready" if ready in log.read_text() else ""

    assert eventually(started, 60, f"the line {ready!r} in {log}") == "ready", log.read_text()
    yield ForkServer(process, socket_path, log)
    processes.stop_tree(process.pid, grace=5)
    process.wait()
    assert not socket_path.exists()  # it removes its socket when it stops


def _flow_run(api: ApiClient, flow_name: str) -> str:
    flow = api.request("POST", "/flows/", {"name": flow_name})
    run = api.request("POST", "/flow_runs/", {"flow_id": flow["id"], "state": {"type": "SCHEDULED"}})
    return str(run["id"])


def _state(api: ApiClient, run_id: str) -> str:
    return str(api.request("GET", f"/flow_runs/{run_id}")["state"]["type"])


def _client(
    server: RunningServer, tmp_path: Path, flow: str, socket_path: Path | None, **extra: str
) -> tuple[subprocess.Popen[str], str, Path]:
    api = ApiClient(server.api_url)
    run_id = _flow_run(api, {"report": "fs-report", "fail": "fs-fail", "sleep": "fs-sleep"}[flow])
    (tmp_path / "flows.py").write_text(FLOWS)
    out = tmp_path / f"{flow}.json"
    env = {
        **server.env(),
        "PREFECT__FLOW_RUN_ID": run_id,
        "PREFECT__FLOW_ENTRYPOINT": f"{tmp_path / 'flows.py'}:{flow}",
        "FS_OUT": str(out),
        "FS_MARKER": "a 'quoted' $(value)",
        **extra,
    }
    env.pop("PYTHONPATH", None)
    env.pop(SOCKET_ENV, None)
    if socket_path is not None:
        env[SOCKET_ENV] = str(socket_path)
    env.update(extra)
    process = subprocess.Popen(
        [sys.executable, "-m", CLIENT_MODULE],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, run_id, out


def _report(out: Path) -> dict[str, Any]:
    return dict(json.loads(out.read_text()))


def test_forked_run_takes_the_clients_folder_environment_and_streams(
    fork_server: ForkServer, prefect_server: RunningServer, tmp_path: Path
) -> None:
    process, run_id, out = _client(prefect_server, tmp_path, "report", fork_server.socket)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    report = _report(out)
    assert report["ppid"] == fork_server.process.pid  # forked by the server, not started cold
    assert report["pgid"] == process.pid  # in its client's process group: stopping that group stops the run
    assert f"client {process.pid} runs in pid {report['pid']}" in fork_server.lines()
    assert report["cwd"] == str(tmp_path) and report["marker"] == "a 'quoted' $(value)"
    assert "fs-report says hello" in output  # the run's console output reached the client's stdout
    # The server was started with a dead API URL: the run reached the real server through the client's settings.
    assert _state(ApiClient(prefect_server.api_url), run_id) == "COMPLETED"


def test_failing_flow_exits_as_a_cold_engine_does(
    fork_server: ForkServer, prefect_server: RunningServer, tmp_path: Path
) -> None:
    forked, forked_id, _ = _client(prefect_server, tmp_path, "fail", fork_server.socket)
    forked_output, _ = forked.communicate(timeout=120)
    cold, cold_id, _ = _client(prefect_server, tmp_path, "fail", None)
    cold_output, _ = cold.communicate(timeout=120)
    assert forked.returncode == cold.returncode, (forked_output, cold_output)  # the engine's own code, either way
    assert "fs-fail fails on purpose" in forked_output
    api = ApiClient(prefect_server.api_url)
    assert _state(api, forked_id) == _state(api, cold_id) == "FAILED"


def _wait_for(out: Path, process: subprocess.Popen[str]) -> dict[str, Any]:
    def started() -> str:
        if process.poll() is not None:
            return "exited"
        return "started" if out.exists() and out.read_text() else ""

    assert eventually(started, 120, f"the flow to write {out}") == "started", process.communicate()[0]
    return _report(out)


def test_sigterm_to_the_client_reaches_the_run(
    fork_server: ForkServer, prefect_server: RunningServer, tmp_path: Path
) -> None:
    process, run_id, out = _client(prefect_server, tmp_path, "sleep", fork_server.socket)
    child = _wait_for(out, process)["pid"]
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0, output
    assert wait_gone(child, 10), "the forked run outlived its client"
    assert _state(ApiClient(prefect_server.api_url), run_id) != "RUNNING"


def test_sigkill_of_the_client_stops_the_run(
    fork_server: ForkServer, prefect_server: RunningServer, tmp_path: Path
) -> None:
    process, _run_id, out = _client(prefect_server, tmp_path, "sleep", fork_server.socket)
    child = _wait_for(out, process)["pid"]
    assert processes.running(child) and child in [p.pid for p in processes.tree(process.pid)]
    process.kill()
    process.communicate(timeout=30)
    assert wait_gone(child, 20), "the forked run outlived its SIGKILLed client"
    assert fork_server.process.poll() is None  # the server itself goes on


@pytest.mark.parametrize("case", ["other PYTHONPATH", "no server"])
def test_runs_cold_when_it_cannot_fork(
    case: str, fork_server: ForkServer, prefect_server: RunningServer, tmp_path: Path
) -> None:
    if case == "no server":
        process, run_id, out = _client(prefect_server, tmp_path, "report", tmp_path / "missing.sock")
    else:
        process, run_id, out = _client(prefect_server, tmp_path, "report", fork_server.socket, PYTHONPATH=str(tmp_path))
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output
    report = _report(out)
    assert report["pid"] == process.pid  # the client became the engine itself (exec): a cold start
    assert report["ppid"] != fork_server.process.pid
    if case == "other PYTHONPATH":
        assert f"client {process.pid} starts cold: its interpreter settings differ" in fork_server.lines()
    assert _state(ApiClient(prefect_server.api_url), run_id) == "COMPLETED"
    assert os.environ.get(SOCKET_ENV) is None
