"""Branch environments end to end, with real servers: two worktrees of one clone each bring up an environment of
their own with no setting written by hand and run `daily` in it, a run reads what only dev's data holds,
`invoke server-status` in either lists both (and one whose worktree was removed, until it is pruned), and
`invoke env-prune` stops and forgets the one whose branch was deleted; an environment declared only by envs/ files
works too."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness import REPO_ROOT, KitRepo, free_port, kit_api, make_kit_repo
from prefect_julia.core import processes
from prefect_julia.kit.environment import registry
from prefect_julia.kit.environment.environments import Environment, resolve_environment
from prefect_julia.kit.server import servers
from prefect_julia.runtime.dataset import Dataset

pytestmark = pytest.mark.server

AUTHOR = ("-c", "user.name=t", "-c", "user.email=t@example.invalid")
#: The demo's secret block reads it (envs/dev.blocks.toml); a test value, never a real credential.
TOKEN = {"DEMO_API_TOKEN": "test-token-not-secret"}


#: A flow that reads a dataset only dev has: in a branch environment the read falls back to dev's data.
READBACK_FLOW = """
from prefect import flow

from prefect_julia import Dataset


@flow(name="readback")
def readback(dataset_name: str = "base_only") -> int:
    return len(Dataset(dataset_name).read_csv())
"""
READBACK = """
  - name: readback
    entrypoint: flows/readback.py:readback
    work_pool: *work_pool
    environments: [dev]
"""
#: What a `daily` run writes below its environment's data root.
DAILY_FILES = {
    "extracts/csv/latest/dataset=sensor_readings/data.csv",
    "reports/csv/latest/dataset=sensor_readings_summary/data.csv",
}


def _files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def _commit(repo: KitRepo, message: str) -> None:
    (repo.root / ".gitignore").write_bytes((REPO_ROOT / ".gitignore").read_bytes())  # local settings stay out
    repo.git("add", "-A")
    repo.git(*AUTHOR, "commit", "-q", "-m", message)


def _ok(repo: KitRepo, *args: str, timeout: float = 300) -> str:
    return repo.invoke(*args, timeout=timeout, check=True, **TOKEN).stdout


def _resolved(repo: KitRepo) -> Environment:
    """The environment of the checkout's branch, as the kit resolves it now (after server-up: with auth)."""
    return resolve_environment(None, repo.root, repo.environ())


def _deployments(env: Environment) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = kit_api(env, "POST", "/deployments/filter", {"limit": 200})
    return found


def _pools(env: Environment) -> set[str]:
    return {pool["name"] for pool in kit_api(env, "POST", "/work_pools/filter", {"limit": 200})}


def _status_row(output: str, name: str) -> str:
    rows = [line for line in output.splitlines() if re.match(rf"\W*{re.escape(name)}\s", line)]
    assert len(rows) == 1, f"no single server-status row for {name}:\n{output}"
    return rows[0]


def _pids(env: Environment) -> list[int]:
    records = [processes.read_pid_file(path) for path in (env.files.worker_pid, env.files.server_pid)]
    return [record.pid for record in records if record is not None]


@contextlib.contextmanager
def _stopped_at_end(started: list[int]) -> Iterator[None]:
    """Whatever happens, every server and worker the test started is stopped (workers first)."""
    try:
        yield
    finally:
        for pid in started:
            if processes.running(pid):
                processes.stop_tree(pid, grace=15)


def test_each_worktree_has_its_own_environment_and_env_prune_forgets_a_deleted_branch(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", branch="main", project=True, per_branch=True)
    (repo.root / "flows" / "readback.py").write_text(READBACK_FLOW)
    (repo.root / "prefect.yaml").write_text((repo.root / "prefect.yaml").read_text() + READBACK)
    _commit(repo, "kit")
    repo.git("worktree", "add", "-q", "../wt-a", "-b", "feature/a")
    repo.git("worktree", "add", "-q", "../wt-b", "-b", "feature/b")
    wt_a, wt_b = KitRepo(tmp_path / "wt-a", {}), KitRepo(tmp_path / "wt-b", {})
    started: list[int] = []
    with _stopped_at_end(started):
        with ThreadPoolExecutor(2) as pool:  # both at once: the record's lock gives each its own port
            for done in pool.map(lambda wt: wt.invoke("server-up", timeout=300, **TOKEN), (wt_a, wt_b)):
                assert done.returncode == 0, done.stdout + done.stderr
        env_a, env_b = _resolved(wt_a), _resolved(wt_b)
        started += _pids(env_a) + _pids(env_b)  # the servers
        assert (env_a.name, env_a.branch, env_a.base) == ("feature-a", "feature/a", "dev")
        assert (env_b.name, env_b.branch, env_b.base) == ("feature-b", "feature/b", "dev")
        assert env_a.port != env_b.port
        # homes and data roots live in the clone's main working tree: a removed worktree takes neither
        assert (env_a.home, env_b.data_root) == (repo.root / ".prefect" / "feature-a", repo.root / "data" / "feature-b")
        recorded = {entry.name: (entry.branch, entry.port) for entry in registry.entries(repo.root)}
        assert recorded == {"feature-a": ("feature/a", env_a.port), "feature-b": ("feature/b", env_b.port)}
        for wt in (wt_a, wt_b):
            _ok(wt, "blocks")
            _ok(wt, "deploy")
            _ok(wt, "worker-up")
        pids = {env.name: _pids(env) for env in (env_a, env_b)}  # worker, server
        assert all(len(found) == 2 for found in pids.values()), pids
        started[:0] = [pids[env.name][0] for env in (env_a, env_b)]  # the workers, stopped before the servers

        for env, other in ((env_a, env_b), (env_b, env_a)):
            deployments = _deployments(env)
            assert {d["name"] for d in deployments} == {"daily", "readback"}
            assert {d["work_pool_name"] for d in deployments} == {f"{env.name}-process"}
            assert all(str(env.root) in str(d["pull_steps"]) for d in deployments)
            assert not any(str(other.root) in str(d["pull_steps"]) for d in deployments)
            assert f"{env.name}-process" in _pools(env)
            assert f"{other.name}-process" not in _pools(env)

        # `invoke run daily` in both at once: each Completed (the task exits 0 only then) and wrote its data
        # to its own data root, neither to the other's nor to dev's
        dev_data = repo.root / "data" / "dev"
        with ThreadPoolExecutor(2) as pool:
            daily = dict(
                zip((env_a.name, env_b.name), pool.map(lambda wt: _ok(wt, "run", "daily"), (wt_a, wt_b)), strict=True)
            )
        for env, other in ((env_a, env_b), (env_b, env_a)):
            assert _files(env.data_root) >= DAILY_FILES, _files(env.data_root)
            assert f"{env.data_root}/reports" in daily[env.name], daily[env.name]
            assert str(other.data_root) not in daily[env.name], daily[env.name]
        assert not dev_data.exists() or not _files(dev_data), _files(dev_data)

        # a dataset only dev has (in the clone's main working tree, where dev's runs write): a branch
        # environment's run reads it from there, says so, and copies nothing into its own data root
        base_only = Dataset("base_only", basepath=dev_data, env={})
        base_only.write_csv([{"station": "north"}, {"station": "south"}], ["station"])
        readback = _ok(wt_a, "run", "readback")
        assert 'Dataset "base_only" read from dev\'s data' in readback, readback
        assert str(dev_data / base_only.latest_path) in readback, readback
        assert not any("dataset=base_only" in name for name in _files(env_a.data_root))

        for wt in (wt_a, wt_b):
            status = _ok(wt, "server-status")
            for env in (env_a, env_b):
                row = _status_row(status, env.name)
                checkout = "." if env.root == wt.root else str(env.root)
                for shown in (env.branch, checkout, str(env.port), "healthy"):
                    assert f" {shown} " in f" {row} ", f"{shown!r} missing from {row!r}"

        data_b = env_b.home / "prefect.db"
        repo.git("worktree", "remove", "--force", "../wt-b")
        repo.git("branch", "-D", "feature/b")

        gone = _status_row(_ok(wt_a, "server-status"), env_b.name)  # listed until pruned, and said why
        for shown in (env_b.branch, str(tmp_path / "wt-b"), str(env_b.port), "worktree gone: `invoke env-prune`"):
            assert shown in gone, f"{shown!r} missing from {gone!r}"

        dry = _ok(wt_a, "env-prune", "--dry-run")
        assert "would remove  feature-b  (feature/b: branch deleted" in dry, dry
        assert "feature-a" not in dry
        assert {entry.name for entry in registry.entries(repo.root)} == {"feature-a", "feature-b"}
        assert all(processes.running(pid) for pid in pids[env_b.name])

        pruned = _ok(wt_a, "env-prune")
        assert "removed  feature-b  (feature/b: branch deleted" in pruned, pruned
        assert {entry.name for entry in registry.entries(repo.root)} == {"feature-a"}
        assert not any(processes.running(pid) for pid in pids[env_b.name])
        assert not servers.is_healthy(env_b.local_api_url, timeout=2.0)
        assert data_b.is_file(), "env-prune without --data keeps the home"
        assert servers.is_healthy(env_a.local_api_url, timeout=10.0)
        assert "feature-b" not in _ok(wt_a, "server-status")

        down = _ok(wt_a, "server-down", "--cancel")
        assert "feature-a server stopped" in down, down
        assert not any(processes.running(pid) for pid in pids[env_a.name])


DEV_ONLY = """
  - name: dev-only
    entrypoint: flows/demo.py:demo_pipeline
    work_pool: *work_pool
    environments: [dev]
"""


def test_an_environment_declared_only_by_envs_files_works_end_to_end(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", branch="release/1", project=True, per_branch=True)
    dev = (repo.root / "envs" / "dev.env").read_text()
    staging = {"PORT": str(free_port()), "HOME": ".prefect/staging", "DATA_ROOT": "data/staging"}
    staging["WORK_POOL"] = "staging-process"
    for key, value in staging.items():
        dev = re.sub(rf"^PREFECT_JULIA_{key}=.*$", f"PREFECT_JULIA_{key}={value}", dev, flags=re.M)
    (repo.root / "envs" / "staging.env").write_text(dev.replace("dev environment", "staging environment"))
    branches = repo.root / "envs" / "branches.toml"
    branches.write_text(branches.read_text().replace('dev = "dev"\n', 'dev = "dev"\n"release/*" = "staging"\n'))
    declaration = repo.root / "prefect.yaml"
    text = declaration.read_text().replace("environments: [dev, prod]", "environments: [dev, prod, staging]")
    declaration.write_text(text + DEV_ONLY)
    _commit(repo, "staging")
    started: list[int] = []
    with _stopped_at_end(started):
        up = _ok(repo, "server-up")
        assert "staging server started" in up, up
        env = _resolved(repo)
        started += _pids(env)
        assert (env.name, env.base, env.port) == ("staging", None, int(staging["PORT"]))
        assert env.home == repo.root / ".prefect" / "staging"
        _ok(repo, "deploy", "staging")
        deployments = _deployments(env)
        assert {d["name"] for d in deployments} == {"daily"}
        assert {d["work_pool_name"] for d in deployments} == {"staging-process"}
        row = _status_row(_ok(repo, "server-status"), "staging")
        for shown in ("release/*", str(env.port), "healthy"):
            assert f" {shown} " in f" {row} ", f"{shown!r} missing from {row!r}"
        down = _ok(repo, "server-down", "staging")
        assert "staging server stopped" in down, down
        assert not any(processes.running(pid) for pid in started)
        assert registry.entries(repo.root) == []
