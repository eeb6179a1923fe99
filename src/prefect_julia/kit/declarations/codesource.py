"""Where an environment's flow runs get their code (``PREFECT_JULIA_CODE_SOURCE``).

- ``tree``: the working tree itself (dev's default): a run executes whatever the checkout holds at run time.
- ``worktree``: a kit-managed git worktree of the deployed commit under the environment's home (prod's
  default), ``<home>/code/<commit>``. Only ``invoke deploy --env prod`` / ``invoke promote`` add one; switching
  branches, editing or deleting the checkout's files does not change what runs.
- ``git``: a git clone of the repository at the deployed commit, made by the worker's pull step (deploys from
  CI, where the deploying folder does not exist on the worker). A private repository's token comes from the
  Secret block named by ``PREFECT_JULIA_GIT_ACCESS_BLOCK``.

Deploying a commit (``worktree``, ``git``) needs a clean tree whose HEAD is on the branch mapped to prod.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.environment.environments import DEPLOYED_FILE, Environment, load_branch_mapping

#: Worktrees kept besides the deployed one, for runs that started before the last deploy.
KEEP_PREVIOUS = 1


@dataclass(frozen=True)
class Code:
    """One code source: ``root`` holds the prefect.yaml and flows read at deploy time; ``storage`` is what
    ``Flow.from_source`` gets (a folder or a Prefect ``GitRepository``); ``job_env`` goes into every run."""

    kind: str
    root: Path
    storage: Any
    directory: str
    describe: str
    commit: str | None = None
    job_env: Mapping[str, str] = field(default_factory=dict)
    fetch_hint: str = "Check that the folder exists and holds the flows."


def working_tree(root: Path) -> Code:
    """Runs execute the checkout ``root`` as it is at run time."""
    return Code(kind="tree", root=root, storage=str(root), directory=str(root), describe=f"the working tree {root}")


def main_branch(root: Path) -> str:
    """The branch the prod environment runs (``envs/branches.toml``), ``main`` when none is named."""
    named = sorted(branch for branch, env in load_branch_mapping(root).branches.items() if env == "prod")
    return named[0] if named else "main"


def deployable_commit(root: Path, env: Environment, environ: Mapping[str, str] | None = None) -> str:
    """HEAD of ``root`` when it may be deployed as a commit: clean tree, on the prod branch. Else ConfigError."""
    dirty = gitrepo.changed_paths(root, environ)
    if dirty:
        sample = ", ".join(line[3:] for line in dirty[:3]) + (" ..." if len(dirty) > 3 else "")
        raise ConfigError(
            f"Refusing to deploy to {env.name}: the working tree has {len(dirty)} uncommitted or untracked "
            f"path(s) ({sample}), so no commit holds what would be deployed. Nothing was deployed.",
            hint="Commit (or remove) the changes, then run `invoke deploy` again.",
        )
    head = gitrepo.rev_parse(root, "HEAD", environ)
    main = main_branch(root)
    if not gitrepo.has_branch(root, main, environ) or not gitrepo.is_ancestor(root, head, main, environ):
        raise ConfigError(
            f"Refusing to deploy to {env.name}: commit {head[:10]} is not on '{main}'. Nothing was deployed.",
            hint=f"Deploy {env.name} from '{main}' (git switch {main}), or promote first with `just promote`.",
        )
    return head


def prepare(env: Environment, root: Path, environ: Mapping[str, str] | None = None) -> Code:
    """The code source ``env``'s deployments get; for a commit source, checks the tree and makes its checkout."""
    kind = env.code_source
    if kind == "tree":
        return working_tree(root)
    commit = deployable_commit(root, env, environ)
    if kind == "worktree":
        return _worktree(env, root, commit, environ)
    return _git(env, root, commit, environ)


def _worktree(env: Environment, root: Path, commit: str, environ: Mapping[str, str] | None) -> Code:
    target = env.files.code / commit
    if not (target / ".git").exists():
        if target.exists():
            shutil.rmtree(target)  # a half-made checkout of an interrupted deploy
        target.parent.mkdir(parents=True, exist_ok=True)
        gitrepo.git(root, "worktree", "prune", env=environ)
        gitrepo.git(root, "worktree", "add", "--quiet", "--detach", str(target), commit, env=environ)
    else:  # the kit's own checkout: put back any file edited in it since
        gitrepo.git(target, "checkout", "--quiet", "--force", "--detach", commit, env=environ)
    return Code(
        kind="worktree",
        root=target,
        storage=str(target),
        directory=str(target),
        describe=f"commit {commit[:10]} (worktree {target})",
        commit=commit,
        job_env={"PREFECT_JULIA_PROJECT": str(target / "julia"), "PYTHONPATH": str(target / "src")},
    )


def _git(env: Environment, root: Path, commit: str, environ: Mapping[str, str] | None) -> Code:
    from prefect.runner.storage import GitRepository

    url = env.get("PREFECT_JULIA_GIT_URL") or gitrepo.git(root, "remote", "get-url", "origin", env=environ, check=False)
    if not url:
        raise ConfigError(
            f"The {env.name} code source is git, but no repository URL is known (no origin remote).",
            hint=f"Set PREFECT_JULIA_GIT_URL in envs/{env.name}.env, or add an origin remote.",
        )
    credentials: dict[str, Any] | None = None
    block = env.get("PREFECT_JULIA_GIT_ACCESS_BLOCK")
    if block:
        from prefect.blocks.system import Secret

        from prefect_julia.kit.access.prefect_api import settings_for

        try:
            with settings_for(env):
                credentials = {"access_token": Secret.load(block)}
        except ValueError:
            raise ConfigError(
                f"PREFECT_JULIA_GIT_ACCESS_BLOCK names the Secret block {block!r}, which the {env.name} server lacks.",
                hint=f"Create it (e.g. in envs/{env.name}.blocks.toml with secret_from) or fix the name.",
            ) from None
    storage = GitRepository(url=url, commit_sha=commit, credentials=credentials)
    return Code(
        kind="git",
        root=root,
        storage=storage,
        directory=str(root),
        describe=f"commit {commit[:10]} of {url}",
        commit=commit,
        job_env={"PREFECT_JULIA_PROJECT": ""},  # the run's working directory is the clone: its julia/ is used
        fetch_hint=(
            f"Check PREFECT_JULIA_GIT_URL ({url}) is reachable from here and the worker, that {commit[:10]} is "
            "pushed, and for a private repository that PREFECT_JULIA_GIT_ACCESS_BLOCK names a Secret block."
        ),
    )


def settle(env: Environment, root: Path, code: Code, environ: Mapping[str, str] | None = None) -> None:
    """After a successful deploy: record the deployed worktree, remove older ones (but the previous)."""
    if code.kind != "worktree" or code.commit is None:
        return
    folder = env.files.code
    previous = env.deployed_commit
    (folder / DEPLOYED_FILE).write_text(code.commit + "\n", encoding="utf-8")
    keep = {code.commit, previous} if KEEP_PREVIOUS else {code.commit}
    for path in folder.iterdir():
        if path.is_dir() and path.name not in keep:
            gitrepo.git(root, "worktree", "remove", "--force", str(path), env=environ, check=False)
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
    gitrepo.git(root, "worktree", "prune", env=environ, check=False)


__all__ = ["Code", "deployable_commit", "prepare", "settle", "working_tree"]
