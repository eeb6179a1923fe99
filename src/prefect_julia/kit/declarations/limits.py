"""Concurrency limits, declared beside the deployments in prefect.yaml and applied by ``invoke deploy``.

- ``concurrency_limit: N`` on an entry (Prefect's own key): at most N runs of that deployment at once; the
  others wait in ``AwaitingConcurrencySlot`` and start as slots free up.
- ``concurrency_limit: N`` inside an entry's ``work_pool`` mapping (a kit key; Prefect's CLI ignores it): at
  most N runs at once in the environment's work pool, whatever their deployment. Every entry deployed to an
  environment that names one must name the same; with none, the pool has no limit.

Both are checked before anything is applied: a limit must be a whole number of at least 1. Removing a
limit from prefect.yaml removes it from the server on the next deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.declarations import deployments
from prefect_julia.kit.environment.environments import Environment, declared_environments

__all__ = ["Limits", "apply_pool_limit", "check", "declared"]

FIX = "Use a whole number of at least 1, or remove the key for no limit."


@dataclass(frozen=True)
class Limits:
    """The limits of one environment: per deployment (name -> limit) and for its work pool."""

    env: str
    deployments: Mapping[str, int]
    pool: int | None


def _limit(value: Any, where: str) -> int | None:
    """A declared limit as a number; ``None`` for a placeholder (its value is known only when deploying)."""
    if isinstance(value, Mapping):  # Prefect's long form: {limit: N, collision_strategy: ...}
        value = value.get("limit")
    if isinstance(value, str) and deployments.PLACEHOLDER.fullmatch(value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: concurrency_limit = {value!r} is not a whole number.", hint=FIX)
    if value < 1:
        raise ConfigError(f"{where}: concurrency_limit = {value} is below 1: no run could ever start.", hint=FIX)
    return value


def declared(root: Path, env: str) -> Limits:
    """The limits prefect.yaml declares for ``env``; all problems in one error, nothing applied."""
    problems: list[str] = []
    per_deployment: dict[str, int] = {}
    pool_limits: dict[int, list[str]] = {}
    for spec in deployments.load(root):
        if env not in spec.environments:
            continue
        where = f"{deployments.DECLARATION_FILE} deployment {spec.name!r}"
        try:
            if spec.raw.get("concurrency_limit") is not None:
                limit = _limit(spec.raw["concurrency_limit"], where)
                if limit is not None:
                    per_deployment[spec.name] = limit
            pool = spec.raw.get("work_pool")
            if isinstance(pool, Mapping) and pool.get("concurrency_limit") is not None:
                limit = _limit(pool["concurrency_limit"], f"{where} work_pool")
                if limit is not None:
                    pool_limits.setdefault(limit, []).append(spec.name)
        except ConfigError as error:
            problems.append(error.message)
    if len(pool_limits) > 1:
        named = "; ".join(f"{limit} in {', '.join(names)}" for limit, names in sorted(pool_limits.items()))
        problems.append(f"the {env} work pool gets different concurrency limits: {named}.")
    if problems:
        raise ConfigError(
            "The concurrency limits have problems; nothing was applied:\n  " + "\n  ".join(problems),
            hint=FIX + " A work pool's limit must be the same in every entry that names one.",
        )
    return Limits(env=env, deployments=per_deployment, pool=next(iter(pool_limits), None))


def check(root: Path) -> list[str]:
    """Problems with the limits of every environment, found without a server."""
    problems = []
    for env in declared_environments(root):
        try:
            declared(root, env)
        except ConfigError as error:
            problems.append(error.message)
    return list(dict.fromkeys(problems))


def apply_pool_limit(env: Environment, limits: Limits) -> str:
    """Set (or clear) the concurrency limit of ``env``'s work pool; return what it is now, as text."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    from prefect_julia.kit.access.prefect_api import client_for

    pool = env.require("PREFECT_JULIA_WORK_POOL")
    with client_for(env) as client:
        current = client.read_work_pool(pool).concurrency_limit
        if current != limits.pool:
            client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=limits.pool))
    return f"work pool {pool}: " + (f"at most {limits.pool} runs at once" if limits.pool else "no limit")
