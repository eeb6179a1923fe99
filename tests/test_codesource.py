"""Code sources without a server: prod's checkout of the deployed commit, and the refusals before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import KitRepo, make_kit_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.declarations import codesource


def _main_repo(tmp_path: Path) -> KitRepo:
    repo = make_kit_repo(tmp_path / "repo", branch="main")
    (repo.root / ".gitignore").write_text(".prefect/\nenvs/*.local.env\n")
    (repo.root / "job.txt").write_text("main\n")
    repo.git("add", "-A")
    repo.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "main")
    return repo


def test_prod_gets_a_checkout_of_the_commit_that_only_a_deploy_moves(tmp_path: Path) -> None:
    repo = _main_repo(tmp_path)
    prod = repo.environment("prod")
    assert prod.code_source == "worktree" and repo.environment("dev").code_source == "tree"
    code = codesource.prepare(prod, repo.root)
    commit = repo.git("rev-parse", "HEAD").strip()
    assert code.commit == commit and code.root == prod.files.code / commit
    assert code.job_env["PREFECT_JULIA_PROJECT"] == str(code.root / "julia")
    codesource.settle(prod, repo.root, code)
    assert prod.deployed_commit == commit
    assert prod.code_dir == code.root

    (code.root / "job.txt").write_text("edited in prod's checkout\n")
    (repo.root / "job.txt").write_text("edited in the working tree\n")
    with pytest.raises(ConfigError, match="uncommitted or untracked"):
        codesource.prepare(prod, repo.root)
    repo.git("checkout", "--", "job.txt")
    again = codesource.prepare(prod, repo.root)
    assert (again.root / "job.txt").read_text() == "main\n"  # the kit's checkout is put back

    repo.git("switch", "-q", "-c", "dev")
    (repo.root / "job.txt").write_text("dev\n")
    repo.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-am", "dev")
    with pytest.raises(ConfigError, match="is not on 'main'") as refused:
        codesource.prepare(prod, repo.root)
    assert "git switch main" in str(refused.value)
    assert prod.deployed_commit == commit and (code.root / "job.txt").read_text() == "main\n"
