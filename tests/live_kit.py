"""One running kit for the tests that need a whole environment: a temporary kit repository with the project,
its dev server started with `invoke server-up`, the deployments applied and a worker up.

Two extra flows serve the tests: ``quick`` (returns at once; typed parameters) and ``sleepy`` (a Julia job
that sleeps, for runs in flight). The session shares it (a server start costs 20-60 s here); tests that stop
the worker start it again with `invoke worker-up`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import KitRepo, eventually, make_kit_repo
from kit_flows import add_flow
from prefect_julia.kit.environment.environments import Environment

QUICK_FLOW = """
from prefect import flow


@flow(name="quick", log_prints=True)
def quick(count: int = 1, label: str = "run", rundate: str | None = None, ratio: float = 0.5) -> str:
    print(f"quick says {label}-{count} on {rundate}")
    return f"{label}-{count}"
"""

SLEEPY_FLOW = """
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="sleepy")
def sleepy(seconds: float = 600) -> object:
    return julia_job("sleepy", {"seconds": seconds})
"""

NOJOB_FLOW = """
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="nojob")
def nojob() -> object:
    return julia_job("no_such_job", {})
"""

SLEEPY_JOB = """using PrefectInterfaces
args = parseargs()
@info "sleeping" seconds = args["seconds"]
sleep(parse(Float64, args["seconds"]))
"""


@dataclass(frozen=True)
class LiveKit:
    repo: KitRepo
    env: Environment

    def invoke(self, *args: str, timeout: float = 300) -> Any:
        return self.repo.invoke(*args, timeout=timeout)

    def worker_up(self) -> None:
        self.repo.invoke("worker-up", "--env", "dev", timeout=300, check=True)


def add_test_flows(root: Path) -> None:
    add_flow(root, "quick", QUICK_FLOW, parameters={"label": "run"})
    add_flow(root, "sleepy", SLEEPY_FLOW, jobs={"sleepy": SLEEPY_JOB})
    add_flow(root, "nojob", NOJOB_FLOW)


@pytest.fixture(scope="session")
def live_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKit]:
    repo = make_kit_repo(tmp_path_factory.mktemp("live") / "repo", project=True)
    add_test_flows(repo.root)
    try:
        repo.invoke("server-up", "--env", "dev", timeout=300, check=True)
        kit = LiveKit(repo, repo.environment("dev"))  # resolved after server-up: with the auth string it wrote
        repo.invoke("deploy", "--env", "dev", timeout=300, check=True)
        kit.worker_up()
        yield kit
    finally:
        down = repo.invoke("server-down", "--env", "dev", "--cancel", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


# --- reading the server from the test --------------------------------------------------------------------


def read_run(env: Environment, run_id: str) -> Any:
    from prefect_julia.kit.access.prefect_api import client_for

    with client_for(env) as client:
        return client.read_flow_run(run_id)


def start_run(env: Environment, deployment: str, **parameters: Any) -> str:
    """Create a run of ``deployment`` (``flow/name``) without waiting; its id."""
    from prefect.deployments import run_deployment

    from prefect_julia.kit.access.prefect_api import settings_for

    with settings_for(env):
        run = run_deployment(deployment, parameters=parameters or None, timeout=0)
    return str(run.id)


def wait_state(env: Environment, run_id: str, states: set[str], timeout: float = 300) -> Any:
    def reached() -> Any:
        run = read_run(env, run_id)
        assert run.state and run.state.name in states, f"run {run_id} is {run.state.name if run.state else '?'}"
        return run

    return eventually(reached, timeout, f"run {run_id} to be one of {sorted(states)}")


def concurrent_runs(repo: KitRepo, count: int, timeout: float = 1800) -> dict[str, Any]:
    """Submit ``count`` runs of ``quick`` at once through the kit's client; wait for every one to end."""
    from prefect_julia.kit.access.prefect_api import client_for
    from prefect_julia.kit.access.security import api_client
    from prefect_julia.kit.run import runs

    env = repo.environment("dev")
    deployment_id = api_client(env).request("GET", "/deployments/name/quick/quick")["id"]

    def submit(i: int) -> str:
        return str(runs.submit(api_client(env, timeout=30), deployment_id, {"count": i})["id"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(submit, i) for i in range(count)]
        ids, failed = [], 0
        for future in futures:
            try:
                ids.append(future.result())
            except Exception as error:  # a submission that failed for good: a lost run
                failed += 1
                print(f"submission failed: {type(error).__name__}: {error}", flush=True)
    states: dict[str, str] = {}
    with client_for(env) as client:

        def ended() -> bool:
            for run_id in ids:
                if run_id not in states or states[run_id] not in FINAL:
                    run = client.read_flow_run(run_id)
                    states[run_id] = run.state.name if run.state else "?"
            return all(states.get(i) in FINAL for i in ids)

        with contextlib.suppress(AssertionError):  # the runs still going are counted as such
            eventually(ended, timeout, f"{len(ids)} runs to end")
    return burst_figures(count, time.perf_counter() - started, states, failed)


def burst_figures(count: int, seconds: float, states: dict[str, str], failed: int) -> dict[str, Any]:
    """A burst's figures from each run's last state: runs/min to the last final state, completed, crashed,
    lost (submissions that failed for good, and runs still going)."""
    final = [s for s in states.values() if s in FINAL]
    return {
        "count": count,
        "seconds": seconds,
        "per_minute": len(final) / seconds * 60,
        "completed": sum(1 for s in final if s == "Completed"),
        "crashed": sum(1 for s in final if s == "Crashed"),
        "other": sorted({s for s in states.values() if s != "Completed"}),
        "lost": failed + sum(1 for s in states.values() if s not in FINAL),
    }


FINAL = {"Completed", "Failed", "Crashed", "Cancelled"}
