"""Promotion from the branch you are on to the main branch (the prod environment).

``promote`` works from any branch but main (``dev``, ``feature/x``). First, in seconds, everything it needs:
a branch and a clean tree, a ``main`` that the branch fast-forwards, and (``check_prod``) prod's server up,
this checkout's, accepting this checkout's credentials and holding the blocks prod's notifications use. Then
one gate on the branch's tree, skipped when that tree already passed one with the same tools
(``gates/passes.py``; the branch's tree is the tree ``main`` will have). Then ``main`` is fast-forwarded to the
branch (fast-forward only: ``main`` never gets a commit the gate did not check) and prod is deployed.

A refusal changes nothing. When the deploy cannot reach prod, ``main`` stays moved (its tree passed the gate)
and the message says how to deploy once the server is up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import GateFailed, ServerError
from prefect_julia.core.prefect_http import ApiRefused
from prefect_julia.gates.gate import Step, require_passed
from prefect_julia.gates.passes import Verdict, gate_once
from prefect_julia.kit.access import identity, security
from prefect_julia.kit.declarations import automations, blocks
from prefect_julia.kit.environment.environments import BRANCHES_FILE, Environment, load_branch_mapping
from prefect_julia.kit.server import servers

__all__ = ["Branches", "Promotion", "check_prod", "promote", "promotion_branches"]


@dataclass(frozen=True)
class Branches:
    """The repository's dev branch (``dev``, when it uses one) and the branch that is prod (``main``)."""

    dev: str = "dev"
    main: str = "main"


@dataclass(frozen=True)
class Promotion:
    """What a successful promotion did."""

    branch: str
    main_before: str
    main_after: str
    verdict: Verdict

    @property
    def moved(self) -> bool:
        """True when main moved (false when main already was at the branch's commit)."""
        return self.main_before != self.main_after


def promotion_branches(root: Path) -> Branches:
    """The dev and main branch names from the branch mapping (``envs/branches.toml``), else ``dev`` and ``main``.

    The main branch is the one mapped to ``"prod"``, the dev branch one mapped to ``"dev"`` if any.
    """
    if not (root / BRANCHES_FILE).is_file():
        return Branches()
    mapping = load_branch_mapping(root)
    mains = sorted(b for b, env in mapping.branches.items() if env == "prod")
    devs = sorted(b for b, env in mapping.branches.items() if env == "dev")
    return Branches(dev=devs[0] if devs else "dev", main=mains[0] if mains else "main")


def _short(commit: str) -> str:
    return commit[:10]


def _check_branch(root: Path, branches: Branches, env: Mapping[str, str] | None) -> tuple[str, str]:
    """The branch checked out and its commit, when it may be promoted; else ``GateFailed``."""
    branch = gitrepo.current_branch(root, env)
    if branch is None or branch == branches.main:
        shown = f"'{branch}'" if branch else "a detached HEAD"
        raise GateFailed(
            f"Promotion fast-forwards '{branches.main}' to the branch you are on, but {shown} is checked out. "
            "Nothing changed.",
            hint=f"Switch to the branch to promote (`git switch {branches.dev}` or your feature branch), "
            "then run `invoke promote` again.",
        )
    dirty = gitrepo.changed_paths(root, env)
    if dirty:
        sample = ", ".join(line[3:] for line in dirty[:3]) + (" ..." if len(dirty) > 3 else "")
        raise GateFailed(
            f"The working tree is not clean ({len(dirty)} changed or untracked path(s): {sample}). Nothing changed.",
            hint="Commit your changes (git status shows them), then run `invoke promote` again.",
        )
    if not gitrepo.has_branch(root, branches.main, env):
        raise GateFailed(
            f"There is no local '{branches.main}' branch to promote into. Nothing changed.",
            hint=f"Create it from the released commit (git branch {branches.main} <commit>), then promote.",
        )
    if not gitrepo.is_ancestor(root, branches.main, branch, env):
        raise GateFailed(
            f"'{branches.main}' has commits that '{branch}' lacks, so it cannot be fast-forwarded to '{branch}' "
            "(promotion only fast-forwards). Nothing changed.",
            hint=f"Put your branch on top of it: `git rebase {branches.main}` (or `git merge {branches.main}`), "
            "then `invoke promote` again.",
        )
    return branch, gitrepo.rev_parse(root, "HEAD", env)


def check_prod(root: Path, prod: Environment) -> None:
    """Raise unless prod can be deployed now: its server answers, is this checkout's, accepts this checkout's
    credentials, and holds the blocks its notifications use. Reads only; takes seconds."""
    if not servers.is_healthy(prod.api_url, timeout=5.0):
        raise ServerError(
            f"prod's server at {prod.api_url} does not answer, so promotion could not deploy. Nothing changed.",
            hint="Start it with `invoke server-up prod` (`invoke server-status prod` shows it), "
            "then run `invoke promote` again.",
        )
    identity.check(prod)
    try:
        security.api_client(prod).request("GET", "/admin/version")
    except ApiRefused as error:
        raise security.refused(prod, error) from error
    automations.require_blocks(prod, automations.plan(root, prod.name), blocks.load(root, prod.declares))


def _fast_forward(root: Path, branches: Branches, before: str, after: str, env: Mapping[str, str] | None) -> None:
    """Move main from ``before`` to ``after`` (only if it still is at ``before``: git compares and swaps)."""
    if before != after:
        gitrepo.git(root, "update-ref", "-m", "promote: fast-forward", f"refs/heads/{branches.main}", after, before,
                    env=env)  # fmt: skip


def promote(
    root: Path,
    *,
    deploy: Callable[[], object],
    check_prod: Callable[[], None] | None = None,
    steps: Sequence[Step] | None = None,
    force: bool = False,
    branches: Branches | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> Promotion:
    """Promote the checked-out branch of ``root`` to main and deploy prod with ``deploy``.

    ``check_prod`` raises when prod cannot be deployed (see :func:`check_prod`); it runs before the gate.
    ``steps`` are the gate's steps (default: the full gate); ``force`` gates a tree that passed already.
    Raises ``GateFailed`` on a refused precondition or a failed gate (nothing changed), what ``check_prod``
    raises (nothing changed), and ``ServerError`` when the deploy could not reach prod (main stays moved).
    """
    stream = sys.stdout if out is None else out
    names = branches or promotion_branches(root)
    branch, head = _check_branch(root, names, env)
    main_before = gitrepo.rev_parse(root, names.main, env)
    if check_prod is not None:
        stream.write("promote: checking prod (server, identity, credentials, notification blocks)\n")
        stream.flush()
        check_prod()

    verdict = gate_once(root, steps, force=force, label=f"{names.main}'s tree", env=env, out=stream)
    if verdict.report is not None:
        stream.write(verdict.report.table() + "\n")
        require_passed(verdict.report, where=f"{branch} ({names.main} was not moved)")
    _check_branch(root, names, env)  # the gate left the tree as it found it
    _fast_forward(root, names, main_before, head, env)
    moved = f"{_short(main_before)} -> {_short(head)}" if main_before != head else f"already at {_short(head)}"
    stream.write(f"promote: {names.main} {moved} ({branch}); deploying to prod\n")
    stream.flush()
    try:
        deploy()
    except ServerError as error:
        raise ServerError(
            f"{names.main} is now at {_short(head)} and its tree passed the gate, but the deploy to prod did not "
            f"happen: {error.message}",
            hint="Start the prod server (`invoke server-up prod`), then run `invoke deploy prod` "
            f"(or `invoke promote` again from {branch}: its tree passed, so it only deploys).",
        ) from error
    stream.write(f"promote: {names.main} at {_short(head)} is deployed to prod\n")
    return Promotion(branch, main_before, head, verdict)
