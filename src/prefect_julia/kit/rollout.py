"""``invoke deploy``: everything an environment runs, checked first, then applied in order.

Order: every declaration is checked without a server (deployments, notifications), then the blocks the
notifications use must be on the server, then deployments (and the work pool) are applied, then the
notifications that watch them. A bad declaration stops it before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect_julia.kit import automations, deployments
from prefect_julia.kit.environments import Environment


@dataclass
class RolloutReport:
    deployments: deployments.DeployReport
    automations: automations.AutomationReport


def deploy(root: Path, env: Environment) -> RolloutReport:
    """Apply ``env``'s deployments and notifications; nothing is written if a declaration is bad."""
    problems = deployments.check(root)
    checked = automations.plan(root, env.name)
    if not problems:  # else deployments.apply reports them, before it writes anything
        automations.require_blocks(env, checked)
    applied = deployments.apply(root, env)
    return RolloutReport(applied, automations.apply(root, env, checked))
