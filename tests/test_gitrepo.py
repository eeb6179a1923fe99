"""Git plumbing against real repositories in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitrepos import commit_file, head, make_repo, run_git
from prefect_julia.core import gitrepo
from prefect_julia.core.errors import CommandFailed


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_current_branch_and_detached_head(repo: Path) -> None:
    assert gitrepo.current_branch(repo) == "main"
    run_git(repo, "checkout", "--quiet", "--detach")
    assert gitrepo.current_branch(repo) is None


def test_clean_tree_sees_modified_staged_and_untracked_files(repo: Path) -> None:
    assert gitrepo.changed_paths(repo) == []
    (repo / "new.txt").write_text("untracked\n")
    assert gitrepo.changed_paths(repo) == ["?? new.txt"]
    run_git(repo, "add", "new.txt")
    assert gitrepo.changed_paths(repo) == ["A  new.txt"]
    run_git(repo, "commit", "--quiet", "-m", "add")
    (repo / "README.md").write_text("changed\n")
    assert gitrepo.changed_paths(repo) == [" M README.md"]


def test_ignored_files_do_not_make_the_tree_dirty(repo: Path) -> None:
    commit_file(repo, ".gitignore", "*.local.env\n", "ignore local settings")
    (repo / "dev.local.env").write_text("SECRET=x\n")
    assert gitrepo.changed_paths(repo) == []


def test_fast_forward_merge_moves_the_branch(repo: Path) -> None:
    run_git(repo, "checkout", "--quiet", "-b", "dev")
    new = commit_file(repo, "a.txt", "a\n", "on dev")
    run_git(repo, "checkout", "--quiet", "main")
    assert gitrepo.is_ancestor(repo, "main", "dev")
    assert gitrepo.merge_ff_only(repo, "dev") == new
    assert head(repo, "main") == new


def test_diverged_branches_refuse_a_fast_forward_and_change_nothing(repo: Path) -> None:
    run_git(repo, "checkout", "--quiet", "-b", "dev")
    commit_file(repo, "a.txt", "a\n", "on dev")
    run_git(repo, "checkout", "--quiet", "main")
    main_before = commit_file(repo, "b.txt", "b\n", "on main")
    assert not gitrepo.is_ancestor(repo, "main", "dev")
    with pytest.raises(CommandFailed) as caught:
        gitrepo.merge_ff_only(repo, "dev")
    assert caught.value.return_code not in (None, 0)
    assert "merge --ff-only" in str(caught.value)
    assert head(repo, "main") == main_before
    assert gitrepo.changed_paths(repo) == []


def test_has_branch_rev_parse_and_set_branch(repo: Path) -> None:
    first = head(repo)
    assert gitrepo.has_branch(repo, "main")
    assert not gitrepo.has_branch(repo, "dev")
    second = commit_file(repo, "a.txt", "a\n", "second")
    assert gitrepo.rev_parse(repo, "main") == second
    run_git(repo, "checkout", "--quiet", "-b", "other")
    gitrepo.set_branch(repo, "main", first)
    assert gitrepo.rev_parse(repo, "main") == first


def test_unknown_ref_raises_with_git_message(repo: Path) -> None:
    with pytest.raises(CommandFailed) as caught:
        gitrepo.rev_parse(repo, "no-such-branch")
    assert caught.value.command is not None and "rev-parse" in caught.value.command


def test_hook_variables_do_not_redirect_git(repo: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other", branch="elsewhere")
    env = {"PATH": "/usr/bin:/bin", "GIT_DIR": str(other / ".git"), "GIT_WORK_TREE": str(other)}
    assert gitrepo.current_branch(repo, env) == "main"
