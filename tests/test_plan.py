"""`invoke plan`: the repository's declarations for an environment against its real server, read only.

One kit copy of its own (a real dev server, no worker: nothing here runs a flow). Each test starts from a server
in step with the repository (``_in_step``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import KitRepo, kit_api, make_kit_repo
from prefect_julia.core.errors import ConfigError, ServerError
from prefect_julia.kit.declarations import plan, rollout

TOKEN = "plan-token-first-4f1c9e"
NEW_TOKEN = "plan-token-second-77ab02"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitRepo]:
    repo = make_kit_repo(tmp_path_factory.mktemp("plan") / "repo", project=True)
    _pin_daily_cron(repo.root / "prefect.yaml")
    with (repo.root / "envs" / "dev.local.env").open("a") as local:
        local.write(f"DEMO_API_TOKEN={TOKEN}\n")
        local.write("PREFECT_JULIA_SCHEDULES=active\n")  # the drift test edits an active schedule
    try:
        repo.invoke("server-up", "--env", "dev", timeout=300, check=True)
        repo.invoke("blocks", "--env", "dev", timeout=300, check=True)
        repo.invoke("deploy", "--env", "dev", timeout=300, check=True)
        yield repo
    finally:
        down = repo.invoke("server-down", "--env", "dev", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


def _pin_daily_cron(path: Path) -> None:
    """The copied project's ``daily`` deployment runs at 06:00, whatever schedule the project has given it: the
    tests below edit and compare that one."""
    text = path.read_text()
    start = text.index("name: daily")
    pinned, count = re.subn(r'(- cron: )"[^"]*"', r'\1"0 6 * * *"', text[start:], count=1)
    assert count, "the project's daily deployment has no schedule"
    path.write_text(text[:start] + pinned)


def _plan(repo: KitRepo, *flags: str) -> Any:
    return repo.invoke("plan", "--env", "dev", *flags, timeout=300)


def _in_step(repo: KitRepo) -> None:
    run = _plan(repo)
    if "no changes" not in run.stdout:
        repo.invoke("blocks", "--env", "dev", timeout=300, check=True)
        repo.invoke("deploy", "--env", "dev", timeout=300, check=True)
        run = _plan(repo)
    assert run.returncode == 0 and "no changes" in run.stdout, run.stdout + run.stderr


def _daily(repo: KitRepo) -> dict[str, Any]:
    env = repo.environment("dev")  # resolved after server-up: with its auth string
    (found,) = kit_api(env, "POST", "/deployments/filter", {"deployments": {"name": {"any_": ["daily"]}}})
    return dict(found)


def _crons(repo: KitRepo) -> list[str]:
    return [s["schedule"]["cron"] for s in _daily(repo)["schedules"]]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_a_schedule_changed_in_prefect_yaml_is_planned_then_deployed(kit: KitRepo) -> None:
    _in_step(kit)
    assert _plan(kit, "--exit-code").returncode == 0  # in step: 0 even with --exit-code
    _edit(kit.root / "prefect.yaml", '"0 6 * * *"', '"30 7 * * 1"')
    try:
        planned = _plan(kit)
        assert planned.returncode == 0, planned.stderr
        assert "~ change  deployment demo-pipeline/daily" in planned.stdout, planned.stdout
        assert "schedules: 0 6 * * * UTC -> 30 7 * * 1 UTC" in planned.stdout
        assert "0 to create, 1 to change, 0 to remove." in planned.stdout
        assert _crons(kit) == ["0 6 * * *"]  # the plan changed nothing
        assert _plan(kit, "--exit-code").returncode == plan.EXIT_DIFFERENT

        shown: list[str] = []
        report = rollout.deploy(kit.root, kit.environment("dev"), show=shown.append)
        assert report.deployments.applied == ["demo-pipeline/daily"]
        assert len(shown) == 1 and "schedules: 0 6 * * * UTC -> 30 7 * * 1 UTC" in shown[0]  # shown before applying
        assert _crons(kit) == ["30 7 * * 1"]
        again = _plan(kit, "--exit-code")
        assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr
    finally:
        _edit(kit.root / "prefect.yaml", '"30 7 * * 1"', '"0 6 * * *"')


def test_drift_on_the_server_shows_in_plan_and_status(kit: KitRepo) -> None:
    _in_step(kit)
    env = kit.environment("dev")
    assert "differs from the repository" not in kit.invoke("status", "--env", "dev", timeout=300).stdout
    daily = _daily(kit)
    schedule_id = daily["schedules"][0]["id"]
    # what the UI does: edit the schedule and a parameter of the deployment
    body = {"schedule": {"cron": "0 9 * * *", "timezone": "UTC"}, "active": False}
    kit_api(env, "PATCH", f"/deployments/{daily['id']}/schedules/{schedule_id}", body)
    kit_api(env, "PATCH", f"/deployments/{daily['id']}", {"parameters": {**daily["parameters"], "dataset_name": "x"}})

    planned = _plan(kit)
    assert "schedules: 0 9 * * * UTC (inactive) -> 0 6 * * * UTC" in planned.stdout, planned.stdout + planned.stderr
    assert 'parameter dataset_name: "x" -> "sensor_readings"' in planned.stdout
    status = kit.invoke("status", "--env", "dev", timeout=300)
    assert status.returncode == 0, status.stderr
    assert "warning: the dev server differs from the repository (1 difference(s): change deployment" in status.stdout

    kit.invoke("deploy", "--env", "dev", timeout=300, check=True)
    assert "no changes" in _plan(kit).stdout
    assert _crons(kit) == ["0 6 * * *"] and _daily(kit)["schedules"][0]["active"] is True
    assert "differs from the repository" not in kit.invoke("status", "--env", "dev", timeout=300).stdout


def test_a_changed_secret_is_named_and_never_shown(kit: KitRepo) -> None:
    _in_step(kit)
    local = kit.root / "envs" / "dev.local.env"
    _edit(local, f"DEMO_API_TOKEN={TOKEN}", f"DEMO_API_TOKEN={NEW_TOKEN}")
    _edit(kit.root / "envs" / "dev.blocks.toml", "demo_min_rows = 10", "demo_min_rows = 12")
    planned = _plan(kit, "--exit-code")
    output = planned.stdout + planned.stderr
    assert planned.returncode == plan.EXIT_DIFFERENT, output
    assert "~ change  block secret/demo-api-token\n      value changed" in planned.stdout, output
    assert "~ change  variable demo_min_rows\n      value: 10 -> 12" in planned.stdout
    assert "\nblocks and variables\n" in planned.stdout  # a section `invoke deploy` applies, first
    assert TOKEN not in output and NEW_TOKEN not in output
    env = kit.environment("dev")
    stored = kit_api(env, "GET", "/block_types/slug/secret/block_documents/name/demo-api-token?include_secrets=true")
    assert stored["data"]["value"] == TOKEN  # the plan changed nothing

    deployed = kit.invoke("deploy", "--env", "dev", timeout=300, check=True)
    assert "updated    block secret/demo-api-token" in deployed.stdout, deployed.stdout
    assert "updated    variable demo_min_rows" in deployed.stdout
    assert NEW_TOKEN not in deployed.stdout + deployed.stderr
    stored = kit_api(env, "GET", "/block_types/slug/secret/block_documents/name/demo-api-token?include_secrets=true")
    assert stored["data"]["value"] == NEW_TOKEN
    again = _plan(kit)
    assert "no changes" in again.stdout, again.stdout + again.stderr
    assert NEW_TOKEN not in again.stdout + again.stderr


def test_deploy_leaves_a_block_whose_secret_is_not_set_here(kit: KitRepo) -> None:
    """A checkout without the secret (a CI job, a colleague's clone) deploys the rest and says what it left."""
    _in_step(kit)
    env = kit.environment("dev")
    local = kit.root / "envs" / "dev.local.env"
    kept = local.read_text()
    try:
        local.write_text("".join(line for line in kept.splitlines(keepends=True) if "DEMO_API_TOKEN" not in line))
        declared = kit.root / "envs" / "dev.blocks.toml"
        declared.write_text(re.sub(r"demo_min_rows = \d+", "demo_min_rows = 13", declared.read_text()))
        planned = _plan(kit)
        assert "note: block secret/demo-api-token not compared (DEMO_API_TOKEN is not set here," in planned.stdout
        deployed = kit.invoke("deploy", "--env", "dev", timeout=300)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "skipped    block secret/demo-api-token (DEMO_API_TOKEN is not set here," in deployed.stdout
        assert "updated    variable demo_min_rows" in deployed.stdout
        stored = kit_api(
            env, "GET", "/block_types/slug/secret/block_documents/name/demo-api-token?include_secrets=true"
        )
        assert stored["data"]["value"] in (TOKEN, NEW_TOKEN)  # left as it was, not emptied
        assert kit_api(env, "GET", "/variables/name/demo_min_rows")["value"] == 13
    finally:
        local.write_text(kept)


def test_a_step_that_fails_part_way_says_what_was_applied(kit: KitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mocked: the automations step fails on purpose (a server cannot be made to fail between two steps on cue)."""
    _in_step(kit)
    from prefect_julia.kit.declarations import automations

    def broken(*args: object, **kwargs: object) -> None:
        raise ServerError("The dev Prefect server at http://x is not reachable.", hint="Start it.")

    monkeypatch.setattr(automations, "apply", broken)
    with pytest.raises(ServerError) as raised:
        rollout.deploy(kit.root, kit.environment("dev"))
    text = str(raised.value)
    assert "Applied: blocks and variables, deployments, work pool limit. Not applied: automations." in text, text
    assert "invoke deploy dev` again" in text


def test_plan_refuses_an_unknown_environment(kit: KitRepo) -> None:
    run = kit.invoke("plan", "staging", timeout=300)
    assert run.returncode == ConfigError.exit_code, run.stdout + run.stderr
    assert "staging" in run.stderr and "fix:" in run.stderr and "Traceback" not in run.stderr


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_plan_with_the_server_down_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    before = _files(repo.root)
    run = repo.invoke("plan", "dev", timeout=300)
    assert run.returncode == ServerError.exit_code, run.stdout + run.stderr
    assert "not reachable" in run.stderr and "fix:" in run.stderr and "invoke server-up dev" in run.stderr
    assert "Traceback" not in run.stderr
    assert _files(repo.root) - before == set()


def test_plan_refuses_another_checkouts_server(kit: KitRepo, tmp_path: Path) -> None:
    other = make_kit_repo(tmp_path / "other", project=True)
    (other.root / "envs" / "dev.local.env").write_text(f"PREFECT_JULIA_PORT={kit.ports['dev']}\n")
    before = _files(other.root)
    run = other.invoke("plan", "dev", timeout=300)
    assert run.returncode == ServerError.exit_code, run.stdout + run.stderr
    assert f"is not this checkout's dev server: it is the dev environment of {kit.root}" in run.stderr
    assert "fix:" in run.stderr and "plan for" not in run.stdout
    assert _files(other.root) - before == set()


def test_render_keeps_values_out_of_a_secret_change() -> None:
    found = plan.Plan(env="dev", api_url="http://127.0.0.1:1/api")
    found.changes.append(plan.Change("change", "blocks and variables", "block secret/x", ("value changed",)))
    text = plan.render(found)
    assert "~ change  block secret/x\n      value changed" in text and "0 to create, 1 to change, 0 to remove." in text
    assert json.dumps(plan.exit_status(found, True)) == "2" and plan.exit_status(found, False) == 0
