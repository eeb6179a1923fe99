"""``invoke env-prune``: stop and forget the branch environments whose branch is gone or merged into main.

Which ones: a recorded environment (kit/environment/registry.py) whose branch no longer exists, or whose branch
has commits of its own that main now holds. Nothing is stopped or removed while a run is in flight in any of
them. Their home and data root stay unless ``data``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.environment import registry
from prefect_julia.kit.environment.environments import Environment, recorded_environment
from prefect_julia.kit.server import inflight, servers
from prefect_julia.kit.worker import lifecycle

MAIN = "main"


@dataclass
class Pruned:
    """What env-prune did (or, with ``dry_run``, would do): per environment, why, and the folders removed."""

    gone: list[tuple[registry.Entry, str]] = field(default_factory=list)
    removed_folders: list[Path] = field(default_factory=list)
    dry_run: bool = False


def why_gone(root: Path, entry: registry.Entry) -> str | None:
    """Why ``entry`` is to go ('branch deleted', 'merged into main'), or None while its branch lives."""
    if not gitrepo.has_branch(root, entry.branch):
        return "branch deleted"
    tip = gitrepo.rev_parse(root, f"refs/heads/{entry.branch}")
    if tip == entry.start or not gitrepo.has_branch(root, MAIN):
        return None  # no commit of its own yet: not merged, whatever main holds
    return "merged into main" if gitrepo.is_ancestor(root, tip, f"refs/heads/{MAIN}") else None


def _resolved(root: Path, entry: registry.Entry, environ: dict[str, str]) -> Environment | None:
    try:
        return recorded_environment(root, entry, environ)
    except ConfigError:
        return None


def removed_note(root: Path, env: Environment) -> str | None:
    """What ``invoke server-status`` says of a branch environment whose worktree was removed; None otherwise."""
    if env.removed_checkout is None or env.branch is None:
        return None
    entry = registry.find(root, env.name)
    if entry is not None and why_gone(root, entry) is not None:
        return "worktree gone: `invoke env-prune` forgets it"
    return f"worktree gone: `invoke env-prune` forgets it once branch {env.branch} is deleted or merged"


def _refuse_in_flight(envs: list[Environment]) -> None:
    for env in envs:
        if servers.is_healthy(env.local_api_url, timeout=2.0):
            runs = inflight.in_flight(env)
            if runs:
                error = inflight.refuse(env, runs, "server", "env-prune")
                error.hint = f"Wait for them to finish (`invoke status {env.name}`), then run `invoke env-prune` again."
                raise error


def prune(root: Path, environ: dict[str, str], *, dry_run: bool = False, data: bool = False) -> Pruned:
    """Stop and forget every branch environment whose branch is gone; refused before anything changes while a
    run is in flight in one of them."""
    report = Pruned(dry_run=dry_run)
    for entry in registry.entries(root):
        reason = why_gone(root, entry)
        if reason is not None:
            report.gone.append((entry, reason))
    envs = {entry.name: _resolved(root, entry, environ) for entry, _ in report.gone}
    _refuse_in_flight([env for env in envs.values() if env is not None])
    if dry_run:
        return report
    for entry, _ in report.gone:
        env = envs[entry.name]
        if env is not None:
            lifecycle.server_down(env, cancel=False)
            if data:
                for folder in (env.home, env.data_root):
                    if folder.exists():
                        shutil.rmtree(folder)
                        report.removed_folders.append(folder)
        registry.remove(root, {entry.name})
    return report


__all__ = ["Pruned", "prune", "removed_note", "why_gone"]
