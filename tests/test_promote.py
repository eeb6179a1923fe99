"""Promotion from the branch you are on to main, on real repositories, with small real gate steps.

The gate steps here are a real ruff and a real pytest run on the temporary repository (the project's full
gate would recurse into this very suite). The deploy is a callable, as in ``tasks.py``: in these tests it
creates a work pool on a real server (a real write to prod made only after the gate), standing in for the
full deploy, which is slow; the last test promotes a kit copy end to end with `invoke promote` and a real
prod server and deploy.
"""

from __future__ import annotations

import io
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import REPO_ROOT, RunningServer, make_kit_repo
from gitrepos import commit_file, head, make_repo, run_git
from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError, GateFailed, ServerError
from prefect_julia.gates import passes
from prefect_julia.gates.gate import Step
from prefect_julia.gates.promote import Branches, check_prod, promote, promotion_branches

PY = sys.executable
PASSING_TEST = "def test_sum():\n    assert 1 + 1 == 2\n"
STEPS = [
    Step("lint", "ruff", command=[PY, "-m", "ruff", "check", "--no-cache", "."]),
    Step("tests", "pytest", command=[PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"]),
]
IGNORED = ".prefect/\nenvs/*.local.env\ndata/\nprofiles/profiles.toml\n__pycache__/\njulia/Manifest.toml\n"


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


@pytest.fixture(params=["feature/x", "dev"])
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """main with one commit; a branch (feature/x, or dev) one commit ahead, checked out and clean."""
    root = make_repo(tmp_path / "repo")
    commit_file(root, ".gitignore", ".pytest_cache/\n__pycache__/\n", "ignore caches")
    commit_file(root, "test_sample.py", PASSING_TEST, "a passing test")
    run_git(root, "checkout", "--quiet", "-b", request.param)
    commit_file(root, "flows/etl.py", '"""A flow."""\n\nVALUE = 2\n', "work on the branch")
    return root


def state(root: Path) -> tuple[str | None, str, str, list[str]]:
    return gitrepo.current_branch(root), head(root, "main"), head(root, "HEAD"), gitrepo.changed_paths(root)


def test_promotion_fast_forwards_main_to_the_branch_with_one_gate(repo: Path, prefect_server: RunningServer) -> None:
    pool = f"promoted-{uuid.uuid4().hex[:8]}"
    branch, main_before, commit = gitrepo.current_branch(repo), head(repo, "main"), head(repo)
    out = io.StringIO()
    result = promote(repo, deploy=lambda: create_pool(pool), steps=STEPS, out=out)

    assert (result.branch, result.main_before, result.main_after, result.moved) == (branch, main_before, commit, True)
    assert result.verdict.report is not None and result.verdict.report.ok
    assert state(repo) == (branch, commit, commit, [])  # main holds the branch's commit; still on the branch
    assert read_pool(pool) == pool
    text = out.getvalue()
    assert text.count("gate: passed") == 1 and "is deployed to prod" in text


def test_a_tree_that_passed_is_not_gated_again(repo: Path) -> None:
    ran: list[str] = []
    steps = [Step("count", "counts its runs", check=lambda root: ran.append("ran") or [])]
    deployed: list[str] = []
    promote(repo, deploy=lambda: deployed.append("prod"), steps=steps, out=io.StringIO())
    out = io.StringIO()
    again = promote(repo, deploy=lambda: deployed.append("prod"), steps=steps, out=out)
    assert ran == ["ran"] and deployed == ["prod", "prod"] and not again.moved
    tree = gitrepo.git(repo, "rev-parse", "HEAD^{tree}")
    assert f"main's tree {tree[:10]} passed the gate at " in out.getvalue() and "not gated again" in out.getvalue()
    promote(repo, deploy=lambda: None, steps=steps, force=True, out=io.StringIO())
    assert ran == ["ran", "ran"]


def test_prod_down_is_refused_before_the_gate_naming_prod(repo: Path, tmp_path: Path) -> None:
    kit = make_kit_repo(tmp_path / "kit", git=False)  # its prod server was never started
    prod = kit.environment("prod")
    before = state(repo)
    out = io.StringIO()
    with pytest.raises(ServerError, match=r"prod's server at .* does not answer") as caught:
        promote(repo, deploy=must_not_deploy, check_prod=lambda: check_prod(kit.root, prod), steps=STEPS, out=out)
    assert caught.value.exit_code == 3 and "invoke server-up prod" in str(caught.value)
    assert state(repo) == before and "==> " not in out.getvalue()  # no gate step ran


def test_prod_down_at_deploy_time_keeps_main_moved_and_says_how_to_deploy(repo: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on once the socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def deploy() -> None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).raise_for_status()
        except httpx.HTTPError as error:
            raise ServerError(f"The prod server at 127.0.0.1:{port} cannot be reached ({error}).") from error

    branch, commit = gitrepo.current_branch(repo), head(repo)
    with pytest.raises(ServerError) as caught:
        promote(repo, deploy=deploy, steps=STEPS, out=io.StringIO())
    message = str(caught.value)
    assert "its tree passed the gate, but the deploy to prod did not happen" in message
    assert f"127.0.0.1:{port}" in message and "invoke deploy prod" in message
    assert state(repo) == (branch, commit, commit, [])


def test_dirty_tree_is_refused_and_nothing_changes(repo: Path) -> None:
    (repo / "flows" / "etl.py").write_text("VALUE = 3\n")
    (repo / "scratch.txt").write_text("notes\n")
    before = state(repo)
    with pytest.raises(GateFailed, match=r"working tree is not clean \(2 .*flows/etl.py.*Nothing changed"):
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=io.StringIO())
    assert state(repo) == before


@pytest.mark.parametrize("where", ["main", "--detach"])
def test_promotion_from_main_or_a_detached_head_is_refused(repo: Path, where: str) -> None:
    run_git(repo, "checkout", "--quiet", where)
    before = state(repo)
    with pytest.raises(GateFailed, match=r"fast-forwards 'main' to the branch you are on, but .* is checked out"):
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=io.StringIO())
    assert state(repo) == before


def test_a_main_that_is_not_an_ancestor_is_refused_with_the_rebase(repo: Path) -> None:
    branch = gitrepo.current_branch(repo)
    assert branch is not None
    run_git(repo, "checkout", "--quiet", "main")
    commit_file(repo, "hotfix.txt", "fixed on main\n", "hotfix on main")
    run_git(repo, "checkout", "--quiet", branch)
    before = state(repo)
    out = io.StringIO()
    with pytest.raises(GateFailed, match="cannot be fast-forwarded") as caught:
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=out)
    assert "git rebase main" in str(caught.value)
    assert state(repo) == before and out.getvalue() == ""


@pytest.mark.parametrize(
    ("path", "content", "failed"),
    [
        ("test_sample.py", PASSING_TEST + "\n\ndef test_broken():\n    assert 1 + 1 == 3\n", "tests"),
        ("flows/etl.py", '"""A flow."""\n\nimport os\n', "lint"),
    ],
    ids=["failing-test", "failing-lint"],
)
def test_a_failing_gate_moves_nothing(repo: Path, path: str, content: str, failed: str) -> None:
    commit_file(repo, path, content, "break the gate")
    before = state(repo)
    out = io.StringIO()
    with pytest.raises(GateFailed, match=rf"The gate failed on .* \(main was not moved\): {failed}\."):
        promote(repo, deploy=must_not_deploy, steps=STEPS, out=out)
    assert state(repo) == before
    assert f"gate: FAILED ({failed})" in out.getvalue()
    assert ("==> tests: not run" in out.getvalue()) == (failed == "lint")  # the first failure ends the gate
    key = passes.tree_key(repo, gitrepo.clean_env())
    assert key is not None and passes.find_pass(repo, key) is None


def test_branch_names_come_from_the_branch_mapping(tmp_path: Path) -> None:
    assert promotion_branches(tmp_path) == Branches("dev", "main")
    (tmp_path / "envs").mkdir()
    for declared in ("dev", "prod"):  # environments are declared by their files
        (tmp_path / "envs" / f"{declared}.env").write_text("")
    mapping = tmp_path / "envs" / "branches.toml"
    mapping.write_text('default = "dev"\n\n[branches]\nrelease = "prod"\nstaging = "dev"\n')
    assert promotion_branches(tmp_path) == Branches(dev="staging", main="release")
    mapping.write_text("[branches\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        promotion_branches(tmp_path)


def test_invoke_promote_from_a_feature_branch_end_to_end(tmp_path: Path) -> None:
    """`invoke promote` in a kit copy: refused with prod down, then with prod's blocks missing, then it promotes
    and deploys to a real prod server. The copy's tree is recorded as passed first (its own full gate would
    need the project's tools and suite), so this also shows a passed tree is not gated again."""
    kit = make_kit_repo(tmp_path / "repo", branch="feature/x", project=True)
    (kit.root / ".gitignore").write_text(IGNORED)
    automations = "envs/prod.automations.toml"  # prod's notifications: their webhook blocks must be on prod
    (kit.root / automations).write_bytes((REPO_ROOT / automations).read_bytes())
    kit.git("add", "-A")
    kit.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "the project")
    kit.git("branch", "main", "HEAD~1")
    commit = kit.git("rev-parse", "HEAD").strip()
    key = passes.tree_key(kit.root, kit.environ())
    assert key is not None
    passes.record_pass(kit.root, key)
    secrets = {"DEMO_API_TOKEN": "t0ken", "ONCALL_WEBHOOK_URL": "http://127.0.0.1:9/hook",
               "ONCALL_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack"}  # fmt: skip

    down = kit.invoke("promote", **secrets)
    assert down.returncode == 3, down.stdout + down.stderr
    assert "prod's server at" in down.stderr and "does not answer" in down.stderr
    assert "not gated again" not in down.stdout  # refused before the gate
    try:
        kit.invoke("server-up", "prod", check=True, **secrets)
        unset = {k: v for k, v in secrets.items() if k != "ONCALL_SLACK_WEBHOOK_URL"}
        no_blocks = kit.invoke("promote", **unset)  # a webhook prod's notifications use: not on prod, no URL here
        assert no_blocks.returncode == 2, no_blocks.stdout + no_blocks.stderr
        assert "custom-webhook/oncall-slack (from ONCALL_SLACK_WEBHOOK_URL)" in no_blocks.stderr, no_blocks.stderr
        assert kit.git("rev-parse", "main").strip() != commit
        done = kit.invoke("promote", timeout=600, **secrets)  # the deploy creates the blocks, then the rest
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"main's tree {key.tree[:10]} passed the gate at " in done.stdout
        assert "deployed  " in done.stdout and "promoted feature/x: main" in done.stdout
        assert "created    block custom-webhook/oncall-slack" in done.stdout
        assert kit.git("rev-parse", "main").strip() == commit
        assert kit.git("symbolic-ref", "--short", "HEAD").strip() == "feature/x"
    finally:
        kit.invoke("server-down", "prod", "--cancel")
