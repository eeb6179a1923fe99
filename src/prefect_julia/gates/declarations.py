"""Every declaration of the project checked without a server: deployments and their concurrency limits,
per-environment blocks and notifications."""

from __future__ import annotations

from pathlib import Path

from prefect_julia.kit.declarations import automations, blocks, deployments, limits
from prefect_julia.kit.environment.environments import ENVIRONMENTS


def check(root: Path) -> list[str]:
    """Problems in ``prefect.yaml``, ``envs/<env>.blocks.toml`` and ``envs/<env>.automations.toml`` (empty: valid)."""
    problems = deployments.check(root) + blocks.check(root, ENVIRONMENTS)
    return problems or limits.check(root) + automations.check(root, ENVIRONMENTS)
