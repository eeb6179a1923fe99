"""Running a deployment as a client: parameters checked by its schema, submitted (retried while the server is
busy), then followed to its end with its logs printed as they arrive.

A run that outlives ``timeout`` goes on; the error says what state it is in and how to follow it. A server
that goes away while a run is followed is a ``ServerError`` (exit code 3).
"""

from __future__ import annotations

import http.client
import logging
import random
import re
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from prefect_julia.core.errors import ConfigError, PrefectJuliaError, ServerError
from prefect_julia.core.prefect_http import ApiClient, ApiRefused
from prefect_julia.core.secrets import redact, secret_values
from prefect_julia.kit.access import identity
from prefect_julia.kit.access.prefect_api import unreachable
from prefect_julia.kit.access.security import api_client, refused
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.settings import LOG_BATCH_SECONDS
from prefect_julia.kit.run import run_params

#: ``--timeout`` when none is given: seconds ``invoke run`` follows a run.
DEFAULT_TIMEOUT = 900.0
POLL_SECONDS = 0.2
#: After the final state, the run's last log lines are awaited: until the flow engine's closing line arrives
#: ("Finished in state ...", with no task run), or no line came for one log shipment interval of the run (plus QUIET_MARGIN), or
#: at most FINAL_LOG_WAIT (a run that crashed before its engine started has no closing line).
FINAL_LOG_WAIT = 3.0
QUIET_MARGIN = 0.3
FINISHED_LINE = "Finished in state "
#: Put before the flow run's own closing line as ``invoke run`` prints it (task runs close with the same words).
FLOW_RUN_CLOSING = "flow run: "
#: How long a submission is retried while the server is busy (503, timeouts, dropped connections): a sqlite
#: server under a burst of runs answers 503 for a while, then drains. Waits of 0.5, 1, 2, 4, 8, then 10 s
#: (with jitter) between tries.
SUBMIT_PATIENCE = 300.0
SUBMIT_MAX_WAIT = 10.0
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
LOG_PAGE = 200
#: Where a Python traceback starts in a log record; ``invoke run`` prints the record up to there (the run's log
#: in the UI keeps all of it).
PYTHON_TRACEBACK = "Traceback (most recent call last):"
#: Prefect's own lines that repeat the error a Julia job already reported above them (its ERROR record, or its
#: output), and that the run's final state repeats once more: not printed by ``invoke run`` (kept in the UI).
_JULIA_ERROR_ECHO = re.compile(
    r"^(?:flow run: )?(?:Task run failed with exception: |Encountered exception during execution: "
    r"|Finished in state Failed\('(?:Task|Flow) run encountered an exception:? )Julia(?:Failed|Timeout)\b"
)
#: Characters of a flow run's return value ``invoke run`` prints (the rest: in the file it names).
RESULT_SHOWN = 300


class RunFailed(PrefectJuliaError):
    """A flow run ended in a state other than Completed."""

    exit_code = 1


class RunTimedOut(PrefectJuliaError):
    """A flow run did not end within the time ``invoke run`` follows it; it goes on."""

    exit_code = 1


class RunLeft(PrefectJuliaError):
    """``invoke run`` was interrupted (Ctrl-C) while following a flow run; the run goes on."""

    exit_code = 130


def worker_note(env: Environment) -> str:
    """Why a run of ``env`` would wait (no worker online), and the fix; "" when a worker is online or the server
    does not answer (the run itself then says so)."""
    from prefect_julia.kit.server import servers
    from prefect_julia.kit.worker import workers

    if not servers.is_healthy(env.api_url) or workers.worker_status(env).online:
        return ""
    return (
        f"note: no worker of {env.name} is online, so the run waits (Scheduled) until one starts.\n"
        f"  fix: start one with `invoke worker-up {env.name}`."
    )


def left_running(env: Environment, name: str, run_id: str) -> RunLeft:
    """The error of a Ctrl-C while following flow run ``name``: it goes on; where to follow or stop it."""
    url = f"{env.ui_url}/runs/flow-run/{run_id}"
    return RunLeft(
        f"Stopped following flow run {name}; the run goes on.\n  see {url}",
        hint=f"Follow it in the UI ({url}) or with `invoke status {env.name}`; "
        f'stop it with `prefect flow-run cancel {run_id}` (after `eval "$(invoke env --shell {env.name})"`).',
    )


def ended(state_type: str, state_name: str, message: str, history: list[str]) -> tuple[str, str]:
    """(state, message) a person should read for a run's final state; ``history`` holds the types of its states.
    A run that crashed after it was asked to cancel (its process stopped for the cancellation) reads Cancelled."""
    if state_type == "CRASHED" and "CANCELLING" in history:
        return "Cancelled", "cancelled while it ran (its process was stopped)"
    return state_name, message


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


def _by_full_name(api: ApiClient, deployments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``deployments`` by their ``flow/deployment`` names (one request for their flows' names)."""
    ids = sorted({d["flow_id"] for d in deployments})
    flows = api.request("POST", "/flows/filter", {"flows": {"id": {"any_": ids}}}) if ids else []
    names = {f["id"]: f["name"] for f in flows}
    return {f"{names.get(d['flow_id'], '?')}/{d['name']}": d for d in deployments}


def _resolve(api: ApiClient, env: Environment, name: str) -> tuple[str, dict[str, Any]]:
    """``flow/deployment`` and the deployment for ``name``, which may be just the deployment's name."""
    wanted = name.split("/", 1)[1] if "/" in name else name
    named = _by_full_name(
        api, api.request("POST", "/deployments/filter", {"deployments": {"name": {"any_": [wanted]}}})
    )
    matches = [full for full in named if full == name or "/" not in name]
    if len(matches) == 1:
        return matches[0], named[matches[0]]
    known = sorted(_by_full_name(api, api.request("POST", "/deployments/filter", {})))
    listing = ", ".join(known) or "none: run `invoke deploy " + env.name + "` first"
    reason = "is ambiguous" if matches else "is not deployed"
    raise ConfigError(f"Deployment {name!r} {reason} on the {env.name} server.", hint=f"Known: {listing}.")


def _is_busy(error: BaseException) -> bool:
    """True for failures worth retrying a submission on: 502-504 (a busy sqlite) and connection hiccups."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in (502, 503, 504)
    return isinstance(error, (OSError, http.client.HTTPException))


def submit(
    api: ApiClient,
    deployment_id: str,
    parameters: dict[str, Any],
    *,
    patience: float = SUBMIT_PATIENCE,
    sleep: Callable[[float], None] = time.sleep,
    on_busy: Callable[[BaseException], None] | None = None,
) -> dict[str, Any]:
    """Create a run of the deployment; retried while the server is busy, for up to ``patience`` seconds
    (``on_busy`` hears of the first refusal). One idempotency key for every try, so a retried request whose
    first try did reach the server creates no second run."""
    body = {"parameters": parameters, "idempotency_key": str(uuid.uuid4())}
    give_up = time.monotonic() + patience
    attempt = 0
    while True:
        try:
            created: dict[str, Any] = api.request("POST", f"/deployments/{deployment_id}/create_flow_run", body)
            return created
        except ApiRefused:
            raise
        except Exception as error:
            wait = min(SUBMIT_MAX_WAIT, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)
            if not _is_busy(error) or time.monotonic() + wait > give_up:
                raise
            if attempt == 0 and on_busy is not None:
                on_busy(error)
            attempt += 1
            sleep(wait)


def _log_line(log: dict[str, Any]) -> str:
    try:
        stamp = datetime.fromisoformat(str(log.get("timestamp"))).strftime("%H:%M:%S")
    except ValueError:
        stamp = "--:--:--"
    message = str(log.get("message", ""))
    if PYTHON_TRACEBACK in message:
        message = message[: message.index(PYTHON_TRACEBACK)].rstrip()
    return f"{stamp} {logging.getLevelName(int(log.get('level') or 0)):<7} {message}"


def _without_julia_echoes(write: Callable[[str], None]) -> Callable[[str], None]:
    """``write`` for the lines of :func:`_log_line`, less Prefect's repetitions of a Julia job's error."""

    def filtered(line: str) -> None:
        parts = line.split(maxsplit=2)
        if not (len(parts) == 3 and _JULIA_ERROR_ECHO.match(parts[2])):
            write(line)

    return filtered


class LogFollower:
    """The run's log records, each printed once, in order, as the server gets them."""

    def __init__(self, api: ApiClient, flow_run_id: str, write: Callable[[str], None]) -> None:
        self.api = api
        self.flow_run_id = flow_run_id
        self.write = _without_julia_echoes(write)
        self.seen: set[str] = set()
        self.after: str | None = None
        self.finished = False  # the engine's closing line has arrived

    def poll(self) -> int:
        shown = 0
        while True:
            logs_filter: dict[str, Any] = {"flow_run_id": {"any_": [self.flow_run_id]}}
            if self.after is not None:
                logs_filter["timestamp"] = {"after_": self.after}
            body = {"logs": logs_filter, "sort": "TIMESTAMP_ASC", "limit": LOG_PAGE}
            logs: list[dict[str, Any]] = self.api.request("POST", "/logs/filter", body)
            fresh = [log for log in logs if log["id"] not in self.seen]
            for log in fresh:
                self.seen.add(log["id"])
                # The flow run's own closing line, not one of its task runs' (they end with the same words):
                # shown as the flow run's.
                closing = not log.get("task_run_id") and str(log.get("message", "")).startswith(FINISHED_LINE)
                self.write(_log_line({**log, "message": f"{FLOW_RUN_CLOSING}{log['message']}"} if closing else log))
                self.finished = self.finished or closing
            shown += len(fresh)
            if logs:
                self.after = logs[-1]["timestamp"]
            if len(logs) < LOG_PAGE or not fresh:
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
    on_busy: Callable[[BaseException], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    today: date | None = None,
) -> RunOutcome:
    """Run deployment ``name`` on ``env`` and follow it to its final state; raise ``RunFailed`` unless Completed.

    ``parameters`` are ``--param`` texts, converted by the deployment's schema before anything is submitted.
    ``write_log`` gets each log line of the run as it arrives; ``on_state`` each new state name; ``on_busy`` the
    first refusal of a busy server (the submission is retried); ``on_note`` a note once the server is known to
    be this checkout's (no worker online). Ctrl-C while the run is followed raises :class:`RunLeft`. Talks to the
    server over plain REST (no Prefect import: the client starts in a fraction of a second).
    """
    if not name:
        raise ConfigError("Name the deployment to run.", hint="invoke run DEPLOYMENT (see `invoke deploy` for names).")
    identity.check(env)
    if on_note is not None and (note := worker_note(env)):
        on_note(note)
    api = api_client(env, timeout=30.0)
    submitted: dict[str, Any] | None = None
    try:
        full, deployment = _resolve(api, env, name)
        converted = run_params.convert(
            parameters,
            schema=deployment.get("parameter_openapi_schema"),
            defaults=deployment.get("parameters") or {},
            deployment=full,
            tags=deployment.get("tags") or [],
            today=today,
        )
        submitted = submit(api, deployment["id"], converted, on_busy=on_busy)
        url = f"{env.ui_url}/runs/flow-run/{submitted['id']}"
        if on_submitted is not None:
            on_submitted(RunOutcome(str(submitted["id"]), submitted["name"], "Scheduled", "", url))
        return _follow(api, env, full, submitted, url, timeout, on_state, write_log)
    except KeyboardInterrupt:
        if submitted is None:
            raise
        raise left_running(env, str(submitted["name"]), str(submitted["id"])) from None
    except ApiRefused as error:
        raise refused(env, error) from None
    except PrefectJuliaError:
        raise
    except urllib.error.HTTPError as error:
        raise _http_error(env, name, error) from None
    except (OSError, http.client.HTTPException):
        raise _unreachable(env, name, submitted) from None


def _http_error(env: Environment, name: str, error: urllib.error.HTTPError) -> ServerError:
    """The error of an HTTP error status from ``env``'s server while running deployment ``name``."""
    return ServerError(
        f"The {env.name} server answered HTTP {error.code} ({error.reason}) while running {name!r}.",
        hint=f"See `invoke server-logs {env.name}`; retry once it is healthy (`invoke server-status`).",
    )


def _unreachable(env: Environment, name: str, submitted: dict[str, Any] | None) -> ServerError:
    """The error of a connection to ``env``'s server that failed: before the run of ``name`` was submitted (the
    server is not up), or while it was followed (``submitted``: the server went away)."""
    if submitted is None:
        return unreachable(env)
    return ServerError(
        f"The {env.name} server went away while following flow run {submitted['name']} of {name}.",
        hint=f"Check it with `invoke server-status`; once it is back (`invoke server-up {env.name}`), "
        f"see the run at {env.ui_url}/runs/flow-run/{submitted['id']}.",
    )


def _state(flow_run: dict[str, Any]) -> tuple[str, str, str]:
    """(type, name, message) of a flow run's state."""
    state = flow_run.get("state") or {}
    return str(state.get("type") or ""), str(state.get("name") or "Unknown"), str(state.get("message") or "")


def _follow(
    api: ApiClient,
    env: Environment,
    full: str,
    flow_run: dict[str, Any],
    url: str,
    timeout: float | None,
    on_state: Callable[[str], None] | None,
    write_log: Callable[[str], None] | None,
) -> RunOutcome:
    run_id = str(flow_run["id"])
    logs = LogFollower(api, run_id, write_log) if write_log is not None else None
    deadline = None if not timeout else time.monotonic() + timeout
    last_state = ""
    while True:
        current = api.request("GET", f"/flow_runs/{run_id}")
        state_type, state_name, message = _state(current)
        final = state_type in FINAL_STATES
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
                f"Flow run {current['name']} of {full} is still {state_name} after {timeout:.0f} s; it goes on.\n"
                f"  see {url}",
                hint=_follow_hint(env, run_id, state_name),
            )
        time.sleep(POLL_SECONDS)
    if logs is not None:  # the run's last lines reach the server just after its final state
        quiet = env.seconds(LOG_BATCH_SECONDS.name) + QUIET_MARGIN
        now = time.monotonic()
        give_up, quiet_until = now + FINAL_LOG_WAIT, now + quiet
        while not logs.finished and time.monotonic() < min(give_up, quiet_until):
            time.sleep(POLL_SECONDS)
            if logs.poll():
                quiet_until = time.monotonic() + quiet
    if on_state is not None:  # the final state, after the run's last log lines
        on_state(state_name)
    if state_type == "CRASHED":
        history = api.request("GET", f"/flow_run_states/?flow_run_id={run_id}")
        state_name, message = ended(state_type, state_name, message, [str(s.get("type")) for s in history])
    outcome = RunOutcome(flow_run_id=run_id, name=str(current["name"]), state=state_name, message=message, url=url)
    if state_type != "COMPLETED":
        raise RunFailed(
            f"Flow run {outcome.name} of {full} ended {outcome.state}: {outcome.message}\n  see {outcome.url}",
            hint=f"It was cancelled (in the UI or with `prefect flow-run cancel`); run it again with `invoke run "
            f"{full} {env.name}`."
            if outcome.state == "Cancelled"
            else f"Read the run's logs above or in the UI, or `invoke server-logs {env.name}` and the worker log.",
        )
    return outcome


def result_line(env: Environment, outcome: RunOutcome, *, limit: int = RESULT_SHOWN) -> str:
    """``returned: VALUE`` for a completed flow run: its return value as kept by Prefect (JSON in the worker's
    ``PREFECT_HOME/storage``, see the PREFECT_RESULTS_* settings), cut to ``limit`` characters and with the
    environment's secret values masked; or why it cannot be shown."""
    try:
        flow_run = api_client(env, timeout=30.0).request("GET", f"/flow_runs/{outcome.flow_run_id}")
    except ApiRefused as error:
        raise refused(env, error) from None
    except (OSError, http.client.HTTPException):
        return "returned: (not shown: the server did not answer)"
    state = flow_run.get("state") if isinstance(flow_run, dict) else None
    data = state.get("data") if isinstance(state, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("storage_key"), str) or not data["storage_key"]:
        return "returned: (not kept: set PREFECT_RESULTS_PERSIST_BY_DEFAULT=true for the worker to keep it)"
    key: str = data["storage_key"]
    serializer = (data.get("serializer") or {}).get("type")
    if serializer != "json":
        return f"returned: (kept with the {serializer} serializer, not shown: {key})"
    try:
        with open(key, encoding="utf-8", errors="replace") as stream:
            text = stream.read(limit + 1).strip()
    except FileNotFoundError:
        return f"returned: (not kept: not JSON; see the run's warning), or on another machine: {key}"
    except OSError as error:
        return f"returned: (not readable here: {error.strerror}: {key})"
    text = redact(text, secret_values(env.process_env({})))
    if len(text) > limit:
        return f"returned: {text[:limit]}... (all of it: {key})"
    return f"returned: {text}"


def _follow_hint(env: Environment, run_id: str, state: str) -> str:
    follow = f'eval "$(invoke env --shell {env.name})" && prefect flow-run logs {run_id}'
    if state in ("Scheduled", "Late", "Pending"):
        return (
            f"No worker has started it: check `invoke worker-status` (start one with `invoke worker-up {env.name}`); "
            f"follow it with `{follow}`, or wait longer with --timeout."
        )
    return f"Follow it with `{follow}`, or wait longer with --timeout; stop it with `prefect flow-run cancel {run_id}`."
