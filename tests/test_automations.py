"""Notifications as code: declared per environment, applied by `invoke deploy`, sent by the Prefect server.

A real server (its triggers and actions services), a real process worker, real julia, and a real HTTP
receiver on a free port standing in for the webhook endpoints (generic and Slack format).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import KitRepo, RunningServer, free_port, make_kit_repo
from harness import api, eventually
from prefect_julia.core.errors import ConfigError
from prefect_julia.core.redact import MASK, scrub
from prefect_julia.kit.declarations import automations
from prefect_julia.kit.worker import workers

pytestmark = [pytest.mark.server, pytest.mark.julia]

TOKEN = "tok-7f3a9c2e5b1d"  # the environment's secret; a failing job prints it, no notification may carry it

FLOWS = """
import os, signal, time

from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="ops-julia-fails")
def julia_fails() -> None:
    julia_job("broken", {"reason": "boom-42"})


@flow(name="ops-crashes")
def crashes() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@flow(name="ops-slow")
def slow(seconds: float = 20) -> None:
    time.sleep(seconds)


@flow(name="ops-ok")
def ok() -> str:
    return "fine"
"""

BROKEN_JOB = """
println(stderr, "something broke: ", ARGS[1], " with token ", ENV["DEMO_API_TOKEN"])
exit(3)
"""

DEPLOYMENTS = (
    "deployments:\n"
    + "".join(
        f"  - name: {name}\n    entrypoint: flows/ops.py:{fn}\n    work_pool: *work_pool\n"
        for name, fn in (("fails", "julia_fails"), ("crash", "crashes"), ("slow", "slow"), ("ok", "ok"))
    )
    + '    schedules:\n      - cron: "0 6 * * *"\n'
)  # "ok" runs daily too: `invoke status` shows its next run

WEBHOOKS = """
[[blocks]]
type = "custom-webhook"
name = "oncall"
format = "generic"
secret_from = "ONCALL_WEBHOOK_URL"

[[blocks]]
type = "custom-webhook"
name = "oncall-slack"
format = "slack"
secret_from = "ONCALL_SLACK_URL"

[[blocks]]
type = "custom-webhook"
name = "nobody"
format = "generic"
secret_from = "NOBODY_WEBHOOK_URL"
fields = { timeout = 3 }
"""

NOTIFICATIONS = """
[[notifications]]
name = "run-failed"
deployments = ["*"]
states = ["Failed", "Crashed", "TimedOut"]
block = "custom-webhook/oncall"

[[notifications]]
name = "julia-failed-slack"
deployments = ["fails"]
states = ["Failed"]
block = "custom-webhook/oncall-slack"

[[notifications]]
name = "crash-to-nobody"
deployments = ["crash"]
states = ["Crashed"]
block = "custom-webhook/nobody"

[[notifications]]
name = "slow-late"
deployments = ["slow"]
late_after = "10s"
block = "custom-webhook/oncall"
"""


class Receiver:
    """A webhook endpoint: records every POST (path and JSON body) and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[Any]:
        return [body for p, body in self.received if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _ops_repo(tmp_path: Path, server: RunningServer, receiver: Receiver) -> KitRepo:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    (repo.root / "flows" / "ops.py").write_text(FLOWS)
    declared = (repo.root / "prefect.yaml").read_text()
    (repo.root / "prefect.yaml").write_text(declared[: declared.index("\ndeployments:")] + "\n" + DEPLOYMENTS)
    (repo.root / "julia" / "jobs" / "broken.jl").write_text(BROKEN_JOB)
    with (repo.root / "envs" / "dev.blocks.toml").open("a") as blocks:
        blocks.write(WEBHOOKS)
    (repo.root / "envs" / "dev.automations.toml").write_text(NOTIFICATIONS)
    with (repo.root / "envs" / "dev.local.env").open("a") as local:
        local.write(
            f"PREFECT_API_URL={server.api_url}\nPREFECT_JULIA_WORK_POOL=ops-{uuid.uuid4().hex[:8]}\n"
            f"DEMO_API_TOKEN={TOKEN}\nPREFECT_JULIA_PASS_ENV=DEMO_API_TOKEN\nONCALL_WEBHOOK_URL={receiver.url}/generic\n"
            f"ONCALL_SLACK_URL={receiver.url}/slack\nNOBODY_WEBHOOK_URL=http://127.0.0.1:{free_port()}/closed\n"
            "PREFECT_JULIA_SCHEDULES=active\n"  # the status screen shows the daily run's next start
        )
    return repo


def _api(server: RunningServer, path: str, body: dict[str, Any]) -> Any:
    return api(server.api_url, "POST", path, body)


def test_failed_crashed_and_late_runs_notify_completed_ones_do_not(
    tmp_path: Path, prefect_server: RunningServer, receiver: Receiver
) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    repo = _ops_repo(tmp_path, prefect_server, receiver)
    env = repo.environment("dev")
    repo.invoke("blocks", "--env", "dev", check=True)
    deployed = repo.invoke("deploy", "--env", "dev", check=True)
    for name in ("run-failed", "julia-failed-slack", "crash-to-nobody", "slow-late"):
        assert f"created    automation prefect-julia/{name}" in deployed.stdout
    again = repo.invoke("deploy", "--env", "dev", check=True)
    assert again.stdout.count("unchanged  automation") == 4, again.stdout  # idempotent

    try:
        workers.worker_up(env, repo.environ(PREFECT_WORKER_QUERY_SECONDS="2"), timeout=120)  # polls every 2 s
        runs: dict[str, Any] = {}
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
            for name, flow in (("fails", "julia-fails"), ("crash", "crashes"), ("slow", "slow"), ("ok", "ok")):
                runs[name] = run_deployment(f"ops-{flow}/{name}", timeout=0)

        def state(name: str) -> str:
            found = _api(prefect_server, "/flow_runs/filter", {"flow_runs": {"id": {"any_": [str(runs[name].id)]}}})
            return str(found[0]["state"]["name"])

        eventually(lambda: all(state(n) in automations.FINAL_STATES for n in runs), 240, "the four runs to end")
        assert {n: state(n) for n in runs} == {
            "fails": "Failed",
            "crash": "Crashed",
            "slow": "Completed",
            "ok": "Completed",
        }
        eventually(lambda: len(receiver.on("/generic")) >= 3 and receiver.on("/slack"), 90, "the notifications")
        time.sleep(8)  # room for anything that should not come

        # The on-call screen: server, worker, deployments with the next run, last runs, automations.
        screens: list[str] = []
        eventually(
            lambda: (
                screens.append(repo.invoke("status", "--env", "dev", check=True).stdout) or "from now" in screens[-1]
            ),
            120,
            "the next scheduled run",
        )
        screen = screens[-1]
    finally:
        workers.worker_down(env)

    generic = {(body["kind"], body["deployment"]): body for body in receiver.on("/generic")}
    assert sorted(generic) == [("late", "slow"), ("state", "crash"), ("state", "fails")], receiver.received
    failed = generic[("state", "fails")]
    assert failed["flow"] == "ops-julia-fails" and failed["state"] == "Failed" and failed["environment"] == "dev"
    assert failed["url"].endswith(f"/runs/flow-run/{runs['fails'].id}")
    assert "something broke: --reason=boom-42 with token" in failed["stderr_tail"]
    assert TOKEN not in json.dumps(receiver.received) and MASK in failed["stderr_tail"]
    crashed = generic[("state", "crash")]
    assert crashed["state"] == "Crashed" and crashed["url"].endswith(str(runs["crash"].id))
    late = generic[("late", "slow")]
    assert late["state"] in ("Pending", "Running") and "still" in late["title"]
    assert late["flow_run_id"] == str(runs["slow"].id)

    (slack,) = receiver.on("/slack")
    assert set(slack) == {"text"} and "ended Failed" in slack["text"] and "something broke" in slack["text"]
    assert str(runs["fails"].id) in slack["text"]

    assert "server   healthy" in screen and "worker   online" in screen, screen
    rows = {line.split()[0]: line for line in screen.splitlines() if line.strip()}
    assert "0 6 * * *" in rows["ops-ok/ok"] and "from now" in rows["ops-ok/ok"], screen
    for name, run_state in (("fails", "Failed"), ("crash", "Crashed"), ("slow", "Completed"), ("ok", "Completed")):
        assert run_state in rows[runs[name].name] and f"/{name} " in rows[runs[name].name], screen
    assert re.search(r"\d+ s$", rows[runs["slow"].name]), screen  # its duration
    for automation in ("run-failed", "julia-failed-slack", "crash-to-nobody", "slow-late"):
        assert f"prefect-julia/{automation}" in rows, screen

    # The webhook that does not answer: the crashed run stayed Crashed (above); the server logged the failure.
    log = (prefect_server.home / "server.log").read_text(errors="replace")
    closed = [
        line for line in log.splitlines() if "/closed" in line or "ConnectError" in line or "Action failed" in line
    ]
    assert closed, log[-3000:]
    assert TOKEN not in log

    # Removing a declaration removes its automation; the others stay.
    (repo.root / "envs" / "dev.automations.toml").write_text(NOTIFICATIONS.split('[[notifications]]\nname = "slow')[0])
    pruned = repo.invoke("automations", "--env", "dev", check=True)
    assert "removed    automation prefect-julia/slow-late" in pruned.stdout
    assert pruned.stdout.count("unchanged") == 3


BAD = [
    ('deployments = ["nope"]\nstates = ["Failed"]\nblock = "custom-webhook/oncall"', "deployment 'nope' is not declared"),
    ('deployments = ["daily"]\nstates = ["Failed"]\nblock = "custom-webhook/pager"', "block 'custom-webhook/pager' is not declared"),
    ('deployments = ["daily"]\nlate_after = "soon"\nblock = "custom-webhook/oncall"', "'soon' is not a duration"),
    ('deployments = ["daily"]\nlate_after = "3s"\nblock = "custom-webhook/oncall"', "shorter than 10 s"),
    ('deployments = ["daily"]\nstates = ["Broken"]\nblock = "custom-webhook/oncall"', "'Broken' is not a final state"),
    ('deployments = ["daily"]\nblock = "custom-webhook/oncall"', "either `states`"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "problem"), BAD)
def test_bad_notifications_are_refused_before_anything_is_applied(tmp_path: Path, entry: str, problem: str) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    with (repo.root / "envs" / "dev.blocks.toml").open("a") as blocks:
        blocks.write(
            '\n[[blocks]]\ntype = "custom-webhook"\nname = "oncall"\nformat = "slack"\nsecret_from = "X_URL"\n'
        )
    (repo.root / "envs" / "dev.automations.toml").write_text(f'[[notifications]]\nname = "n"\n{entry}\n')
    with pytest.raises(ConfigError, match=r"nothing was applied|late_after|final state|either") as raised:
        automations.plan(repo.root, "dev")
    assert problem in str(raised.value) and "fix:" in str(raised.value)
    from prefect_julia.gates.declarations import check

    assert any(problem in p for p in check(repo.root))


def test_deploy_with_a_bad_notification_exits_2_and_deploys_nothing(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    (repo.root / "envs" / "dev.automations.toml").write_text(
        '[[notifications]]\nname = "n"\ndeployments = ["daily"]\nlate_after = "1x"\nblock = "custom-webhook/a"\n'
    )
    run = repo.invoke("deploy", "--env", "dev")  # no server runs: the check comes first
    assert run.returncode == ConfigError.exit_code, run.stderr
    assert "late_after = '1x' is not a duration" in run.stderr and "fix:" in run.stderr
    assert "Traceback" not in run.stderr


def test_webhook_blocks_keep_their_url_secret(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    with (repo.root / "envs" / "dev.blocks.toml").open("a") as blocks:
        blocks.write('\n[[blocks]]\ntype = "custom-webhook"\nname = "h"\nformat = "generic"\nfields = { url = "x" }\n')
    from prefect_julia.kit.declarations import blocks as block_decls

    with pytest.raises(ConfigError, match=r"secret_from|only fields"):
        block_decls.load(repo.root, "dev")


def test_scrub() -> None:
    text = "db postgresql://u:" + "hunter22@h/x Authorization: Bearer abcdef123 api_key=zzz9 value s3cr3t-v4lue ok"
    scrubbed = scrub(text, {"MY_TOKEN": "s3cr3t-v4lue", "PATH": "/usr/bin:/bin"})
    for secret in ("hunter22", "abcdef123", "zzz9", "s3cr3t-v4lue"):
        assert secret not in scrubbed
    assert scrubbed.startswith("db postgresql://") and scrubbed.endswith(" ok")


def test_parse_duration() -> None:
    assert automations.parse_duration("1h30m", "x") == timedelta(minutes=90)
    assert automations.parse_duration(45, "x") == timedelta(seconds=45)


def test_status_with_the_server_down_says_how_to_start_it(kit_repo: KitRepo) -> None:
    run = kit_repo.invoke("status", "--env", "dev")
    assert run.returncode == 0, run.stderr
    assert "server   down" in run.stdout and "invoke server-up dev" in run.stdout
    assert "worker   down" in run.stdout


def test_failed_commands_carry_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect_julia.runtime.bridge import JuliaFailed

    monkeypatch.setenv("DEMO_API_TOKEN", TOKEN)
    error = JuliaFailed(f"job failed with {TOKEN}", stderr_tail=f"printing {TOKEN}\npassword=hunter22")
    assert TOKEN not in str(error) and "hunter22" not in str(error) and str(error).count(MASK) == 3


@pytest.mark.server
def test_deploy_refuses_when_a_webhook_block_is_not_on_the_server(
    tmp_path: Path, prefect_server: RunningServer, receiver: Receiver
) -> None:
    """A webhook block not on the server, whose URL is not set here either: `invoke deploy` cannot create it."""
    repo = _ops_repo(tmp_path, prefect_server, receiver)  # webhooks declared, `invoke blocks` never run
    unique = f"oncall-{uuid.uuid4().hex[:8]}"  # a block no other test put on the shared server
    settable = f"nobody-{uuid.uuid4().hex[:8]}"  # its URL is set: a deploy would create it, were it not refused
    setting = f"UNSET_URL_{uuid.uuid4().hex[:8].upper()}"
    for name, old, new in (("dev.blocks.toml", 'name = "oncall"', f'name = "{unique}"'),
                           ("dev.blocks.toml", 'secret_from = "ONCALL_WEBHOOK_URL"', f'secret_from = "{setting}"'),
                           ("dev.blocks.toml", 'name = "nobody"', f'name = "{settable}"'),
                           ("dev.automations.toml", '"custom-webhook/nobody"', f'"custom-webhook/{settable}"'),
                           ("dev.automations.toml", '"custom-webhook/oncall"', f'"custom-webhook/{unique}"')):  # fmt: skip
        path = repo.root / "envs" / name
        path.write_text(path.read_text().replace(old, new))
    planned = repo.invoke("plan", "--env", "dev")  # two notifications use the block: the plan says it once
    assert planned.stdout.count(f"the block custom-webhook/{unique} is not on the dev server") == 1, planned.stdout
    run = repo.invoke("deploy", "--env", "dev")
    assert run.returncode == ConfigError.exit_code, run.stdout + run.stderr
    assert f"custom-webhook/{unique} (from {setting})" in run.stderr, run.stderr
    assert f"fix: Put {setting}=... in envs/dev.local.env" in run.stderr
    written = _api(prefect_server, "/block_documents/filter", {"block_documents": {"name": {"any_": [settable]}}})
    assert written == []  # refused before any block was written, the ones it could make too
    assert not re.search(r"^deployed  ", run.stdout, re.MULTILINE)  # the plan is shown; nothing was applied
    pool = repo.environment("dev").require("PREFECT_JULIA_WORK_POOL")
    assert not _api(prefect_server, "/deployments/filter", {"work_pools": {"name": {"any_": [pool]}}})
