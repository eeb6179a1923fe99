"""Prod runs the deployed commit: a worktree of it (local prod) or a git clone of it (deploys from CI).

Real servers, real workers, real julia: the Julia job of main writes "main"; dev's version exits 3.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import KitRepo, RunningServer, make_kit_repo
from prefect_julia.core.errors import CommandFailed, ConfigError

pytestmark = [pytest.mark.server, pytest.mark.julia]

FLOW = """
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="answer")
def answer(out: str = "answer.txt") -> None:
    julia_job("answer", {"out": out}, timeout=300)
"""
MAIN_JOB = 'path = split(ARGS[1], "="; limit=2)[2]\nwrite(path, "main")\n'
DEV_JOB = "exit(3)\n"
DECLARATION = """
deployments:
  - name: answer
    entrypoint: flows/answer.py:answer
    work_pool:
      name: "{{ $PREFECT_JULIA_WORK_POOL }}"
"""
IGNORED = ".prefect/\nenvs/*.local.env\ndata/\nprofiles/profiles.toml\n__pycache__/\njulia/Manifest.toml\n"


def _project(root: Path) -> KitRepo:
    repo = make_kit_repo(root, branch="main", project=True)
    (repo.root / "flows" / "answer.py").write_text(FLOW)
    (repo.root / "julia" / "jobs" / "answer.jl").write_text(MAIN_JOB)
    (repo.root / "prefect.yaml").write_text(DECLARATION)
    (repo.root / ".gitignore").write_text(IGNORED)
    _commit(repo, "the answer flow")
    return repo


def _commit(repo: KitRepo, message: str) -> None:
    repo.git("add", "-A")
    repo.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", message)


def test_prod_runs_the_deployed_commit_after_the_tree_moves_to_dev(tmp_path: Path) -> None:
    repo = _project(tmp_path / "repo")
    prod = repo.environment("prod")
    main_commit = repo.git("rev-parse", "HEAD").strip()
    try:
        repo.invoke("server-up", "--env", "prod", check=True, timeout=300)
        (repo.root / "stray.txt").write_text("not committed")
        dirty = repo.invoke("deploy", "--env", "prod")
        assert dirty.returncode == ConfigError.exit_code and "uncommitted or untracked" in dirty.stderr, dirty.stderr
        assert "fix: " in dirty.stderr and not prod.files.code.exists()  # nothing deployed, no checkout made
        (repo.root / "stray.txt").unlink()

        deployed = repo.invoke("deploy", "--env", "prod", check=True, timeout=300)
        assert f"commit {main_commit[:10]}" in deployed.stdout
        assert prod.deployed_commit == main_commit
        repo.invoke("worker-up", "--env", "prod", check=True, timeout=300)

        repo.git("switch", "-q", "-c", "dev")
        (repo.root / "julia" / "jobs" / "answer.jl").write_text(DEV_JOB)
        _commit(repo, "dev: the job exits 3")
        not_main = repo.invoke("deploy", "--env", "prod")
        assert not_main.returncode == ConfigError.exit_code and "is not on 'main'" in not_main.stderr
        assert prod.deployed_commit == main_commit  # unchanged

        repo.invoke("server-up", "--env", "dev", check=True, timeout=300)
        repo.invoke("deploy", "--env", "dev", check=True, timeout=300)
        repo.invoke("worker-up", "--env", "dev", check=True, timeout=300)

        out_prod = tmp_path / "prod.txt"
        ran = repo.invoke("run", "answer", "--env", "prod", "--param", f"out={out_prod}", timeout=600)
        assert ran.returncode == 0 and "Completed" in ran.stdout, ran.stdout + ran.stderr
        assert out_prod.read_text() == "main"

        out_dev = tmp_path / "dev.txt"
        failed = repo.invoke("run", "answer", "--env", "dev", "--param", f"out={out_dev}", timeout=600)
        assert failed.returncode == 1 and "exit code: 3" in failed.stderr, failed.stdout + failed.stderr
        assert not out_dev.exists()
    finally:
        repo.invoke("server-down", "--env", "dev", timeout=120)
        repo.invoke("server-down", "--env", "prod", timeout=120)
        subprocess.run(["git", "-C", str(repo.root), "worktree", "prune"], check=False)


def test_a_git_sourced_deployment_runs_from_another_clone_after_the_first_is_deleted(
    tmp_path: Path, prefect_server: RunningServer
) -> None:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    first = _project(tmp_path / "first")
    first.git("remote", "add", "origin", str(origin))
    first.git("push", "-q", "origin", "main")
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    remote = {
        "PREFECT_API_URL": prefect_server.api_url,
        "PREFECT_JULIA_CODE_SOURCE": "git",
        "PREFECT_JULIA_WORK_POOL": pool,
    }

    unreachable = first.invoke("deploy", "--env", "prod", **remote, PREFECT_JULIA_GIT_URL=str(tmp_path / "missing.git"))
    assert unreachable.returncode == CommandFailed.exit_code, unreachable.stdout + unreachable.stderr
    assert "could not be fetched" in unreachable.stderr and "Nothing was deployed" in unreachable.stderr

    deployed = first.invoke("deploy", "--env", "prod", check=True, timeout=300, **remote)
    assert "of " + str(origin) in deployed.stdout
    shutil.rmtree(first.root)

    second_root = tmp_path / "second"
    subprocess.run(["git", "clone", "-q", str(origin), str(second_root)], check=True)
    second = KitRepo(root=second_root, ports={"dev": 0, "prod": 0})
    out = tmp_path / "from-git.txt"
    try:
        second.invoke("worker-up", "--env", "prod", check=True, timeout=300, **remote)
        ran = second.invoke("run", "answer", "--env", "prod", "--param", f"out={out}", timeout=600, **remote)
        assert ran.returncode == 0 and "Completed" in ran.stdout, ran.stdout + ran.stderr
        assert out.read_text() == "main"
    finally:
        second.invoke("worker-down", "--env", "prod", timeout=120, **remote)
