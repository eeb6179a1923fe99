"""Every declaration of the project checked without a server: deployments and their concurrency limits,
per-environment blocks and notifications."""

from __future__ import annotations

from pathlib import Path

from prefect_julia.kit.declarations import automations, blocks, deployments, limits
from prefect_julia.kit.environment.environments import declared_environments


def check(root: Path) -> list[str]:
    """Problems in ``prefect.yaml``, ``envs/<env>.blocks.toml`` and ``envs/<env>.automations.toml`` (empty: valid)."""
    declared = declared_environments(root)
    problems = deployments.check(root) + blocks.check(root, declared)
    return problems or limits.check(root) + automations.check(root, declared)
