"""The pre-push hook: run the gate before any push to the main branch.

``invoke hooks`` installs a git ``pre-push`` hook that runs ``python -m prefect_julia.gates.pushguard`` with the
project's interpreter. Git hands the hook one line per pushed ref on stdin
(``<local ref> <local sha> <remote ref> <remote sha>``). Pushes to other branches, and deletions, pass at once.
For a push to main the pushed commit must be the checked-out one (the gate checks the working tree), and then
``invoke gate`` must pass. This reads git's own input, so a push of commits the remote already has (main
fast-forwarded to an already pushed dev) is gated too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import PrefectJuliaError
from prefect_julia.gates.promote import promotion_branches

__all__ = ["GATE_COMMAND", "main", "pushed_commits"]

GATE_COMMAND = ("-m", "invoke", "gate")
_DELETED = "0" * 40  # the local sha git gives for a deleted branch


def pushed_commits(lines: Iterable[str], branch: str) -> list[str]:
    """The commits pushed to ``refs/heads/<branch>`` according to git's pre-push input (deletions left out)."""
    commits = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[2] == f"refs/heads/{branch}" and parts[1] != _DELETED:
            commits.append(parts[1])
    return commits


def main(
    argv: Sequence[str] | None = None,
    stdin: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> int:
    """Return 0 to let the push through, 1 to refuse it (with a message on stderr)."""
    here = Path.cwd() if root is None else root
    env = gitrepo.clean_env(os.environ if environ is None else environ)
    try:
        main_branch = promotion_branches(here).main
        commits = pushed_commits(sys.stdin if stdin is None else stdin, main_branch)
        if not commits:
            return 0
        head = gitrepo.rev_parse(here, "HEAD", env)
    except PrefectJuliaError as error:
        print(f"Push refused: {error}", file=sys.stderr)
        return 1
    if any(commit != head for commit in commits):
        print(
            f"Push to {main_branch} refused: the pushed commit {commits[0][:10]} is not the checked-out commit "
            f"{head[:10]}, so the gate cannot check it. Run `git switch {main_branch}` and push again.",
            file=sys.stderr,
        )
        return 1
    command = [sys.executable, *GATE_COMMAND]
    print(f"Pushing to {main_branch}: running the gate first (invoke gate).", file=sys.stderr)
    code = subprocess.run(command, cwd=here, env=env, stdin=subprocess.DEVNULL, check=False).returncode
    if code != 0:
        print(
            f"Push to {main_branch} refused: the gate failed (exit code {code}). Fix what its table shows, "
            "commit, and push again.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
