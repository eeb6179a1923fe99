"""``invoke deploy``: everything an environment runs, checked first, then applied in order.

Order: every declaration is checked without a server (deployments, concurrency limits, notifications, blocks:
a bad one is reported whether or not the server is up), then the server must answer and be this checkout's, and
the blocks the notifications use must be on the server or be created now (their URL set here). Then the
blocks and variables are applied (a block whose secret is not set here is left as the server holds it, and
reported), then deployments (and the work pool), then the work pool's limit, then the notifications that watch
them. A bad declaration stops it before anything is written. A step that fails part-way says which steps were
applied and which were not; running it again applies what still differs (``invoke plan`` shows what that is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect_julia.core.errors import PrefectJuliaError, ServerError
from prefect_julia.core.redact import scrub
from prefect_julia.kit.access.prefect_api import require_up
from prefect_julia.kit.declarations import automations, blocks, deployments, limits, plan
from prefect_julia.kit.environment.environments import Environment

T = TypeVar("T")
STEPS = ("blocks and variables", "deployments", "work pool limit", "automations")


@dataclass
class RolloutReport:
    blocks: blocks.ApplyReport
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
        if index:  # the first step's own error says what it did not write
            error.message = f"{error.message.rstrip()} {where}"
            error.hint = f"{error.hint} {again}" if error.hint else again
        raise
    except Exception as error:  # the server went away mid-way, or refused a write
        raise ServerError(
            scrub(f"Deploying {STEPS[index]} to {env.name} failed: {type(error).__name__}: {error}. {where}"),
            hint=f"Check the server with `invoke server-status {env.name}`. {again}",
        ) from error


def deploy(root: Path, env: Environment, show: Callable[[str], Any] | None = None) -> RolloutReport:
    """Apply ``env``'s blocks, variables, deployments and notifications; nothing is written if a declaration is
    bad.

    ``show`` gets the plan (``kit.plan``) before anything is applied.
    """
    problems = deployments.check(root)
    declared_limits = limits.declared(root, env.declares)
    checked = automations.plan(root, env.declares)
    declared_blocks = blocks.load(root, env.declares)
    if not problems:  # else `prepare` below reports them, server or not
        require_up(env)
        if show is not None:
            show(plan.render(plan.compute(root, env, check=False)))
    prepared = deployments.prepare(root, env)  # every flow loaded (a git source cloned): nothing written yet
    automations.require_blocks(env, checked, declared_blocks)
    saved = _step(env, 0, lambda: blocks.apply(declared_blocks, env, skip_unset=True))
    applied = _step(env, 1, lambda: deployments.write(root, env, prepared))
    pool_limit = _step(env, 2, lambda: limits.apply_pool_limit(env, declared_limits))
    made = _step(env, 3, lambda: automations.apply(root, env, checked))
    return RolloutReport(saved, applied, made, pool_limit)
