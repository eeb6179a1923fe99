"""The demo end to end, as a user runs it: real server, real process worker, real julia, real deployment runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import KitRepo, make_kit_repo
from prefect_julia.core.processes import is_alive, read_pid_file
from prefect_julia.kit.environment.environments import resolve_environment

pytestmark = [pytest.mark.server, pytest.mark.julia]

FAILING_FLOW = """
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="failing-job")
def failing() -> None:
    julia_job("broken", {"reason": "boom-42"})
"""

BROKEN_JOB = """
using PrefectInterfaces
args = parseargs()
println(stderr, "something broke: ", args["reason"])
exit(3)
"""


def test_demo_then_a_failing_job_then_server_down(tmp_path: Path) -> None:
    repo: KitRepo = make_kit_repo(tmp_path / "repo", project=True)
    env = resolve_environment("dev", repo.root, {})
    try:
        demo = repo.invoke("demo", timeout=900)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "Completed" in demo.stdout
        summary = env.data_root / "reports/csv/latest/dataset=sensor_readings_summary/data.csv"
        shown = Path(demo.stdout.split("output dataset: ", 1)[1].splitlines()[0])  # as the Julia job returned it
        assert shown.is_relative_to(env.data_root) and "dataset=sensor_readings_summary" in str(shown)
        assert shown.read_bytes() == summary.read_bytes()
        with summary.open() as stream:
            rows = list(csv.DictReader(stream))
        assert [r["station"] for r in rows] == ["east", "north", "south", "west"]
        assert all(r["readings"] == "24" for r in rows)
        with (env.data_root / "extracts/csv/latest/dataset=sensor_readings/data.csv").open() as stream:
            readings = list(csv.DictReader(stream))
        for row in rows:  # Julia's means agree with the input Python wrote
            temps = [float(r["temperature_c"]) for r in readings if r["station"] == row["station"]]
            assert float(row["mean_temperature_c"]) == pytest.approx(sum(temps) / len(temps), abs=0.01)
        assert "DEMO_API_TOKEN=" in (repo.root / "envs" / "dev.local.env").read_text()  # generated, git-ignored

        again = repo.invoke("demo", timeout=600)  # re-running is safe
        assert again.returncode == 0 and "already up" in again.stdout and "already running" in again.stdout

        (repo.root / "flows" / "failing.py").write_text(FAILING_FLOW)
        (repo.root / "julia" / "jobs" / "broken.jl").write_text(BROKEN_JOB)
        with (repo.root / "prefect.yaml").open("a") as decl:
            decl.write("  - name: failing\n    entrypoint: flows/failing.py:failing\n    work_pool: *work_pool\n")
        deployed = repo.invoke("deploy", "--env", "dev")
        assert deployed.returncode == 0 and "failing-job/failing" in deployed.stdout, deployed.stderr

        failed = repo.invoke("run", "failing", "--env", "dev", timeout=600)
        assert failed.returncode == 1
        assert "ended Failed" in failed.stderr
        assert "exit code: 3" in failed.stderr, failed.stderr
        assert "something broke: boom-42" in failed.stderr

        unknown = repo.invoke("run", "nope", "--env", "dev")
        assert unknown.returncode != 0 and "'nope' is not deployed" in unknown.stderr
        assert "demo-pipeline/daily" in unknown.stderr

        param = repo.invoke("run", "daily", "--env", "dev", "--param", "rundate=2026-01-15", timeout=600)
        assert param.returncode == 0, param.stderr
        assert (env.data_root / "reports/csv/dataset=sensor_readings_summary/rundate=2026-01-15/data.csv").exists()
    finally:
        worker = read_pid_file(env.files.worker_pid)
        down = repo.invoke("server-down", "--env", "dev")
    assert down.returncode == 0 and "Stopped the worker" in down.stdout
    assert worker is not None and not is_alive(worker)
