"""Bad input through the front door: `invoke ...` as a user runs it, in a temporary kit repository.

Each case asserts the exit code (README, "Exit codes"), the message and its `fix:` line, that no traceback is
shown, and that nothing changed on disk (every file under the repository and the homes it names) or, for the
cases that need a server, on the server (no flow run created). Most cases need no server; the few that do
share the session's running kit (``live_kit``).
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import REPO_ROOT, KitRepo, make_kit_repo
from live_kit import LiveKit

Setup = Callable[[KitRepo], dict[str, str]]


def _nothing(_repo: KitRepo) -> dict[str, str]:
    return {}


def _write(relative: str, text: str) -> Setup:
    def setup(repo: KitRepo) -> dict[str, str]:
        path = repo.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return {}

    return setup


def _bad_cron(repo: KitRepo) -> dict[str, str]:
    """Every cron of the copied prefect.yaml made one that does not parse, whatever the project's schedules are."""
    path = repo.root / "prefect.yaml"
    text, count = re.subn(r'(- cron: )"[^"]*"', r'\1"61 * * * *"', path.read_text())
    assert count, "the project's prefect.yaml has no schedule to break"
    path.write_text(text)
    return {}


def _remove(relative: str) -> Setup:
    def setup(repo: KitRepo) -> dict[str, str]:
        (repo.root / relative).unlink()
        return {}

    return setup


def _environ(**values: str) -> Setup:
    def setup(repo: KitRepo) -> dict[str, str]:
        return {k: v.format(root=repo.root) for k, v in values.items()}

    return setup


def _file_as_home(relative: str) -> Setup:
    def setup(repo: KitRepo) -> dict[str, str]:
        (repo.root / "notes.txt").write_text("a file, not a folder\n")
        return {"PREFECT_JULIA_HOME": str(repo.root / relative)}

    return setup


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    message: str
    setup: Setup = _nothing
    fix: str = ""  # a piece of the fix: line, when it matters
    project: bool = False
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    # unknown environments
    Case("unknown-env-server-up", ("server-up", "--env", "staging"), 2, "Unknown environment 'staging'", fix="dev, prod"),
    Case("unknown-env-env", ("env", "--env", "qa"), 2, "Unknown environment 'qa'"),
    Case("unknown-env-worker-up", ("worker-up", "--env", "test"), 2, "Unknown environment 'test'"),
    Case("unknown-env-run", ("run", "daily", "--env", "stage"), 2, "Unknown environment 'stage'"),
    Case("unknown-env-server-down", ("server-down", "--env", "Prod"), 2, "Unknown environment 'Prod'"),
    # bad ports and hosts
    Case("port-not-a-number", ("server-up", "--env", "dev"), 2, "is not a port number", _environ(PREFECT_JULIA_PORT="abc")),
    Case("port-too-big", ("server-up", "--env", "dev"), 2, "is not a port number", _environ(PREFECT_JULIA_PORT="70000")),
    Case("port-zero", ("server-up", "--env", "dev"), 2, "is not a port number", _environ(PREFECT_JULIA_PORT="0")),
    Case("port-negative", ("env", "--env", "dev"), 2, "is not a port number", _write("envs/dev.local.env", "PREFECT_JULIA_PORT=-4\n")),
    Case("port-held", ("server-up", "--env", "dev"), 3, "is held by", fix="free port"),  # setup binds it: see the test
    Case("host-unknown", ("server-up", "--env", "dev"), 3, "Cannot listen on 999.1.1.1", _environ(PREFECT_JULIA_HOST="999.1.1.1")),
    # impossible homes
    Case("home-in-proc", ("server-up", "--env", "dev"), 2, "Cannot use /proc/x", _environ(PREFECT_JULIA_HOME="/proc/x/home")),
    Case("home-is-a-file", ("server-up", "--env", "dev"), 2, "File exists", _file_as_home("notes.txt"), fix="A file stands"),
    Case("home-under-a-file", ("server-up", "--env", "dev"), 2, "Not a directory", _file_as_home("notes.txt/home")),
    Case("health-timeout-text", ("server-up", "--env", "dev"), 2, "PREFECT_JULIA_HEALTH_TIMEOUT", _environ(PREFECT_JULIA_HEALTH_TIMEOUT="soon")),
    Case("worker-limit-text", ("worker-up", "--env", "dev"), 2, "PREFECT_JULIA_WORKER_LIMIT", _environ(PREFECT_JULIA_WORKER_LIMIT="many")),
    Case("flow-start-unknown", ("worker-up", "--env", "dev"), 2, "PREFECT_JULIA_FLOW_START='vfork'", _environ(PREFECT_JULIA_FLOW_START="vfork"), fix="fork or spawn"),
    Case("auth-not-a-switch", ("server-up", "--env", "dev"), 2, "PREFECT_JULIA_AUTH='maybe'", _environ(PREFECT_JULIA_AUTH="maybe"), fix="on or off"),
    # malformed settings, toml and yaml files
    Case("env-file-bare-name", ("env", "--env", "dev"), 2, "dev.env:1", _write("envs/dev.env", "PREFECT_JULIA_PORT\n"), fix="NAME=value"),
    Case("local-env-garbage", ("server-up", "--env", "dev"), 2, "dev.local.env", _write("envs/dev.local.env", "PORT=1\n'oops\n")),
    Case("branches-not-toml", ("server-up",), 2, "is not valid TOML", _write("envs/branches.toml", "default = \n")),
    Case("branches-unknown-env", ("server-up",), 2, "unknown environment 'qa'", _write("envs/branches.toml", 'default = "qa"\n')),
    Case("branches-missing", ("server-up",), 2, "is missing", _remove("envs/branches.toml"), fix='per_branch = true'),
    Case("prefect-yaml-not-yaml", ("deploy", "--env", "dev"), 2, "is not valid YAML", _write("prefect.yaml", "deployments: [\n  - name: x\n"), project=True),
    Case("blocks-not-toml", ("blocks", "--env", "dev"), 2, "not valid TOML", _write("envs/dev.blocks.toml", "x = [\n")),
    Case("profiles-not-toml", ("profile-sync",), 2, "profiles.toml", _write("profiles/profiles.toml", "[profiles\n")),
    Case("deployment-without-entrypoint", ("deploy", "--env", "dev"), 2, "entrypoint", _write("prefect.yaml", "deployments:\n  - name: x\n"), project=True),
    Case("deployment-bad-cron", ("deploy", "--env", "dev"), 2, "is invalid", _bad_cron, project=True),
    Case("blocks-secret-unset", ("blocks", "--env", "dev"), 2, "Secret value not set", fix="DEMO_API_TOKEN", project=True),
    # bad flags and values on the command line
    Case("flag-not-a-number", ("server-logs", "--env", "dev", "--lines=abc"), 2, "--lines expects a whole number"),
    Case("timeout-not-a-number", ("run", "daily", "--timeout=soon"), 2, "--timeout expects a number"),
    Case("flag-unknown", ("server-up", "dev", "--bogus"), 2, "has no option --bogus", fix="invoke --help server-up"),
    Case("word-not-taken", ("gate", "dev"), 2, "`invoke gate` takes no word 'dev'", fix="invoke --help gate"),
    # bad parameters, checked before any server is asked
    Case("param-without-value", ("run", "daily", "--env", "dev", "--param", "novalue"), 2, "is not key=value"),
    Case("param-without-name", ("run", "daily", "--env", "dev", "--param", "=2026-01-01"), 2, "is not key=value"),
    Case("param-twice", ("run", "daily", "--env", "dev", "--param", "a=1", "--param", "a=2"), 2, "given twice"),
    Case("run-without-deployment", ("run", "dev"), 2, "Which deployment? `invoke run` needs its name. Declared for dev: daily", fix="invoke run daily dev", project=True),
    Case("env-word-unknown", ("server-up", "staging"), 2, "Unknown environment 'staging'", fix="dev, prod"),
    Case("env-given-twice", ("deploy", "dev", "--env", "prod"), 2, "--env is given twice: dev and --env prod", project=True),
    # a server that is down
    Case("run-server-down", ("run", "daily", "--env", "dev"), 3, "is not reachable", fix="invoke server-up dev"),
    Case("worker-up-server-down", ("worker-up", "--env", "dev"), 3, "is not running", fix="invoke server-up dev"),
    Case("deploy-server-down", ("deploy", "--env", "dev"), 3, "not reachable", project=True),
    Case("blocks-server-down", ("blocks", "--env", "dev"), 3, "not reachable", _environ(DEMO_API_TOKEN="t0k3n"), project=True),
]  # fmt: skip


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``roots`` (but .git): size and content hash, to compare before/after."""
    found: dict[str, tuple[int, str]] = {}
    for root in roots:
        if root.is_file():
            found[str(root)] = (root.stat().st_size, hashlib.sha256(root.read_bytes()).hexdigest())
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if ".git" in path.relative_to(root).parts:
                continue
            if path.is_file():
                found[str(path)] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                found[str(path)] = (-1, "dir")
    return found


def assert_clean_failure(done: object, code: int, message: str, fix: str = "") -> None:
    out = done.stdout + done.stderr  # type: ignore[attr-defined]
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}:\n{out}"  # type: ignore[attr-defined]
    assert message in out, out
    assert "fix:" in done.stderr, out  # type: ignore[attr-defined]
    if fix:
        assert fix in out, out
    assert "Traceback" not in out, out
    assert "This is a bug in the kit" not in out, out  # every case here is an expected failure with its own message


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_without_a_server(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=case.project)
    extra = case.setup(repo)
    if case.id == "port-held":
        extra["PREFECT_JULIA_PORT"] = str(request.getfixturevalue("held_port"))
    before = snapshot(tmp_path)
    done = repo.invoke(*case.args, timeout=240, **extra)
    assert_clean_failure(done, case.code, case.message, case.fix)
    assert snapshot(tmp_path) == before, "a refused command changed files"


def test_at_least_thirty_bad_inputs() -> None:
    assert len(CASES) + len(SERVER_CASES) >= 30


def test_readme_lists_every_exit_code() -> None:
    from prefect_julia.cli.edge import EXIT_CODES

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit codes") :]
    for code, _meaning in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", section, re.MULTILINE), f"exit code {code} is not in the README"


# --- cases that need a server: the session's running kit ---------------------------------------------------

TODAY = date.today()
SERVER_CASES = [
    Case("deployment-unknown", ("run", "nope"), 2, "'nope' is not deployed", fix="quick/quick"),
    Case("param-unknown-name", ("run", "quick", "--param", "colour=red"), 2, "has no parameter 'colour'", fix="count: integer"),
    Case("param-not-an-integer", ("run", "quick", "--param", "count=three"), 2, "not a valid integer", fix="label: string"),
    Case("param-not-a-number", ("run", "quick", "--param", "ratio=half"), 2, "not a valid number"),
    Case("rundate-no-dashes", ("run", "quick", "--param", "rundate=20261121"), 2, "not a real date", fix="2026-11-21"),
    Case("rundate-impossible", ("run", "quick", "--param", "rundate=2026-02-30"), 2, "not a real date"),
    Case("rundate-future", ("run", "quick", "--param", f"rundate={TODAY + timedelta(days=30)}"), 2, "in the future", fix="future-rundates"),
]  # fmt: skip


def _flow_run_count(kit: LiveKit) -> int:
    from prefect_julia.kit.access.prefect_api import client_for

    with client_for(kit.env) as client:
        return len(client.read_flow_runs(limit=200))


@pytest.mark.server
@pytest.mark.parametrize("case", SERVER_CASES, ids=lambda c: c.id)
def test_bad_input_on_a_running_server(case: Case, live_kit: LiveKit) -> None:
    runs_before = _flow_run_count(live_kit)
    watched = [live_kit.repo.root / "flows", live_kit.repo.root / "envs", live_kit.repo.root / "prefect.yaml"]
    files_before = snapshot(*watched, live_kit.env.data_root)
    done = live_kit.invoke(*case.args, "--env", "dev")
    assert_clean_failure(done, case.code, case.message, case.fix)
    assert _flow_run_count(live_kit) == runs_before, "a refused run reached the server"
    assert snapshot(*watched, live_kit.env.data_root) == files_before


@pytest.mark.server
@pytest.mark.julia
def test_a_missing_job_fails_the_run_with_its_name(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    done = live_kit.invoke("run", "nojob", "--env", "dev")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "no_such_job" in done.stderr and "fix:" in done.stderr and "Traceback" not in done.stderr, out


@pytest.mark.server
@pytest.mark.julia
def test_a_missing_julia_fails_the_run_saying_so(live_kit: LiveKit) -> None:
    """A worker whose julia is missing (PREFECT_JULIA_BIN points nowhere): the run fails with how to fix it."""
    assert live_kit.invoke("worker-down", "--env", "dev", "--cancel").returncode == 0
    try:
        up = live_kit.repo.invoke("worker-up", "--env", "dev", timeout=300, PREFECT_JULIA_BIN="/nonexistent/julia")
        assert up.returncode == 0, up.stdout + up.stderr
        done = live_kit.invoke("run", "sleepy", "--env", "dev", "--param", "seconds=1")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "/nonexistent/julia" in done.stderr and "is not an executable julia" in done.stderr, done.stderr
        assert "fix:" in done.stderr and "Traceback" not in done.stderr
    finally:
        live_kit.invoke("worker-down", "--env", "dev", "--cancel")
        live_kit.worker_up()
