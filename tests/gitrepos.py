"""Helpers for tests that build real git repositories in temporary folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prefect_julia.core.gitrepo import clean_env


def git_env(**extra: str) -> dict[str, str]:
    """The process environment without git's hook variables, with a fixed identity and no global config."""
    env = clean_env()
    env.update(
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Author",
        GIT_COMMITTER_EMAIL="author@example.com",
        GIT_CONFIG_NOSYSTEM="1",
    )
    env.update(extra)
    return env


def run_git(root: Path, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``git -C root ARGS`` for real and return the completed process."""
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=git_env(**extra), check=check
    )


def make_repo(root: Path, branch: str = "main") -> Path:
    """A new repository at ``root`` with one commit on ``branch``."""
    root.mkdir(parents=True, exist_ok=True)
    run_git(root, "init", "--quiet", "--initial-branch", branch)
    run_git(root, "config", "user.name", "Test Author")
    run_git(root, "config", "user.email", "author@example.com")
    run_git(root, "config", "commit.gpgsign", "false")
    commit_file(root, "README.md", "# sample\n", "first commit")
    return root


def commit_file(root: Path, name: str, content: str, message: str) -> str:
    """Write ``name``, commit it, and return the new commit id."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    run_git(root, "add", name)
    run_git(root, "commit", "--quiet", "--no-verify", "-m", message)
    return run_git(root, "rev-parse", "HEAD").stdout.strip()


def head(root: Path, ref: str = "HEAD") -> str:
    """The commit id ``ref`` names in ``root``."""
    return run_git(root, "rev-parse", ref).stdout.strip()
