"""Flow runs in flight: found before a server or worker stops, cancelled on request, marked Crashed when lost.

In flight means Pending, Running, Paused or Cancelling. ``server-down`` and ``worker-down`` refuse while runs
are in flight and list them; with ``--cancel`` each run is set Cancelling, its process tree (the flow-run
process, its Julia job and the job's children) is stopped, and the run is set Cancelled. After a crash,
``server-up`` and ``worker-up`` mark the runs whose process no longer runs as Crashed, saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect_julia.core.errors import ServerError
from prefect_julia.core.processes import command_of, running, stop_tree
from prefect_julia.kit.environment.environments import Environment

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

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


def _read(client: SyncPrefectClient, pool: str | None) -> list[InFlightRun]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in IN_FLIGHT]))
        ),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])) if pool else None,
        limit=200,
    )
    names: dict[Any, str] = {}
    found = []
    for run in runs:
        if run.deployment_id is not None and run.deployment_id not in names:
            try:
                names[run.deployment_id] = client.read_deployment(run.deployment_id).name
            except Exception:  # a deployment removed meanwhile: show its id
                names[run.deployment_id] = str(run.deployment_id)
        found.append(
            InFlightRun(
                id=str(run.id),
                name=run.name,
                deployment=names.get(run.deployment_id, "-"),
                state=(run.state.name or "?") if run.state else "?",
                pid=_pid(run.infrastructure_pid),
                started=run.start_time.strftime("%H:%M:%S") if run.start_time else "",
            )
        )
    return found


def in_flight(env: Environment, *, pool: str | None = None) -> list[InFlightRun]:
    """The runs in flight on ``env``'s server (only those of work pool ``pool`` when given)."""
    from prefect_julia.kit.access.prefect_api import client_for

    with client_for(env) as client:
        return _read(client, pool)


def count(env: Environment) -> int | None:
    """How many flow runs of ``env`` are in flight (any pool); None when the server does not answer. Plain REST
    with the environment's credential and CSRF token, so it costs no Prefect import."""
    from prefect_julia.kit.access.security import api_client

    body = {"flow_runs": {"state": {"type": {"any_": list(IN_FLIGHT)}}}}
    try:
        return int(api_client(env, timeout=10.0).request("POST", "/flow_runs/count", body))
    except (OSError, ValueError, TypeError):
        return None


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
    from prefect.states import Cancelled, Cancelling

    from prefect_julia.kit.access.prefect_api import client_for

    cancelled: dict[str, InFlightRun] = {}
    survivors: list[int] = []
    deadline = time.monotonic() + timeout
    with client_for(env) as client:
        while True:
            runs = _read(client, pool)
            if not runs:
                break
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{len(runs)} flow run(s) of {env.name} were still in flight after {timeout:.0f} s of cancelling.",
                    hint=f"Look at them in the UI ({env.ui_url}/runs), then retry.",
                )
            for run in runs:
                if run.state != "Cancelling":
                    client.set_flow_run_state(run.id, Cancelling(message=f"Cancelling: {by}."), force=True)
            for run in runs:
                if is_flow_run_process(run.pid):
                    assert run.pid is not None
                    say(f"stopping the process tree of {run.name} (pid {run.pid})")
                    stop_tree(run.pid, grace=grace)
                    survivors += [run.pid] if running(run.pid) else []
                client.set_flow_run_state(run.id, Cancelled(message=f"Cancelled by `{by}`."), force=True)
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
    from prefect.states import Crashed

    from prefect_julia.kit.access.prefect_api import client_for

    lost = []
    with client_for(env) as client:
        for run in _read(client, pool):
            if is_flow_run_process(run.pid):
                continue
            if run.pid is None and worker_running:
                continue
            gone = f"its process (pid {run.pid}) no longer runs" if run.pid else "no process ever ran it"
            client.set_flow_run_state(run.id, Crashed(message=f"{reason}; {gone}."), force=True)
            lost.append(run)
    return lost


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
    report = cancel(env, by=f"invoke {task} {env.name} --cancel", pool=pool, say=say)
    if report.survivors:
        pids = ", ".join(str(pid) for pid in report.survivors)
        raise ServerError(
            f"Processes of the cancelled runs still run after SIGKILL: {pids}.",
            hint="They may belong to another user; stop them by hand, then retry.",
        )
    return report.cancelled
