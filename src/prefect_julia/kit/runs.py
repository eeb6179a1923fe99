"""Triggering a deployment run and following it to its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prefect_julia.core.errors import ConfigError, PrefectJuliaError
from prefect_julia.kit.environments import Environment


class RunFailed(PrefectJuliaError):
    """A flow run ended in a state other than Completed."""

    exit_code = 1


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that reads as JSON (numbers, true, null, lists) is taken as such."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} is not key=value.", hint="Write e.g. --param rundate=2026-11-21.")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


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
        deployments = client.read_deployments()
        flows = {f.id: f.name for f in client.read_flows()}
    return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in deployments)


def resolve_name(env: Environment, name: str) -> str:
    """``flow/deployment`` for ``name``, which may be just the deployment's name."""
    if not name:
        raise ConfigError("Name the deployment to run.", hint="invoke run DEPLOYMENT (see `invoke deploy` for names).")
    known = deployment_names(env)
    matches = [full for full in known if full == name or full.split("/", 1)[1] == name]
    if len(matches) != 1:
        listing = ", ".join(known) or "none: run `invoke deploy " + env.name + "` first"
        reason = "is ambiguous" if matches else "is not deployed"
        raise ConfigError(f"Deployment {name!r} {reason} on the {env.name} server.", hint=f"Known: {listing}.")
    return matches[0]


def run(
    env: Environment,
    name: str,
    parameters: dict[str, Any],
    *,
    timeout: float | None = None,
    on_state: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run deployment ``name`` on ``env`` and wait for its final state; raise ``RunFailed`` unless Completed."""
    from prefect.deployments import run_deployment

    from prefect_julia.kit.prefect_api import settings_for

    full = resolve_name(env, name)
    with settings_for(env):
        flow_run: Any = run_deployment(full, parameters=parameters or None, timeout=timeout, poll_interval=1)
    state = flow_run.state
    outcome = RunOutcome(
        flow_run_id=str(flow_run.id),
        name=flow_run.name,
        state=state.name if state else "Unknown",
        message=(state.message or "") if state else "",
        url=f"{env.ui_url}/runs/flow-run/{flow_run.id}",
    )
    if on_state is not None:
        on_state(outcome.state)
    if state is None or not state.is_completed():
        raise RunFailed(
            f"Flow run {outcome.name} of {full} ended {outcome.state}: {outcome.message}\n  see {outcome.url}",
            hint=f"Read the run's logs in the UI, or `invoke server-logs {env.name}` and the worker log.",
        )
    return outcome
