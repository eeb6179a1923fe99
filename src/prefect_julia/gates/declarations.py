"""Every declaration of the project checked without a server: deployments and per-environment blocks."""

from __future__ import annotations

from pathlib import Path

from prefect_julia.kit import blocks, deployments
from prefect_julia.kit.environments import ENVIRONMENTS


def check(root: Path) -> list[str]:
    """Problems in ``prefect.yaml`` and ``envs/<env>.blocks.toml`` (empty: all valid)."""
    return deployments.check(root) + blocks.check(root, ENVIRONMENTS)
