"""Schedules fire: a real server, the kit's deploy, a real worker; and `server-status` names failing services."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from conftest import KitRepo, make_kit_repo
from harness import eventually, kit_api
from prefect_julia.kit.declarations import codesource, deployments
from prefect_julia.kit.environment import environments
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.server import serverlog

FLOW = """
from prefect import flow

@flow(name="tick")
def tick(word: str = "tock") -> str:
    return word
"""

DECLARATION = """
deployments:
  - name: every-minute
    entrypoint: flows/tick.py:tick
    schedules:
      - cron: "* * * * *"
    work_pool:
      name: "{{ $PREFECT_JULIA_WORK_POOL }}"
"""


def _runs(env: Environment, deployment_id: str) -> list[dict[str, Any]]:
    return list(kit_api(env, "POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}}))


def _schedule_repo(tmp_path: Path, *, schedules: str = "", seed: bool | None = None) -> KitRepo:
    repo = make_kit_repo(tmp_path / "repo", seed=seed)
    (repo.root / "flows").mkdir()
    (repo.root / "flows" / "tick.py").write_text(FLOW)
    (repo.root / "prefect.yaml").write_text(DECLARATION)
    if schedules:
        with (repo.root / "envs" / "dev.local.env").open("a") as local:
            local.write(f"PREFECT_JULIA_SCHEDULES={schedules}\n")
    return repo


def test_a_due_cron_schedule_gets_a_scheduled_then_a_completed_run(tmp_path: Path) -> None:
    repo = _schedule_repo(tmp_path, schedules="active")  # dev pauses schedules by default
    env = repo.environment("dev")
    fast = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    try:
        repo.invoke("server-up", "--env", "dev", check=True, timeout=300, **fast)
        repo.invoke("deploy", "--env", "dev", check=True, timeout=300)
        deployment_id = kit_api(env, "GET", "/deployments/name/tick/every-minute")["id"]

        scheduled = eventually(
            lambda: [r for r in _runs(env, deployment_id) if r["state_type"] == "SCHEDULED"], 90, "a Scheduled run"
        )
        assert scheduled[0]["auto_scheduled"] is True

        repo.invoke("worker-up", "--env", "dev", check=True, timeout=300, **fast)
        completed = eventually(
            lambda: [r for r in _runs(env, deployment_id) if r["state_type"] == "COMPLETED"],
            180,
            "a Completed run from the worker",
        )
        assert completed[0]["auto_scheduled"] is True

        errors = serverlog.service_errors(env.files.server_log)
        assert not errors, serverlog.recent_lines(env.files.server_log)[-40:]
        status = repo.invoke("server-status", check=True)
        dev_row = next(line for line in status.stdout.splitlines() if line.startswith("dev "))
        assert dev_row.rstrip().endswith("-"), status.stdout  # the warnings column: no service logs errors
        with env.files.server_log.open(
            "a"
        ) as log:  # what the scheduler logs with SQLAlchemy 2.1 (not installable here)
            log.write("06:01:01.000 | ERROR   | prefect.server.services.scheduler - Error scheduling deployment 'x'.\n")
        status = repo.invoke("server-status", check=True)
        assert "scheduler: 1 error" in status.stdout, status.stdout
    finally:
        repo.invoke("server-down", "--env", "dev", timeout=120)


SCHEDULER_FAILING = """\
06:00:00.100 | INFO    | uvicorn.error - Started server process [4242]
06:00:01.000 | ERROR   | prefect.server.services.scheduler - Error scheduling deployment 'abc'.
sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement
06:01:01.000 | ERROR   | prefect.server.services.scheduler - Error scheduling deployment 'abc'.
06:01:01.500 | ERROR   | prefect.server.api.workers - Worker channel setup failed due to a transient server error
06:01:02.000 | WARNING | prefect.server.services.foreman - a warning is not an error
"""


def test_service_errors_name_the_failing_service_since_the_last_start(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "05:00:00.000 | ERROR   | prefect.server.services.cancellation_cleanup - before the restart\n"
        + SCHEDULER_FAILING
    )
    errors = serverlog.service_errors(log)
    assert errors == Counter({"scheduler": 2})
    assert serverlog.describe(errors) == "scheduler: 2 errors"
    assert serverlog.describe(Counter()) == "-"
    assert serverlog.service_errors(tmp_path / "missing.log") == Counter()


def test_dev_deploys_its_schedules_paused_and_the_scheduler_makes_no_run(tmp_path: Path) -> None:
    repo = _schedule_repo(tmp_path)
    env = repo.environment("dev")
    fast = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}
    try:
        repo.invoke("server-up", "--env", "dev", check=True, timeout=300, **fast)
        repo.invoke("deploy", "--env", "dev", check=True, timeout=300)
        deployment = kit_api(env, "GET", "/deployments/name/tick/every-minute")
        assert [s["active"] for s in deployment["schedules"]] == [False]
        assert deployment["paused"] is False  # the deployment itself still runs when asked

        # A witness deployment of the same flow with an active schedule, made after the kit's: once the
        # scheduler has given it runs, it has looked at the kit's deployment too.
        witness = kit_api(
            env,
            "POST",
            "/deployments/",
            {
                "name": "witness",
                "flow_id": deployment["flow_id"],
                "schedules": [{"schedule": {"cron": "* * * * *"}, "active": True}],
            },
        )
        eventually(lambda: _runs(env, witness["id"]), 120, "the witness's scheduled runs")
        assert _runs(env, deployment["id"]) == []

        plan = repo.invoke("plan", "--env", "dev", "--exit-code", timeout=300)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "no changes" in plan.stdout, plan.stdout
        status = repo.invoke("status", "--env", "dev", check=True, timeout=300)
        row = next(line for line in status.stdout.splitlines() if "tick/every-minute" in line)
        assert "* * * * * (paused)" in row, status.stdout
        assert "schedules paused in dev" in status.stdout, status.stdout
    finally:
        repo.invoke("server-down", "--env", "dev", timeout=120)


def test_schedules_are_active_in_prod_and_paused_elsewhere_by_default(tmp_path: Path) -> None:
    repo = _schedule_repo(tmp_path, seed=False)  # no server here
    declaration = DECLARATION.replace(
        'cron: "* * * * *"', 'cron: "* * * * *"\n      - cron: "0 6 * * *"\n        active: false'
    )
    (repo.root / "prefect.yaml").write_text(declaration)
    spec = deployments.load(repo.root)[0]
    code = codesource.working_tree(repo.root)

    def active(env: Environment) -> list[bool]:
        return [s["active"] for s in deployments.applied_options(repo.root, spec, env, code)["schedules"]]

    prod, dev = repo.environment("prod"), repo.environment("dev")
    assert (prod.get("PREFECT_JULIA_SCHEDULES"), dev.get("PREFECT_JULIA_SCHEDULES")) == ("active", "paused")
    assert active(prod) == [True, False]  # declared `active: false` stays inactive everywhere
    assert active(dev) == [False, False]
    told = environments.resolve_environment("dev", repo.root, {"PREFECT_JULIA_SCHEDULES": "active"})
    assert active(told) == [True, False]
