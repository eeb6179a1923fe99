"""Git plumbing for the gates and promotion: branch, clean tree, fast-forward merge, commit ids.

Every function takes the repository ``root`` and runs ``git -C root`` in a subprocess, with the variables git
sets for its hooks (``GIT_DIR``, ``GIT_INDEX_FILE``, ...) removed so that a call made from inside a hook still
talks to ``root``. Failures raise ``CommandFailed`` with the command line and the tail of git's stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from prefect_julia.core.errors import CommandFailed

__all__ = [
    "changed_paths",
    "checkout",
    "clean_env",
    "current_branch",
    "git",
    "has_branch",
    "is_ancestor",
    "merge_ff_only",
    "rev_parse",
    "set_branch",
]

# Variables that point git at another repository or index; hooks run with some of them set.
_LOCATING_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_QUARANTINE_PATH",
)


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: the process environment) without the variables that relocate git."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if k not in _LOCATING_VARIABLES}


def git(root: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run ``git -C root ARGS`` and return its stdout without the trailing newline.

    Raises ``CommandFailed`` when git exits non-zero and ``check`` is true.
    """
    command = ["git", "-C", str(root), *args]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as error:
        raise CommandFailed(
            "git is not installed or not on PATH.",
            command=command,
            hint="Install git (apt-get install git) and run the command again.",
        ) from error
    if check and done.returncode != 0:
        raise CommandFailed(
            f"`git {' '.join(args)}` failed in {root}.",
            command=command,
            return_code=done.returncode,
            stderr_tail="\n".join(done.stderr.strip().splitlines()[-10:]),
            hint="Read git's message above; run the same git command by hand to see the full picture.",
        )
    return done.stdout.rstrip("\n")


def current_branch(root: Path, env: Mapping[str, str] | None = None) -> str | None:
    """The checked-out branch's short name, or ``None`` on a detached HEAD."""
    name = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", env=env, check=False)
    return name or None


def changed_paths(root: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Staged, unstaged and untracked (not ignored) paths, as ``git status --porcelain`` lines."""
    out = git(root, "status", "--porcelain", "--untracked-files=all", env=env)
    return [line for line in out.splitlines() if line.strip()]


def has_branch(root: Path, branch: str, env: Mapping[str, str] | None = None) -> bool:
    """True when the local branch ``branch`` exists."""
    out = git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", env=env, check=False)
    return bool(out)


def rev_parse(root: Path, ref: str, env: Mapping[str, str] | None = None) -> str:
    """The full commit id that ``ref`` names."""
    return git(root, "rev-parse", "--verify", f"{ref}^{{commit}}", env=env)


def is_ancestor(root: Path, ancestor: str, descendant: str, env: Mapping[str, str] | None = None) -> bool:
    """True when ``ancestor`` is reachable from ``descendant`` (so ``descendant`` fast-forwards it)."""
    command = ["git", "-C", str(root), "merge-base", "--is-ancestor", ancestor, descendant]
    done = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(env), stdin=subprocess.DEVNULL, check=False
    )
    if done.returncode in (0, 1):
        return done.returncode == 0
    raise CommandFailed(
        f"Could not compare {ancestor} and {descendant} in {root}.",
        command=command,
        return_code=done.returncode,
        stderr_tail=done.stderr.strip(),
        hint="Check that both branches exist (git branch --list).",
    )


def checkout(root: Path, branch: str, env: Mapping[str, str] | None = None) -> None:
    """Switch the working tree to ``branch``."""
    git(root, "checkout", "--quiet", branch, env=env)


def merge_ff_only(root: Path, source: str, env: Mapping[str, str] | None = None) -> str:
    """Fast-forward the checked-out branch to ``source`` and return the new commit id.

    Raises ``CommandFailed`` (and changes nothing) when the merge would not be a fast-forward.
    """
    git(root, "merge", "--ff-only", "--quiet", source, env=env)
    return rev_parse(root, "HEAD", env)


def set_branch(root: Path, branch: str, commit: str, env: Mapping[str, str] | None = None) -> None:
    """Point the local branch ``branch`` at ``commit`` (used to undo an unpublished fast-forward)."""
    git(root, "update-ref", f"refs/heads/{branch}", commit, env=env)
