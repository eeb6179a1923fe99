"""Closed by default: a kit server answers only with its auth string, and a flow run cannot choose what runs.

Against the session's live kit (a default dev environment: nothing about auth written by hand), a real worker,
and, where this machine allows it (root with useradd), a second local user created for the test.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from harness import kit_api
from live_kit import LiveKit, wait_state
from prefect_julia.kit.worker import workpool


def _status(url: str, method: str = "GET", body: bytes | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_locked_template_has_no_command_and_keeps_the_rest() -> None:
    template = workpool.locked_template()
    assert "command" not in template["job_configuration"] and "command" not in template["variables"]["properties"]
    assert template["job_configuration"]["env"] == "{{ env }}"  # a deployment's env still applies
    assert workpool.refused_run_variables({"command": "x", "env": {}, "name": "n"}) == ["command", "env"]
    assert workpool.refused_run_variables({"labels": {}, "stream_output": True}) == []
    assert workpool.refused_run_variables(None) == []


@pytest.mark.server
def test_a_default_dev_server_refuses_a_caller_without_its_auth_string(live_kit: LiveKit) -> None:
    assert live_kit.env.get("PREFECT_API_AUTH_STRING"), "server-up wrote no auth string for a default dev"
    api = live_kit.env.api_url
    assert _status(api.removesuffix("/api") + "/api/health") == 200
    assert _status(f"{api}/csrf-token?client=x") == 401
    # a change without credentials meets the CSRF check (403) or auth (401) first: never an answer
    assert _status(f"{api}/block_documents/filter", "POST", b'{"include_secrets": true}') in (401, 403)
    assert _status(f"{api}/deployments/filter", "POST", b"{}") in (401, 403)
    assert _status(f"{api}/block_documents/filter", "GET") in (401, 405)
    # the kit's own client gets in
    assert isinstance(kit_api(live_kit.env, "POST", "/deployments/filter", {}), list)


@pytest.mark.server
@pytest.mark.parametrize(
    "variables",
    [
        {"command": "sh -c 'touch {mark}'"},
        {"env": {"PYTHONSTARTUP": "{mark}", "LD_PRELOAD": "{mark}"}},
        {"working_dir": "{mark}"},
    ],
    ids=["command", "env", "working_dir"],
)
def test_a_flow_run_with_its_own_job_variables_is_refused_before_it_starts(
    live_kit: LiveKit, tmp_path: Path, variables: dict[str, object]
) -> None:
    mark = tmp_path / "ran"
    filled = {k: (v.format(mark=mark) if isinstance(v, str) else {n: str(x).format(mark=mark) for n, x in v.items()})
              for k, v in variables.items()}  # fmt: skip
    deployment = kit_api(live_kit.env, "GET", "/deployments/name/quick/quick")
    created = kit_api(
        live_kit.env,
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        {"parameters": {"label": "override"}, "job_variables": filled, "idempotency_key": uuid.uuid4().hex},
    )  # asked again on a busy server's 503: the idempotency key makes it one run
    run = wait_state(live_kit.env, created["id"], {"Failed", "Completed", "Crashed"}, timeout=300)
    assert run.state.name == "Failed", run.state
    assert "refuses" in (run.state.message or "") and sorted(variables)[0] in (run.state.message or "")
    assert not mark.exists()
    logs = kit_api(live_kit.env, "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [created["id"]]}}})
    assert not any("quick says" in str(entry["message"]) for entry in logs), "the flow's body ran"


@pytest.mark.server
def test_a_run_without_its_own_job_variables_still_runs(live_kit: LiveKit) -> None:
    deployment = kit_api(live_kit.env, "GET", "/deployments/name/quick/quick")
    created = kit_api(
        live_kit.env,
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        {
            "parameters": {"label": "plain"},
            "job_variables": {"stream_output": True},
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert wait_state(live_kit.env, created["id"], {"Completed", "Failed", "Crashed"}, timeout=300).state.name == (
        "Completed"
    )


@pytest.mark.server
def test_another_local_user_reads_no_secret_and_starts_no_run(live_kit: LiveKit, other_user: str) -> None:
    api = live_kit.env.api_url
    deployment = kit_api(live_kit.env, "GET", "/deployments/name/quick/quick")

    def as_other(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", other_user, "--", *args], capture_output=True, text=True, timeout=60)

    def curl(method: str, path: str, body: str = "{}") -> str:
        done = as_other("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                        "-H", "Content-Type: application/json", "-d", body, f"{api}{path}")  # fmt: skip
        return done.stdout

    assert curl("GET", "/csrf-token?client=attacker") == "401"
    assert curl("POST", "/block_documents/filter", '{"include_secrets": true}') in ("401", "403")
    assert curl("POST", f"/deployments/{deployment['id']}/create_flow_run", '{"job_variables": {"command": "id"}}') in (
        "401",
        "403",
    )
    for private in (
        live_kit.repo.root / "envs" / "dev.local.env",
        live_kit.env.files.path / "prefect.db",
        live_kit.env.files.server_log,
    ):
        assert private.exists(), private
        assert as_other("cat", str(private)).returncode != 0, f"{other_user} could read {private}"
