"""Running a deployment as a client: parameters checked by its schema, submitted (retried while the server is
busy), then followed to its end with its logs printed as they arrive.

A run that outlives ``timeout`` goes on; the error says what state it is in and how to follow it. A server
that goes away while a run is followed is a ``ServerError`` (exit code 3).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from prefect_julia.core.errors import ConfigError, PrefectJuliaError, ServerError
from prefect_julia.kit import run_params
from prefect_julia.kit.environments import Environment

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

#: ``--timeout`` when none is given: seconds ``invoke run`` follows a run.
DEFAULT_TIMEOUT = 900.0
POLL_SECONDS = 0.3
FINAL_LOG_WAIT = 2.0  # a run ships its last log lines shortly after its final state
SUBMIT_ATTEMPTS = 6


class RunFailed(PrefectJuliaError):
    """A flow run ended in a state other than Completed."""

    exit_code = 1


class RunTimedOut(PrefectJuliaError):
    """A flow run did not end within the time ``invoke run`` follows it; it goes on."""

    exit_code = 1


def parse_params(items: Iterable[str]) -> dict[str, str]:
    """``k=v`` pairs as written; :func:`run` converts them by the deployment's parameter schema."""
    return run_params.split_params(items)


@dataclass(frozen=True)
class RunOutcome:
    flow_run_id: str
    name: str
    state: str
    message: str
    url: str


def deployment_names(env: Environment) -> list[str]:
    """Every ``flow/deployment`` name on ``env``'s server."""
    from prefect_julia.kit.prefect_api import client_for

    with client_for(env) as client:
        return _names(client)


def _names(client: SyncPrefectClient) -> list[str]:
    deployments = client.read_deployments()
    flows = {f.id: f.name for f in client.read_flows()}
    return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in deployments)


def _resolve(client: SyncPrefectClient, env: Environment, name: str) -> str:
    if not name:
        raise ConfigError("Name the deployment to run.", hint="invoke run DEPLOYMENT (see `invoke deploy` for names).")
    known = _names(client)
    matches = [full for full in known if full == name or full.split("/", 1)[1] == name]
    if len(matches) != 1:
        listing = ", ".join(known) or "none: run `invoke deploy --env " + env.name + "` first"
        reason = "is ambiguous" if matches else "is not deployed"
        raise ConfigError(f"Deployment {name!r} {reason} on the {env.name} server.", hint=f"Known: {listing}.")
    return matches[0]


def resolve_name(env: Environment, name: str) -> str:
    """``flow/deployment`` for ``name``, which may be just the deployment's name."""
    from prefect_julia.kit.prefect_api import client_for

    with client_for(env) as client:
        return _resolve(client, env, name)


def _is_busy(error: BaseException) -> bool:
    """True for failures worth retrying a submission on: 503 (a busy sqlite) and connection hiccups."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status in (502, 503, 504) or type(error).__name__ in ("ConnectError", "ReadTimeout", "RemoteProtocolError")


def submit(
    client: SyncPrefectClient,
    deployment_id: Any,
    parameters: dict[str, Any],
    *,
    attempts: int = SUBMIT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Create a run of the deployment; retried while the server is busy. One idempotency key for every
    attempt, so a retried request whose first try did reach the server creates no second run."""
    key = str(uuid.uuid4())
    for attempt in range(attempts):
        try:
            return client.create_flow_run_from_deployment(deployment_id, parameters=parameters, idempotency_key=key)
        except Exception as error:
            if not _is_busy(error) or attempt == attempts - 1:
                raise
            sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def _log_line(log: Any) -> str:
    stamp = log.timestamp.strftime("%H:%M:%S") if log.timestamp else "--:--:--"
    return f"{stamp} {logging.getLevelName(log.level):<7} {log.message}"


class LogFollower:
    """The run's log records, each printed once, in order, as the server gets them."""

    def __init__(self, client: SyncPrefectClient, flow_run_id: Any, write: Callable[[str], None]) -> None:
        self.client = client
        self.flow_run_id = flow_run_id
        self.write = write
        self.seen: set[Any] = set()
        self.after: Any = None

    def poll(self) -> int:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
        from prefect.client.schemas.sorting import LogSort

        shown = 0
        while True:
            log_filter = LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[self.flow_run_id]),
                timestamp=LogFilterTimestamp(after_=self.after) if self.after is not None else None,
            )
            logs = self.client.read_logs(log_filter=log_filter, sort=LogSort.TIMESTAMP_ASC, limit=200)
            fresh = [log for log in logs if log.id not in self.seen]
            for log in fresh:
                self.seen.add(log.id)
                self.write(_log_line(log))
            shown += len(fresh)
            if logs:
                self.after = logs[-1].timestamp
            if len(logs) < 200 or not fresh:
                return shown


def run(
    env: Environment,
    name: str,
    parameters: dict[str, str],
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_state: Callable[[str], None] | None = None,
    write_log: Callable[[str], None] | None = None,
    on_submitted: Callable[[RunOutcome], None] | None = None,
    today: date | None = None,
) -> RunOutcome:
    """Run deployment ``name`` on ``env`` and follow it to its final state; raise ``RunFailed`` unless Completed.

    ``parameters`` are ``--param`` texts, converted by the deployment's schema before anything is submitted.
    ``write_log`` gets each log line of the run as it arrives; ``on_state`` each new state name.
    """
    from prefect_julia.kit.prefect_api import client_for

    if not name:
        raise ConfigError("Name the deployment to run.", hint="invoke run DEPLOYMENT (see `invoke deploy` for names).")
    with client_for(env) as client:
        full = _resolve(client, env, name)
        deployment = client.read_deployment_by_name(full)
        converted = run_params.convert(
            parameters,
            schema=deployment.parameter_openapi_schema,
            defaults=deployment.parameters or {},
            deployment=full,
            tags=deployment.tags or [],
            today=today,
        )
        flow_run = submit(client, deployment.id, converted)
        url = f"{env.ui_url}/runs/flow-run/{flow_run.id}"
        if on_submitted is not None:
            on_submitted(RunOutcome(str(flow_run.id), flow_run.name, "Scheduled", "", url))
        try:
            return _follow(client, env, full, flow_run, url, timeout, on_state, write_log)
        except PrefectJuliaError:
            raise
        except Exception as error:
            if type(error).__name__ in ("ConnectError", "ReadError", "RemoteProtocolError", "ReadTimeout"):
                raise ServerError(
                    f"The {env.name} server went away while following flow run {flow_run.name} of {full}.",
                    hint=f"Check it with `invoke server-status`; once it is back (`invoke server-up --env {env.name}`), "
                    f"see the run at {url}.",
                ) from None
            raise


def _follow(
    client: SyncPrefectClient,
    env: Environment,
    full: str,
    flow_run: Any,
    url: str,
    timeout: float | None,
    on_state: Callable[[str], None] | None,
    write_log: Callable[[str], None] | None,
) -> RunOutcome:
    logs = LogFollower(client, flow_run.id, write_log) if write_log is not None else None
    deadline = None if not timeout else time.monotonic() + timeout
    last_state = ""
    while True:
        current = client.read_flow_run(flow_run.id)
        state = current.state
        state_name = (state.name or "Unknown") if state else "Unknown"
        final = state is not None and state.is_final()
        if logs is not None:
            logs.poll()
        if final:
            break
        if state_name != last_state:
            last_state = state_name
            if on_state is not None:
                on_state(state_name)
        if deadline is not None and time.monotonic() > deadline:
            raise RunTimedOut(
                f"Flow run {current.name} of {full} is still {state_name} after {timeout:.0f} s; it goes on.\n"
                f"  see {url}",
                hint=_follow_hint(env, str(flow_run.id), state_name),
            )
        time.sleep(POLL_SECONDS)
    if logs is not None:  # the last lines may reach the server just after the final state
        quiet_until = time.monotonic() + FINAL_LOG_WAIT
        while time.monotonic() < quiet_until:
            time.sleep(POLL_SECONDS)
            if logs.poll():
                quiet_until = time.monotonic() + FINAL_LOG_WAIT / 2
    if on_state is not None:  # the final state, after the run's last log lines
        on_state(state_name)
    outcome = RunOutcome(
        flow_run_id=str(flow_run.id),
        name=current.name,
        state=state_name,
        message=(state.message or "") if state else "",
        url=url,
    )
    if state is None or not state.is_completed():
        raise RunFailed(
            f"Flow run {outcome.name} of {full} ended {outcome.state}: {outcome.message}\n  see {outcome.url}",
            hint=f"Read the run's logs above or in the UI, or `invoke server-logs --env {env.name}` and the worker log.",
        )
    return outcome


def _follow_hint(env: Environment, run_id: str, state: str) -> str:
    follow = f'eval "$(invoke env --shell --env {env.name})" && prefect flow-run logs {run_id}'
    if state in ("Scheduled", "Late", "Pending"):
        return (
            f"No worker has started it: check `invoke worker-status` (start one with `invoke worker-up --env {env.name}`); "
            f"follow it with `{follow}`, or wait longer with --timeout."
        )
    return f"Follow it with `{follow}`, or wait longer with --timeout; stop it with `prefect flow-run cancel {run_id}`."
