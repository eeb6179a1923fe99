"""Flow runs in flight: found before a server or worker stops, cancelled on request, marked Crashed when lost.

In flight means Pending, Running, Paused or Cancelling. ``server-down`` and ``worker-down`` refuse while runs
are in flight and list them; with ``--cancel`` each run is set Cancelling, its process tree (the flow-run
process, its Julia job and the job's children) is stopped, and the run is set Cancelled. After a crash,
``server-up`` and ``worker-up`` mark the runs whose process no longer runs as Crashed, saying why.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect_julia.core.errors import ServerError
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.core.processes import command_of, running, stop_tree
from prefect_julia.kit.environment.environments import Environment

IN_FLIGHT = ("PENDING", "RUNNING", "PAUSED", "CANCELLING")


@dataclass(frozen=True)
class InFlightRun:
    id: str
    name: str
    deployment: str
    state: str
    pid: int | None
    started: str

    def row(self) -> list[str]:
        return [self.name, self.deployment, self.state, self.started or "-", str(self.pid or "-"), self.id]


HEADERS = ["run", "deployment", "state", "started", "pid", "id"]


class RunsInFlight(ServerError):
    """A stop was refused because flow runs are in flight."""

    def __init__(self, message: str, runs: Sequence[InFlightRun], *, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.runs = list(runs)


def _pid(raw: str | None) -> int | None:
    text = (raw or "").rsplit(":", 1)[-1].strip()
    return int(text) if text.isdigit() else None


def _started(raw: object) -> str:
    """``HH:MM:SS`` (UTC) of a run's ISO start time, or "" without one."""
    try:
        return datetime.fromisoformat(str(raw)).strftime("%H:%M:%S") if raw else ""
    except ValueError:
        return ""


def _api(env: Environment) -> ApiClient:
    """A REST client of ``env``'s server, which must answer and be this checkout's server for ``env``. Plain
    requests: marking, listing and cancelling runs costs no Prefect import (seconds of a `server-up`)."""
    from prefect_julia.kit.access.prefect_api import require_up
    from prefect_julia.kit.access.security import api_client

    require_up(env, timeout=1.0)
    return api_client(env, timeout=30.0)


def _read(api: ApiClient, pool: str | None) -> list[InFlightRun]:
    body: dict[str, Any] = {"flow_runs": {"state": {"type": {"any_": list(IN_FLIGHT)}}}, "limit": 200}
    if pool:
        body["work_pools"] = {"name": {"any_": [pool]}}
    names: dict[str, str] = {}
    found = []
    for run in api.request("POST", "/flow_runs/filter", body):
        deployment_id = run.get("deployment_id")
        if deployment_id is not None and deployment_id not in names:
            try:
                names[deployment_id] = str(api.request("GET", f"/deployments/{deployment_id}")["name"])
            except (OSError, ValueError, KeyError, TypeError):  # a deployment removed meanwhile: show its id
                names[deployment_id] = str(deployment_id)
        state = run.get("state") or {}
        found.append(
            InFlightRun(
                id=str(run["id"]),
                name=str(run.get("name") or ""),
                deployment=names.get(deployment_id, "-") if deployment_id else "-",
                state=str(state.get("name") or "?"),
                pid=_pid(run.get("infrastructure_pid")),
                started=_started(run.get("start_time")),
            )
        )
    return found


def _set_state(api: ApiClient, run_id: str, state: str, message: str) -> None:
    """Force run ``run_id`` into ``state`` (a state type: CRASHED, CANCELLING, CANCELLED) with ``message``."""
    body = {"state": {"type": state, "name": state.title(), "message": message}, "force": True}
    api.request("POST", f"/flow_runs/{run_id}/set_state", body)


def in_flight(env: Environment, *, pool: str | None = None) -> list[InFlightRun]:
    """The runs in flight on ``env``'s server (only those of work pool ``pool`` when given)."""
    return _read(_api(env), pool)


def count(env: Environment) -> int | None:
    """How many flow runs of ``env`` are in flight (any pool); None when the server does not answer. Plain REST
    with the environment's credential and CSRF token, so it costs no Prefect import."""
    from prefect_julia.kit.access.security import api_client

    body = {"flow_runs": {"state": {"type": {"any_": list(IN_FLIGHT)}}}}
    try:
        return int(api_client(env, timeout=10.0).request("POST", "/flow_runs/count", body))
    except (OSError, ValueError, TypeError):
        return None


def stored_count(env: Environment) -> int | None:
    """How many flow runs ``env``'s sqlite database holds in flight, read from the file itself (no server, no
    request); None when it cannot say (PostgreSQL or an external database, no database yet, unreadable).

    ``server-up`` reads it before the start: when it is 0, no run was lost and nothing is asked of the server.
    """
    from prefect_julia.kit.server import database

    path = env.files.database
    if database.kind(env) != "sqlite" or database.external_url(env) is not None or not path.is_file():
        return None
    marks = ",".join("?" * len(IN_FLIGHT))
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute(f"SELECT count(*) FROM flow_run WHERE state_type IN ({marks})", IN_FLIGHT).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def refuse(env: Environment, runs: Sequence[InFlightRun], what: str, task: str) -> RunsInFlight:
    """The error a stop raises when ``runs`` are in flight."""
    from prefect_julia.core.console import table

    return RunsInFlight(
        f"{len(runs)} flow run(s) of {env.name} are in flight; stopping the {what} now would strand them:\n"
        + table(HEADERS, [r.row() for r in runs]),
        runs,
        hint=f"Wait for them to finish, or run `invoke {task} {env.name} --cancel` to cancel them first.",
    )


def is_flow_run_process(pid: int | None) -> bool:
    """True when ``pid`` runs and is a Prefect process (not a pid reused by something else)."""
    return pid is not None and running(pid) and "prefect" in command_of(pid)


@dataclass(frozen=True)
class CancelReport:
    cancelled: list[InFlightRun]
    survivors: list[int]


def cancel(
    env: Environment,
    *,
    by: str,
    pool: str | None = None,
    grace: float = 10.0,
    timeout: float = 60.0,
    say: Callable[[str], None] = lambda _line: None,
) -> CancelReport:
    """Cancel every run in flight: Cancelling, stop its process tree, then Cancelled. Repeats until none is left.

    ``by`` names the command, for the runs' state messages.
    """
    cancelled: dict[str, InFlightRun] = {}
    survivors: list[int] = []
    deadline = time.monotonic() + timeout
    api = _api(env)
    while True:
        runs = _read(api, pool)
        if not runs:
            break
        if time.monotonic() > deadline:
            raise ServerError(
                f"{len(runs)} flow run(s) of {env.name} were still in flight after {timeout:.0f} s of cancelling.",
                hint=f"Look at them in the UI ({env.ui_url}/runs), then retry.",
            )
        for run in runs:
            if run.state != "Cancelling":
                _set_state(api, run.id, "CANCELLING", f"Cancelling: {by}.")
        for run in runs:
            if is_flow_run_process(run.pid):
                assert run.pid is not None
                say(f"stopping the process tree of {run.name} (pid {run.pid})")
                stop_tree(run.pid, grace=grace)
                survivors += [run.pid] if running(run.pid) else []
            _set_state(api, run.id, "CANCELLED", _cancelled_by(by))
            cancelled.setdefault(run.id, run)
        time.sleep(0.5)  # a Pending run may have started its process meanwhile: read again
    return CancelReport(list(cancelled.values()), survivors)


def mark_lost(
    env: Environment,
    *,
    pool: str | None,
    reason: str,
    worker_running: bool,
) -> list[InFlightRun]:
    """Mark Crashed the runs in flight that can no longer finish; return them.

    A run whose flow-run process still runs may still finish and is left alone. A run without a process
    (Pending, or never started) can only go on while a worker runs that may be submitting it.
    """
    lost = []
    api = _api(env)
    for run in _read(api, pool):
        if is_flow_run_process(run.pid):
            continue
        if run.pid is None and worker_running:
            continue
        gone = f"its process (pid {run.pid}) no longer runs" if run.pid else "no process ever ran it"
        _set_state(api, run.id, "CRASHED", f"{reason}; {gone}.")
        lost.append(run)
    return lost


def _cancelled_by(by: str) -> str:
    return f"Cancelled by `{by}`."


def _stop_command(env: Environment, task: str) -> str:
    """The command that cancels runs to stop something, as their state messages name it."""
    return f"invoke {task} {env.name} --cancel"


def confirm_cancelled(env: Environment, runs: Sequence[InFlightRun], *, task: str) -> None:
    """Once the worker has stopped: each of ``runs`` (cancelled by ``invoke TASK --cancel``) reads Cancelled with
    the kit's message. The worker's own cancellation (Prefect's runner reacts to the Cancelling state the kit set)
    can finish after the kit's and write its own message over it; with the worker gone, nothing writes after this.
    """
    if not runs:
        return
    api = _api(env)
    message = _cancelled_by(_stop_command(env, task))
    for run in runs:
        state = api.request("GET", f"/flow_runs/{run.id}").get("state") or {}
        if state.get("type") == "CANCELLED" and state.get("message") != message:
            _set_state(api, run.id, "CANCELLED", message)


def guard_stop(
    env: Environment,
    *,
    pool: str | None,
    what: str,
    task: str,
    cancel_runs: bool,
    say: Callable[[str], None] = lambda _line: None,
) -> list[InFlightRun]:
    """Before ``invoke TASK``: refuse while runs are in flight, or with ``cancel_runs`` cancel them first.

    Returns the runs cancelled. A server that does not answer has nothing to ask: nothing is refused.
    """
    from prefect_julia.kit.server.servers import is_healthy

    if not is_healthy(env.api_url):
        return []
    runs = in_flight(env, pool=pool)
    if not runs:
        return []
    if not cancel_runs:
        raise refuse(env, runs, what, task)
    report = cancel(env, by=_stop_command(env, task), pool=pool, say=say)
    if report.survivors:
        pids = ", ".join(str(pid) for pid in report.survivors)
        raise ServerError(
            f"Processes of the cancelled runs still run after SIGKILL: {pids}.",
            hint="They may belong to another user; stop them by hand, then retry.",
        )
    return report.cancelled
