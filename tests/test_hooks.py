"""Installing the git hooks, and how the push guard reads git's pre-push input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gitrepos import make_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.gates.hooks import MARKER, install_hooks, pre_push_script
from prefect_julia.gates.pushguard import main, pushed_commits

A, B = "a" * 40, "b" * 40
ZERO = "0" * 40


def test_pushed_commits_reads_only_the_main_branch_and_skips_deletions() -> None:
    lines = [
        f"refs/heads/dev {A} refs/heads/dev {ZERO}\n",
        f"refs/heads/main {B} refs/heads/main {A}\n",
        f"(delete) {ZERO} refs/heads/main {B}\n",
    ]
    assert pushed_commits(lines, "main") == [B]
    assert pushed_commits(lines[:1], "main") == []


def test_push_to_another_branch_passes_without_a_gate(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert main([], stdin=[f"refs/heads/dev {A} refs/heads/dev {ZERO}"], environ={}, root=repo) == 0


def test_pre_push_script_runs_the_guard_with_the_given_python() -> None:
    script = pre_push_script("/opt/my env/bin/python")
    assert script.startswith("#!/bin/sh\n") and MARKER in script
    assert "exec '/opt/my env/bin/python' -m prefect_julia.gates.pushguard" in script


def test_someone_elses_pre_push_hook_is_left_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(ConfigError, match="did not write; it was left alone"):
        install_hooks(repo, python=sys.executable)
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
