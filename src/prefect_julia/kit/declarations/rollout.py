"""``invoke deploy``: everything an environment runs, checked first, then applied in order.

Order: every declaration is checked without a server (deployments, concurrency limits, notifications),
then the blocks the notifications use must be on the server, then deployments (and the work pool) are
applied, then the work pool's limit, then the notifications that watch them. A bad declaration stops it
before anything is written. A step that fails part-way says which steps were applied and which were not;
running it again applies what still differs (``invoke plan`` shows what that is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect_julia.core.errors import PrefectJuliaError, ServerError
from prefect_julia.core.redact import scrub
from prefect_julia.kit.declarations import automations, deployments, limits, plan
from prefect_julia.kit.environment.environments import Environment

T = TypeVar("T")
STEPS = ("deployments", "work pool limit", "automations")


@dataclass
class RolloutReport:
    deployments: deployments.DeployReport
    automations: automations.AutomationReport
    pool_limit: str


def _step(env: Environment, index: int, action: Callable[[], T]) -> T:
    """Run step ``STEPS[index]``; when it fails, its error says which steps were applied and which were not."""
    done, pending = STEPS[:index], STEPS[index:]
    where = f"Applied: {', '.join(done) or 'nothing'}. Not applied: {', '.join(pending)}."
    again = f"Run `invoke deploy {env.name}` again once fixed: it applies what still differs (`invoke plan` shows it)."
    try:
        return action()
    except PrefectJuliaError as error:
        if index:  # the first step says itself that nothing was deployed
            error.message = f"{error.message.rstrip()} {where}"
            error.hint = f"{error.hint} {again}" if error.hint else again
        raise
    except Exception as error:  # the server went away mid-way, or refused a write
        raise ServerError(
            scrub(f"Deploying {STEPS[index]} to {env.name} failed: {type(error).__name__}: {error}. {where}"),
            hint=f"Check the server with `invoke server-status {env.name}`. {again}",
        ) from error


def deploy(root: Path, env: Environment, show: Callable[[str], Any] | None = None) -> RolloutReport:
    """Apply ``env``'s deployments and notifications; nothing is written if a declaration is bad.

    ``show`` gets the plan (``kit.plan``) before anything is applied.
    """
    problems = deployments.check(root)
    declared_limits = limits.declared(root, env.declares)
    checked = automations.plan(root, env.declares)
    if not problems:  # else deployments.apply reports them, before it writes anything
        if show is not None:
            show(plan.render(plan.compute(root, env, check=False)))
        automations.require_blocks(env, checked)
    applied = _step(env, 0, lambda: deployments.apply(root, env))
    pool_limit = _step(env, 1, lambda: limits.apply_pool_limit(env, declared_limits))
    return RolloutReport(applied, _step(env, 2, lambda: automations.apply(root, env, checked)), pool_limit)
