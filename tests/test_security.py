"""Closed servers and secrets that stay put: auth, CSRF, CORS, file modes, the Julia allow-list and scrubbing."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import REPO_ROOT, KitRepo, make_kit_repo
from harness import StandInHandler, serving
from kit_flows import add_flow, julia_flow
from live_kit import LiveKit
from prefect_julia.core.prefect_http import ApiClient, ApiRefused
from prefect_julia.core.secrets import is_secret_name, secret_values
from prefect_julia.kit.access import security
from prefect_julia.kit.environment.environments import resolve_environment
from prefect_julia.kit.server import servers
from prefect_julia.runtime.bridge import JuliaFailed, find_julia, run_julia
from prefect_julia.runtime.secrets import PendingScrubber, Scrubber, allowed_env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DEMO_API_TOKEN", True),
        ("PREFECT_API_KEY", True),
        ("PREFECT_API_AUTH_STRING", True),
        ("db_password", True),
        ("SMTP_PASSWD", True),
        ("MYSQL_PWD", True),
        ("GCP_CREDENTIALS", True),
        ("SSH_PRIVATE", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("PREFECT_JULIA_PORT", False),
        ("PREFECT_JULIA_AUTH", False),
        ("PWD", False),
        ("PATH", False),
    ],
)
def test_one_secret_name_rule(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_secret_values_include_url_passwords_and_the_auth_password() -> None:
    values = secret_values(
        {
            "DATABASE_URL": "postgresql://app:" + "s3cr3t-pw@db:5432/x",
            "PREFECT_API_AUTH_STRING": "prefect:abcdef123",
            "PATH": "/usr/bin",
            "SHORT_KEY": "abc",
        }
    )
    assert values == {"s3cr3t-pw", "prefect:abcdef123", "abcdef123"}


def test_scrubber_hides_plain_json_escaped_and_basic_auth_forms() -> None:
    scrub = Scrubber(['pa"ss-word', "user:hunter22", "ab"])
    assert scrub('say pa"ss-word') == "say ********"
    assert scrub(json.dumps({"message": 'pa"ss-word'})) == '{"message": "********"}'
    assert "hunter22" not in scrub("Authorization: Basic dXNlcjpodW50ZXIyMg==")
    assert scrub("ab stays: too short to be told from ordinary text").startswith("ab stays")


class _SlowSecrets(StandInHandler):
    """A stand-in server whose secret block arrives late (a real one cannot be slowed on demand)."""

    def do_GET(self) -> None:
        self.answer(422, {"detail": "CSRF protection is disabled."})

    def do_POST(self) -> None:
        self.read_body()
        if self.path.startswith("/api/block_documents/filter"):
            time.sleep(0.5)
            self.answer(200, [{"block_type": {"slug": "secret"}, "data": {"value": "late-s3cr3t-value"}}])
        else:
            self.answer(200, [])


def test_a_pending_scrubber_waits_for_the_servers_secrets() -> None:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _SlowSecrets)) as api_url:
        scrub = PendingScrubber({"DEMO_API_TOKEN": "env-s3cr3t-value"}, api_url)
        started = time.monotonic()
        assert scrub("first line: late-s3cr3t-value env-s3cr3t-value") == "first line: ******** ********"
        assert time.monotonic() - started >= 0.3  # it waited for the server's answer instead of going without


def test_julia_env_is_an_allow_list() -> None:
    env = allowed_env(
        {
            "PATH": "/bin",
            "JULIA_DEPOT_PATH": "/d",
            "LC_ALL": "C",
            "DEMO_API_TOKEN": "x" * 10,
            "AWS_SECRET_ACCESS_KEY": "y" * 10,
            "RANDOM_SETTING": "z",
            "PREFECT_API_AUTH_STRING": "prefect:pw",
            "PREFECT_JULIA_PASS_ENV": "RANDOM_SETTING, ",
        }
    )
    assert set(env) == {"PATH", "JULIA_DEPOT_PATH", "LC_ALL", "RANDOM_SETTING", "PREFECT_API_AUTH_STRING"}


@pytest.mark.julia
def test_julia_job_gets_no_undeclared_secret_and_its_output_is_scrubbed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real julia: the undeclared secret is absent from its ENV; a declared one passes, and is scrubbed."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "Project.toml").write_text('name = "Leak"\n')
    (jobs / "leak.jl").write_text(
        'println("undeclared: ", haskey(ENV, "UNDECLARED_TOKEN"))\n'
        'println("declared: ", ENV["PASSED_TOKEN"])\n'
        '@warn "warned $(ENV["PASSED_TOKEN"])"\n'
        'error("died with $(ENV["PASSED_TOKEN"])")\n'
    )
    passed, undeclared = secrets.token_hex(8), secrets.token_hex(8)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "UNDECLARED_TOKEN": undeclared,
        "PASSED_TOKEN": passed,
        "PREFECT_JULIA_PASS_ENV": "PASSED_TOKEN",
    }
    with caplog.at_level(logging.DEBUG, logger="prefect_julia.julia"), pytest.raises(JuliaFailed) as raised:
        run_julia("leak", env=env, project=tmp_path, timeout=120)
    records = [record.getMessage() for record in caplog.records]
    text = "\n".join(records) + str(raised.value)
    assert "undeclared: false" in text
    assert "declared: ********" in text and "died with ********" in str(raised.value)
    assert passed not in text and undeclared not in text


def test_world_readable_local_env_is_tightened_and_world_writable_refused(kit_repo: KitRepo) -> None:
    local = kit_repo.root / "envs" / "dev.local.env"
    os.chmod(local, 0o644)
    shown = kit_repo.invoke("env", "--env", "dev")
    assert shown.returncode == 0 and "envs/dev.local.env was readable by other users" in shown.stderr
    assert _mode(local) == 0o600
    os.chmod(local, 0o666)
    refused = kit_repo.invoke("env", "--env", "dev")
    assert refused.returncode == 2, refused.stderr
    assert "envs/dev.local.env may be changed by other users" in refused.stderr and "fix: " in refused.stderr
    assert "Traceback" not in refused.stderr and _mode(local) == 0o666


def test_malformed_local_line_names_the_setting_never_the_value(kit_repo: KitRepo) -> None:
    local = kit_repo.root / "envs" / "dev.local.env"
    local.write_text("OK=1\nDB_PASSWORD='unclosed-s3cret-value\n")
    os.chmod(local, 0o600)
    done = kit_repo.invoke("env", "--env", "dev")
    assert done.returncode == 2
    assert "dev.local.env:2" in done.stderr and "DB_PASSWORD" in done.stderr
    assert "unclosed-s3cret-value" not in done.stderr + done.stdout


def test_non_loopback_host_without_auth_is_refused_before_anything_starts(kit_repo: KitRepo) -> None:
    """Auth is on by default; a dev that turned it off may not listen beyond loopback."""
    done = kit_repo.invoke("server-up", "--env", "dev", PREFECT_JULIA_HOST="0.0.0.0", PREFECT_JULIA_AUTH="off")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "PREFECT_JULIA_HOST=0.0.0.0" in done.stderr and "fix: Set PREFECT_JULIA_AUTH=on" in done.stderr
    assert "Traceback" not in done.stderr
    env = resolve_environment("dev", kit_repo.root, kit_repo.environ(PREFECT_JULIA_HOST="0.0.0.0"))
    assert not env.files.server_pid.exists()
    assert "PREFECT_API_AUTH_STRING" not in (kit_repo.root / "envs" / "dev.local.env").read_text()


def test_auth_string_is_generated_once_into_a_private_local_file(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", branch="main")
    prod = resolve_environment("prod", repo.root, repo.environ())
    assert security.auth_enabled(prod) and security.auth_enabled(resolve_environment("dev", repo.root, {}))
    opened = resolve_environment("dev", repo.root, {"PREFECT_JULIA_AUTH": "off"})
    assert not security.auth_enabled(opened) and "any local user" in security.open_warning(opened)
    assert security.open_warning(prod) == ""
    with pytest.raises(Exception, match="auth on but no PREFECT_API_AUTH_STRING"):
        security.check_server_settings(prod)
    first = security.ensure_auth_string(prod, repo.environ())
    local = repo.root / "envs" / "prod.local.env"
    assert _mode(local) == 0o600
    value = first.get("PREFECT_API_AUTH_STRING")
    assert value and value.startswith("prefect:") and len(value) > 30
    assert security.ensure_auth_string(first, repo.environ()).get("PREFECT_API_AUTH_STRING") == value
    assert local.read_text().count("PREFECT_API_AUTH_STRING=") == 1
    shown = repo.invoke("env", "--env", "prod")
    assert value not in shown.stdout and "PREFECT_API_AUTH_STRING" in shown.stdout


LEAK_JOB = """\
using PrefectInterfaces
token = secretvalue(PrefectBlock("secret/demo-api-token"))
println("blocks listed: ", length(ls()))
println("stdout says ", token)
@info "info says $(token)"
println("undeclared visible: ", haskey(ENV, "LEAK_TEST_PASSWORD"))
println("declared visible: ", haskey(ENV, "LEAK_DECLARED"))
error("dying with $(token)")
"""

LEAK_FLOW = """\
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="leak")
def leak() -> None:
    julia_job("leak", {}, timeout=300)
"""

LEAK_DEPLOYMENT = """\
name: leak
prefect-version: 3.8.8
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{ $PREFECT_JULIA_CODE_DIR }}"
deployments:
  - name: leak
    entrypoint: flows/leak.py:leak
    work_pool:
      name: "{{ $PREFECT_JULIA_WORK_POOL }}"
"""

LEAK_BLOCKS = """\
[[blocks]]
type = "secret"
name = "demo-api-token"
secret_from = "DEMO_API_TOKEN"

[variables]
demo_min_rows = 10
"""


def _raw(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.server
@pytest.mark.julia
def test_prod_server_is_closed_and_secrets_stay_out_of_every_output(tmp_path: Path) -> None:
    """One prod server with auth: probes, blocks, deploy, worker, run, plain CLI, Julia; then bad credentials."""
    repo = make_kit_repo(tmp_path / "repo with space", branch="main", project=True)
    token, undeclared = secrets.token_hex(16), secrets.token_hex(16)
    local = repo.root / "envs" / "prod.local.env"
    local.write_text(
        f"PREFECT_JULIA_PORT={repo.ports['prod']}\nDEMO_API_TOKEN={token}\nLEAK_DECLARED=yes\n"
        "PREFECT_JULIA_PASS_ENV=LEAK_DECLARED\nPREFECT_JULIA_CODE_SOURCE=tree\nPREFECT_JULIA_HEALTH_TIMEOUT=300\n"
    )
    (repo.root / "julia" / "jobs" / "leak.jl").write_text(LEAK_JOB)
    (repo.root / "flows" / "leak.py").write_text(LEAK_FLOW)
    (repo.root / "prefect.yaml").write_text(LEAK_DEPLOYMENT)
    (repo.root / "envs" / "prod.blocks.toml").write_text(LEAK_BLOCKS)
    (repo.root / "envs" / "prod.automations.toml").unlink(missing_ok=True)
    extra = {"LEAK_TEST_PASSWORD": undeclared}
    try:
        up = repo.invoke("server-up", "--env", "prod", timeout=300, **extra)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "UI login" in up.stdout
        prod = resolve_environment("prod", repo.root, repo.environ())
        auth = prod.get("PREFECT_API_AUTH_STRING")
        assert auth and auth not in up.stdout + up.stderr
        assert _mode(local) == 0o600 and _mode(prod.home) == 0o700 and _mode(prod.files.server_log) == 0o600

        for step in (("blocks", "--env", "prod"), ("deploy", "--env", "prod"), ("worker-up", "--env", "prod")):
            done = repo.invoke(*step, timeout=300, **extra)
            assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        assert _mode(prod.files.worker_log) == 0o600

        # From another process without credentials: nothing but the health probe.
        secret_url = f"{prod.api_url}/block_types/slug/secret/block_documents/name/demo-api-token?include_secrets=true"
        assert _raw(secret_url)[0] == 401
        assert servers.is_healthy(prod.api_url)
        with pytest.raises(ApiRefused):
            ApiClient(prod.api_url).request("POST", "/block_documents/filter", {"limit": 1})
        # A web page elsewhere gets no CORS grant; the server's own UI does.
        preflight = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        status, headers = _raw(f"{prod.api_url}/block_documents/filter", "OPTIONS", preflight)
        assert status >= 400 and headers.get("access-control-allow-origin") in (None, "")
        own = {"Origin": prod.ui_url, "Access-Control-Request-Method": "POST"}
        assert (
            _raw(f"{prod.api_url}/block_documents/filter", "OPTIONS", own)[1].get("access-control-allow-origin")
            == prod.ui_url
        )
        # With credentials, a change without a CSRF token is refused; the client that fetches one gets through.
        basic = ApiClient(prod.api_url, auth_string=auth).headers()
        request = urllib.request.Request(
            f"{prod.api_url}/block_documents/filter", data=b"{}", headers=basic | {"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as no_csrf:
            urllib.request.urlopen(request, timeout=10)
        assert no_csrf.value.code == 403
        assert ApiClient(prod.api_url, auth_string=auth).request("POST", "/block_documents/filter", {"limit": 5})

        # The plain prefect CLI, through `env --shell` and through the synced profile.
        python = shlex.quote(sys.executable)  # a checkout path may hold a space
        shell = f'eval "$({python} -m invoke env --shell --env prod)" && {python} -m prefect block ls'
        cli = subprocess.run(
            ["bash", "-c", shell],
            cwd=repo.root,
            env=repo.environ(COLUMNS="250"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0 and "demo-api-token" in cli.stdout, cli.stdout + cli.stderr
        profile = subprocess.run(
            [sys.executable, "-m", "prefect", "--profile", "prod", "variable", "ls"],
            cwd=repo.root,
            env=repo.environ(PREFECT_PROFILES_PATH=str(repo.root / "profiles" / "profiles.toml"), COLUMNS="250"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert profile.returncode == 0 and "demo_min_rows" in profile.stdout, profile.stdout + profile.stderr

        run = repo.invoke("run", "leak", "--env", "prod", "--timeout", "300", timeout=400, **extra)
        assert run.returncode == 1, run.stdout + run.stderr
        found = re.search(r"flow-run/([0-9a-f-]{36})", run.stdout + run.stderr)
        assert found, run.stdout + run.stderr
        client = ApiClient(prod.api_url, auth_string=auth, timeout=30)
        flow_run = client.request("GET", f"/flow_runs/{found.group(1)}")
        logs = client.request("POST", "/logs/filter", {"limit": 200, "sort": "TIMESTAMP_ASC"})
        messages = "\n".join(str(entry["message"]) for entry in logs)
        state_message = str(flow_run["state"]["message"])
        worker_log = (prod.files.worker_log).read_text(encoding="utf-8", errors="replace")
        assert "blocks listed: " in messages  # Julia's POST went through auth and CSRF
        assert "stdout says ********" in messages and "info says ********" in messages
        assert "dying with ********" in state_message + messages
        assert "undeclared visible: false" in messages and "declared visible: true" in messages
        for where, text in {
            "run logs": messages,
            "state message": state_message,
            "invoke run output": run.stdout + run.stderr,
            "worker.log": worker_log,
        }.items():
            assert token not in text, f"the secret leaked into the {where}"
            assert auth not in text and auth.split(":", 1)[1] not in text, f"the auth string leaked into the {where}"

        # A wrong auth string, and auth on the server but none in the client: exit 2 with the fix, no traceback.
        wrong = repo.invoke("blocks", "--env", "prod", PREFECT_API_AUTH_STRING="prefect:wrong-guess-123")
        assert wrong.returncode == 2, wrong.stdout + wrong.stderr
        assert "refused PREFECT_API_AUTH_STRING from process environment" in wrong.stderr
        assert "fix: " in wrong.stderr and "Traceback" not in wrong.stderr and "wrong-guess-123" not in wrong.stderr
        local.write_text(local.read_text().replace(f"PREFECT_API_AUTH_STRING={auth}", ""))
        missing = repo.invoke("worker-status")
        assert missing.returncode == 2, missing.stdout + missing.stderr
        assert "requires auth" in missing.stderr and "fix: " in missing.stderr and "Traceback" not in missing.stderr
    finally:
        prod = resolve_environment("prod", repo.root, repo.environ())
        servers.server_down(prod)


@pytest.mark.julia
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_data_files_follow_the_umask_in_python_and_julia(tmp_path: Path, mask: int) -> None:
    from prefect_julia.core.files import write_atomic

    julia = find_julia(os.environ)
    previous = os.umask(mask)
    try:
        write_atomic(tmp_path / "py.csv", b"a\n")
        subprocess.run(
            [julia, f"--project={REPO_ROOT / 'julia'}", "--startup-file=no", "-e",
             "using PrefectInterfaces; PrefectInterfaces.atomicwrite(ARGS[1], \"a\\n\")", str(tmp_path / "jl.csv")],
            check=True, timeout=300, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        )  # fmt: skip
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "py.csv") == 0o666 & ~mask
    assert _mode(tmp_path / "jl.csv") == 0o666 & ~mask


PEM_JOB = """\
using PrefectInterfaces
key = secretvalue(PrefectBlock("secret/pem-key"))
println(key)
println(stderr, key)
@info "the key is" key
@info key
error("cannot use the key:\\n" * key)
"""


@pytest.mark.server
@pytest.mark.julia
def test_a_pem_key_printed_line_by_line_leaves_no_line_anywhere(live_kit: LiveKit) -> None:
    """A 4-line PEM in a Secret block, printed by a Julia job to stdout, stderr, a log record and an error:
    no line of it in `invoke run`'s output, the run's logs, its state message, worker.log or prefect.db."""
    from prefect.blocks.system import Secret

    from prefect_julia.kit.access.prefect_api import settings_for

    body = [base64.b64encode(os.urandom(48)).decode() for _ in range(2)]
    key = "\n".join(["-----BEGIN " + "PRIVATE KEY-----", *body, "-----END " + "PRIVATE KEY-----"])
    env = live_kit.repo.environment("dev")  # read now: it holds the credential server-up wrote
    with settings_for(env):
        Secret(value=key).save("pem-key", overwrite=True)
    root = live_kit.repo.root
    add_flow(root, "pemleak", julia_flow("pemleak", "pemleak"), jobs={"pemleak": PEM_JOB})
    live_kit.invoke("deploy", "--env", "dev", timeout=300).check_returncode()

    run = live_kit.invoke("run", "pemleak", "--env", "dev", "--timeout", "300", timeout=400)
    assert run.returncode == 1, run.stdout + run.stderr
    found = re.search(r"flow-run/([0-9a-f-]{36})", run.stdout + run.stderr)
    assert found, run.stdout + run.stderr
    client = security.api_client(env, timeout=30)
    flow_run = client.request("GET", f"/flow_runs/{found.group(1)}")
    logs = client.request("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [found.group(1)]}}, "limit": 200})
    messages = "\n".join(str(entry["message"]) for entry in logs)
    assert messages.count("********") >= 4 and "cannot use the key" in messages, messages
    database = b"".join(
        path.read_bytes() for path in live_kit.env.files.database.parent.glob(live_kit.env.files.database.name + "*")
    )
    for where, text in {
        "invoke run output": run.stdout + run.stderr,
        "run logs": messages,
        "state message": str(flow_run["state"]["message"]),
        "worker.log": live_kit.env.files.worker_log.read_text(encoding="utf-8", errors="replace"),
        "prefect.db": database.decode("utf-8", errors="replace"),
    }.items():
        for line in body:
            assert line not in text, f"a line of the key leaked into the {where}"
