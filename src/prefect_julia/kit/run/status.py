"""``invoke status``: one screen per environment for whoever is on call.

The server and the worker, the deployments with their next scheduled run, the last runs with their state and
duration, and the automations in force, read from the environment's server through Prefect's client. Also the
cells of ``invoke server-status`` that need more than the server's own status (sizes, "not created").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect_julia.core.console import human_bytes, table
from prefect_julia.kit.declarations import plan
from prefect_julia.kit.declarations.deployments import schedules_paused
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.julia import images
from prefect_julia.kit.server import servers
from prefect_julia.kit.worker import workers

__all__ = ["EnvironmentStatus", "collect", "render", "size_cells"]

LAST_RUNS = 10


@dataclass(frozen=True)
class DeploymentRow:
    name: str  # flow/deployment
    schedule: str
    next_run: str
    paused: bool
    limit: str


@dataclass(frozen=True)
class RunRow:
    name: str
    deployment: str
    state: str
    started: str
    duration: str


@dataclass(frozen=True)
class AutomationRow:
    name: str
    enabled: bool
    description: str


@dataclass
class EnvironmentStatus:
    env: str
    api_url: str
    ui_url: str
    server_pid: int | None
    server_healthy: bool
    worker: workers.WorkerState
    pool_limit: int | None = None
    deployments: list[DeploymentRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    automations: list[AutomationRow] = field(default_factory=list)
    drift: str = ""  # a one-line summary of ``invoke plan`` when the server differs from the repository
    julia_image: str = ""  # ``Julia image: current``, ``building (since HH:MM)``, ``failed (log: PATH)``, ...
    schedules_paused: bool = False  # PREFECT_JULIA_SCHEDULES=paused: this environment's schedules do not run


def size_cells(env: Environment, server: servers.Status) -> tuple[str, str]:
    """The ``size`` and ``database`` cells of ``env`` in ``invoke server-status``: ``not created`` for an
    environment no ``invoke server-up`` has made yet (no home, or no database of its own), instead of a size of
    nothing."""
    external = "(external)" in server.database
    if not env.home.is_dir() or (server.database_bytes == 0 and not external):
        return "not created", f"{server.database} (not created)"
    return human_bytes(servers.footprint(env)), f"{server.database} ({human_bytes(server.database_bytes)})"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    delta = (moment - now).total_seconds()
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} ({_span(abs(delta))} {'from now' if delta >= 0 else 'ago'})"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def _schedule(deployment: Any, paused_here: bool = False) -> str:
    """The deployment's schedules; an inactive one reads ``(paused)`` where the environment pauses schedules,
    else ``(off)``."""
    off = " (paused)" if paused_here else " (off)"
    described = []
    for item in deployment.schedules or []:
        schedule = item.schedule
        text = getattr(schedule, "cron", None) or getattr(schedule, "interval", None) or getattr(schedule, "rrule", "")
        described.append(f"{text}{'' if item.active else off}")
    return ", ".join(str(d) for d in described) or "-"


def collect(
    env: Environment,
    *,
    last_runs: int = LAST_RUNS,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> EnvironmentStatus:
    """What ``env``'s server and worker are doing, and its Julia image (read with ``environ``, default the
    process's); only those when the server is down."""
    from prefect.exceptions import ObjectNotFound

    from prefect_julia.kit.access.prefect_api import client_for

    now = now or datetime.now(UTC)
    record = servers.server_status(env, "")
    status = EnvironmentStatus(
        env=env.name,
        api_url=env.api_url,
        ui_url=env.ui_url,
        server_pid=record.pid,
        server_healthy=servers.is_healthy(env.api_url),
        worker=workers.worker_status(env),
        julia_image=images.status_line(env.process_env(os.environ if environ is None else environ)),
        schedules_paused=schedules_paused(env),
    )
    if not status.server_healthy:
        return status
    with client_for(env) as client:
        with contextlib.suppress(ObjectNotFound):
            status.pool_limit = client.read_work_pool(status.worker.pool).concurrency_limit
        status.deployments, names = _deployment_rows(client, now, status.schedules_paused)
        status.runs = _run_rows(client, names, now, last_runs)
        for automation in sorted(client.read_automations(), key=lambda a: a.name):
            status.automations.append(AutomationRow(automation.name, automation.enabled, automation.description))
    status.drift = plan.status_line(env)
    return status


def _deployment_rows(client: Any, now: datetime, paused_here: bool) -> tuple[list[DeploymentRow], dict[Any, str]]:
    """The deployments on ``client``'s server, each with its next scheduled run, and their ``flow/deployment``
    names by id."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    flows = {f.id: f.name for f in client.read_flows()}
    deployments = sorted(client.read_deployments(), key=lambda d: (flows.get(d.flow_id, ""), d.name))
    names = {d.id: f"{flows.get(d.flow_id, '?')}/{d.name}" for d in deployments}
    upcoming = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=list(names)),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=200,
    )
    next_run: dict[Any, datetime | None] = {}
    for run in upcoming:
        next_run.setdefault(run.deployment_id, run.next_scheduled_start_time or run.expected_start_time)
    rows = [
        DeploymentRow(
            name=names[d.id],
            schedule=_schedule(d, paused_here),
            next_run=_when(next_run.get(d.id), now),
            paused=bool(d.paused),
            limit=str(d.global_concurrency_limit.limit) if d.global_concurrency_limit else "-",
        )
        for d in deployments
    ]
    return rows, names


def _run_rows(client: Any, names: Mapping[Any, str], now: datetime, last_runs: int) -> list[RunRow]:
    """The ``last_runs`` runs not in a Scheduled state, latest started first; ``names``: deployments by id."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED]))
        ),
        sort=FlowRunSort.START_TIME_DESC,
        limit=last_runs,
    )
    return [
        RunRow(
            name=run.name,
            deployment=names.get(run.deployment_id, "-") if run.deployment_id else "-",
            state=(run.state.name if run.state else None) or "?",
            started=_when(run.start_time, now),
            duration=_duration(run, now),
        )
        for run in finished
    ]


def _duration(run: Any, now: datetime) -> str:
    """How long ``run`` ran, or has run ``so far``; ``-`` before it started."""
    if run.start_time is None:
        return "-"
    end = run.end_time or now
    return _span((end - run.start_time).total_seconds()) + ("" if run.end_time else " so far")


def render(status: EnvironmentStatus) -> str:
    """The screen for one environment."""
    worker = status.worker
    worker_text = (
        f"online (pid {worker.pid})"
        if worker.online
        else (f"running, not seen online (pid {worker.pid})" if worker.pid else "down")
    )
    server_text = "healthy" if status.server_healthy else "down"
    if status.server_pid:
        server_text += f" (pid {status.server_pid})"
    lines = [
        f"== {status.env}   {status.ui_url}",
        f"server   {server_text}   {status.api_url}",
        f"worker   {worker_text}   pool {worker.pool}"
        + (f" (at most {status.pool_limit} runs at once)" if status.pool_limit else "")
        + f"   log {worker.log}",
    ]
    lines += [status.julia_image] if status.julia_image else []
    if not status.server_healthy:
        lines.append(f"Start it with `invoke server-up {status.env}` to see deployments, runs and automations.")
        return "\n".join(lines)
    lines += [status.drift] if status.drift else []
    lines += ["", f"deployments ({len(status.deployments)})"]
    if status.schedules_paused:
        lines.append(f"  schedules paused in {status.env} (PREFECT_JULIA_SCHEDULES=paused): runs start only when asked")
    lines.append(
        table(
            ["deployment", "schedule", "next run", "limit", "paused"],
            [[d.name, d.schedule, d.next_run, d.limit, "yes" if d.paused else "no"] for d in status.deployments],
        )
        if status.deployments
        else f"  none: run `invoke deploy {status.env}`"
    )
    lines += ["", f"last runs ({len(status.runs)})"]
    lines.append(
        table(
            ["run", "deployment", "state", "started", "duration"],
            [[r.name, r.deployment, r.state, r.started, r.duration] for r in status.runs],
        )
        if status.runs
        else "  none yet"
    )
    lines += ["", f"automations ({len(status.automations)})"]
    lines.append(
        table(
            ["automation", "enabled", "what it does"],
            [[a.name, "yes" if a.enabled else "no", a.description] for a in status.automations],
        )
        if status.automations
        else f"  none: declare them in envs/{status.env}.automations.toml"
    )
    return "\n".join(lines)
