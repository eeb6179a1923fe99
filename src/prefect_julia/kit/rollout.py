"""``invoke deploy``: everything an environment runs, checked first, then applied in order.

Order: every declaration is checked without a server (deployments, concurrency limits, notifications),
then the blocks the notifications use must be on the server, then deployments (and the work pool) are
applied, then the work pool's limit, then the notifications that watch them. A bad declaration stops it
before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect_julia.kit import automations, deployments, limits
from prefect_julia.kit.environments import Environment


@dataclass
class RolloutReport:
    deployments: deployments.DeployReport
    automations: automations.AutomationReport
    pool_limit: str


def deploy(root: Path, env: Environment) -> RolloutReport:
    """Apply ``env``'s deployments and notifications; nothing is written if a declaration is bad."""
    problems = deployments.check(root)
    declared_limits = limits.declared(root, env.name)
    checked = automations.plan(root, env.name)
    if not problems:  # else deployments.apply reports them, before it writes anything
        automations.require_blocks(env, checked)
    applied = deployments.apply(root, env)
    pool_limit = limits.apply_pool_limit(env, declared_limits)
    return RolloutReport(applied, automations.apply(root, env, checked), pool_limit)
