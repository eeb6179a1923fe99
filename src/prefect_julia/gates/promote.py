"""Promotion from the dev branch to the main branch (the prod environment).

``promote`` checks the preconditions (on dev, clean tree, main fast-forwards to dev), runs the gate on dev,
fast-forwards main to dev, runs the gate on main, deploys to prod, and returns to dev. It refuses, with an
actionable message and nothing changed, when a precondition or the gate fails. When the prod server cannot
be reached at deploy time the merge stays (main has passed its gate) and the message says how to deploy
once the server is up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import CommandFailed, GateFailed, ServerError
from prefect_julia.gates.gate import GateReport, Step, require_passed, run_gate
from prefect_julia.kit.environments import BRANCHES_FILE, load_branch_mapping

__all__ = ["Branches", "Promotion", "promote", "promotion_branches"]


@dataclass(frozen=True)
class Branches:
    """The branch that promotes (``dev``) and the branch that is prod (``main``)."""

    dev: str = "dev"
    main: str = "main"


@dataclass(frozen=True)
class Promotion:
    """What a successful promotion did."""

    main_before: str
    main_after: str
    dev_report: GateReport
    main_report: GateReport

    @property
    def moved(self) -> bool:
        """True when main moved (false when main already was at dev's commit)."""
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


def _check_preconditions(root: Path, branches: Branches, env: Mapping[str, str] | None) -> None:
    branch = gitrepo.current_branch(root, env)
    if branch != branches.dev:
        shown = f"'{branch}'" if branch else "a detached HEAD"
        raise GateFailed(
            f"Promotion starts from the '{branches.dev}' branch, but {shown} is checked out. Nothing changed.",
            hint=f"Switch with `git switch {branches.dev}` and run `just promote` again.",
        )
    dirty = gitrepo.changed_paths(root, env)
    if dirty:
        sample = ", ".join(line[3:] for line in dirty[:3]) + (" ..." if len(dirty) > 3 else "")
        raise GateFailed(
            f"The working tree is not clean ({len(dirty)} changed or untracked path(s): {sample}). Nothing changed.",
            hint="Commit or stash your changes (git status shows them), then run `just promote` again.",
        )
    if not gitrepo.has_branch(root, branches.main, env):
        raise GateFailed(
            f"There is no local '{branches.main}' branch to promote into. Nothing changed.",
            hint=f"Create it from the released commit (git branch {branches.main} <commit>), then promote.",
        )
    if not gitrepo.is_ancestor(root, branches.main, branches.dev, env):
        raise GateFailed(
            f"'{branches.main}' has commits that '{branches.dev}' lacks, so it cannot be fast-forwarded. "
            "Nothing changed.",
            hint=f"On {branches.dev}, run `git merge {branches.main}` (or rebase onto it), run the gate, "
            "then `just promote` again.",
        )


def promote(
    root: Path,
    *,
    deploy: Callable[[], object],
    steps: Sequence[Step] | None = None,
    branches: Branches | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> Promotion:
    """Promote ``branches.dev`` to ``branches.main`` in ``root`` and deploy to prod with ``deploy``.

    ``steps`` are the gate's steps (default: the full gate). ``deploy`` raises ``ServerError`` when the prod
    server cannot be reached. Raises ``GateFailed`` on a refused precondition or a failed gate (nothing
    changed), and ``ServerError`` when the deploy could not reach prod (main stays merged).
    """
    stream = sys.stdout if out is None else out
    names = branches or promotion_branches(root)
    _check_preconditions(root, names, env)
    main_before = gitrepo.rev_parse(root, names.main, env)

    stream.write(f"promote: running the gate on {names.dev}\n")
    dev_report = run_gate(root, steps, env=env, out=stream)
    stream.write(dev_report.table() + "\n")
    require_passed(dev_report, where=f"{names.dev} (nothing was merged)")

    gitrepo.checkout(root, names.main, env)
    try:
        try:
            main_after = gitrepo.merge_ff_only(root, names.dev, env)
        except CommandFailed as error:
            raise GateFailed(
                f"Fast-forwarding '{names.main}' to '{names.dev}' failed "
                f"({error.stderr_tail or error.message}). Nothing changed.",
                hint=f"Bring {names.dev} up to date (git merge {names.main}), then promote again.",
            ) from error
        moved = f"{_short(main_before)} -> {_short(main_after)}"
        stream.write(f"promote: {names.main} {moved}; running the gate on {names.main}\n")
        main_report = run_gate(root, steps, env=env, out=stream)
        stream.write(main_report.table() + "\n")
        if not main_report.ok:
            gitrepo.checkout(root, names.dev, env)
            gitrepo.set_branch(root, names.main, main_before, env)
            where = f"{names.main}; {names.main} was put back at {_short(main_before)}"
            require_passed(main_report, where=where)

        stream.write("promote: deploying to prod\n")
        try:
            deploy()
        except ServerError as error:
            raise ServerError(
                f"{names.main} is now at {_short(main_after)} and passed its gate, but the deploy to prod "
                f"did not happen: {error.message}",
                hint=f"Start the prod server, then run `just deploy prod` on {names.main} "
                f"(or `just promote` again from {names.dev}: the merge is done, so it gates and deploys).",
            ) from error
        stream.write(f"promote: {names.main} at {_short(main_after)} is deployed to prod\n")
    finally:
        if gitrepo.current_branch(root, env) != names.dev:
            gitrepo.checkout(root, names.dev, env)
    return Promotion(main_before, main_after, dev_report, main_report)
