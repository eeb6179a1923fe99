"""Promotion from dev to main on real repositories, with small real gate steps and a real prod server.

The gate steps here are a real ruff and a real pytest run on the temporary repository (the project's full
gate would recurse into this very suite). The deploy step is a callable, as in ``tasks.py``.
"""

from __future__ import annotations

import io
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import RunningServer
from gitrepos import commit_file, head, make_repo, run_git
from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError, GateFailed, ServerError
from prefect_julia.gates.gate import Step
from prefect_julia.gates.promote import Branches, promote, promotion_branches

PY = sys.executable
PASSING_TEST = "def test_sum():\n    assert 1 + 1 == 2\n"
STEPS = [
    Step("lint", "ruff", command=[PY, "-m", "ruff", "check", "--no-cache", "."]),
    Step("tests", "pytest", command=[PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"]),
]


def create_pool(name: str) -> None:
    """A real write to the prod server (the ``prefect_server`` fixture) through the Prefect client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def read_pool(name: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.read_work_pool(name).name)


def must_not_deploy() -> None:
    pytest.fail("promotion deployed although it should have stopped before the deploy")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with one commit; dev one commit ahead, checked out and clean."""
    root = make_repo(tmp_path / "repo")
    commit_file(root, ".gitignore", ".pytest_cache/\n__pycache__/\n", "ignore caches")
    commit_file(root, "test_sample.py", PASSING_TEST, "a passing test")
    run_git(root, "checkout", "--quiet", "-b", "dev")
    commit_file(root, "flows/etl.py", '"""A flow."""\n\nVALUE = 2\n', "work on dev")
    return root


def state(root: Path) -> tuple[str | None, str, str, list[str]]:
    return gitrepo.current_branch(root), head(root, "main"), head(root, "dev"), gitrepo.changed_paths(root)


def test_promotion_fast_forwards_main_and_deploys_to_a_real_server(repo: Path, prefect_server: RunningServer) -> None:
    # Creating a work pool on the real server stands in for the full deploy here: it is a real write to
    # the prod server through the Prefect client, made only after both gates passed. The full deploy is
    # tested with the deployments.
    pool = f"promoted-{uuid.uuid4().hex[:8]}"
    main_before, dev_commit = head(repo, "main"), head(repo, "dev")
    out = io.StringIO()
    result = promote(repo, deploy=lambda: create_pool(pool), steps=STEPS, out=out)

    assert (result.main_before, result.main_after, result.moved) == (main_before, dev_commit, True)
    assert result.dev_report.ok and result.main_report.ok
    assert state(repo) == ("dev", dev_commit, dev_commit, [])
    assert read_pool(pool) == pool
    text = out.getvalue()
    assert text.count("gate: passed") == 2 and "is deployed to prod" in text


def test_prod_server_down_keeps_the_merge_and_says_how_to_deploy(repo: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on once the socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def deploy() -> None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).raise_for_status()
        except httpx.HTTPError as error:
            raise ServerError(f"The prod server at 127.0.0.1:{port} cannot be reached ({error}).") from error

    dev_commit = head(repo, "dev")
    with pytest.raises(ServerError) as caught:
        promote(repo, deploy=deploy, steps=STEPS, out=io.StringIO())
    message = str(caught.value)
    assert "passed its gate, but the deploy to prod did not happen" in message
    assert f"127.0.0.1:{port}" in message and "just deploy prod" in message
    assert state(repo) == ("dev", dev_commit, dev_commit, [])  # merged, back on dev, nothing left over


def test_dirty_tree_is_refused_and_nothing_changes(repo: Path) -> None:
    (repo / "flows" / "etl.py").write_text("VALUE = 3\n")
    (repo / "scratch.txt").write_text("notes\n")
    before = state(repo)
    with pytest.raises(GateFailed, match=r"working tree is not clean \(2 .*flows/etl.py.*Nothing changed"):
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=io.StringIO())
    assert state(repo) == before


def test_not_on_dev_is_refused(repo: Path) -> None:
    run_git(repo, "checkout", "--quiet", "main")
    before = state(repo)
    with pytest.raises(GateFailed, match=r"starts from the 'dev' branch, but 'main' is checked out") as caught:
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=io.StringIO())
    assert "git switch dev" in str(caught.value)
    assert state(repo) == before


def test_diverged_branches_are_refused_before_the_gate(repo: Path) -> None:
    run_git(repo, "checkout", "--quiet", "main")
    commit_file(repo, "hotfix.txt", "fixed on main\n", "hotfix on main")
    run_git(repo, "checkout", "--quiet", "dev")
    before = state(repo)
    out = io.StringIO()
    with pytest.raises(GateFailed, match="cannot be fast-forwarded") as caught:
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=out)
    assert "git merge main" in str(caught.value)
    assert state(repo) == before and out.getvalue() == ""


@pytest.mark.parametrize(
    ("path", "content", "failed"),
    [
        ("test_sample.py", PASSING_TEST + "\n\ndef test_broken():\n    assert 1 + 1 == 3\n", "tests"),
        ("flows/etl.py", '"""A flow."""\n\nimport os\n', "lint"),
    ],
    ids=["failing-test", "failing-lint"],
)
def test_failing_gate_on_dev_merges_nothing(repo: Path, path: str, content: str, failed: str) -> None:
    commit_file(repo, path, content, "break the gate")
    before = state(repo)
    out = io.StringIO()
    with pytest.raises(GateFailed, match=rf"The gate failed on dev \(nothing was merged\): {failed}\."):
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=out)
    assert state(repo) == before
    assert f"gate: FAILED ({failed})" in out.getvalue()


def test_failing_gate_on_main_puts_main_back(repo: Path) -> None:
    main_before, dev_commit = head(repo, "main"), head(repo, "dev")

    def only_fails_on_main(root: Path) -> list[str]:
        return ["main-only check failed"] if gitrepo.current_branch(root) == "main" else []

    steps = [*STEPS, Step("branch", "fails on main only", check=only_fails_on_main)]
    with pytest.raises(GateFailed, match=r"gate failed on main; main was put back at"):
        promote(repo, deploy=must_not_deploy, steps=steps, out=io.StringIO())
    assert state(repo) == ("dev", main_before, dev_commit, [])


def test_promoting_again_when_main_is_up_to_date_gates_and_deploys(repo: Path, prefect_server: RunningServer) -> None:
    # The retry after a failed deploy: main already is at dev, so promotion only gates and deploys.
    dev_commit = head(repo, "dev")
    run_git(repo, "branch", "--force", "main", "dev")
    pool = f"redeployed-{uuid.uuid4().hex[:8]}"
    result = promote(repo, deploy=lambda: create_pool(pool), steps=STEPS, out=io.StringIO())
    assert not result.moved
    assert state(repo) == ("dev", dev_commit, dev_commit, [])
    assert read_pool(pool) == pool


def test_branch_names_come_from_the_branch_mapping(tmp_path: Path) -> None:
    assert promotion_branches(tmp_path) == Branches("dev", "main")
    (tmp_path / "envs").mkdir()
    mapping = tmp_path / "envs" / "branches.toml"
    mapping.write_text('default = "dev"\n\n[branches]\nrelease = "prod"\nstaging = "dev"\n')
    assert promotion_branches(tmp_path) == Branches(dev="staging", main="release")
    mapping.write_text("[branches\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        promotion_branches(tmp_path)
