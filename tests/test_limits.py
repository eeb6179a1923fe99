"""Concurrency limits per deployment and per work pool, declared in prefect.yaml, applied by `invoke deploy`.

A real server and a real process worker: more runs are started than the limits allow; the extra ones wait,
then finish.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import KitRepo, RunningServer, make_kit_repo
from harness import api, eventually
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.declarations import limits
from prefect_julia.kit.worker import workers

FLOWS = """
import time

from prefect import flow


@flow(name="lim-one")
def one() -> None:
    time.sleep(2)


@flow(name="lim-free")
def free() -> None:
    time.sleep(2)
"""


def _entry(name: str, fn: str, limit: object = None, pool_limit: object = None) -> str:
    text = f"  - name: {name}\n    entrypoint: flows/lim.py:{fn}\n"
    if limit is not None:
        text += f"    concurrency_limit: {limit}\n"
    text += "    work_pool:\n      name: '{{ $PREFECT_JULIA_WORK_POOL }}'\n"
    if pool_limit is not None:
        text += f"      concurrency_limit: {pool_limit}\n"
    return text


def _repo(tmp_path: Path, *entries: str, **local: str) -> KitRepo:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    (repo.root / "flows" / "lim.py").write_text(FLOWS)
    _declare(repo, *entries)
    with (repo.root / "envs" / "dev.local.env").open("a") as env_file:
        env_file.write("".join(f"{k}={v}\n" for k, v in local.items()))
    return repo


def _declare(repo: KitRepo, *entries: str) -> None:
    declared = (repo.root / "prefect.yaml").read_text()
    head = declared[: declared.index("\ndeployments:")]
    (repo.root / "prefect.yaml").write_text(head + "\ndeployments:\n" + "".join(entries))


def _api(server: RunningServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return api(server.api_url, method, path, body)


def _most_at_once(runs: list[dict[str, Any]]) -> int:
    """The largest number of ``runs`` Running at the same moment, from their start and end times."""
    edges = []
    for run in runs:
        edges += [(datetime.fromisoformat(run["start_time"]), 1), (datetime.fromisoformat(run["end_time"]), -1)]
    most = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        current += step
        most = max(most, current)
    return most


@pytest.mark.server
def test_extra_runs_wait_for_a_slot_then_finish(tmp_path: Path, prefect_server: RunningServer) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    pool = f"lim-{uuid.uuid4().hex[:8]}"
    repo = _repo(
        tmp_path,
        _entry("one", "one", limit=1, pool_limit=2),
        _entry("free", "free", pool_limit=2),
        PREFECT_API_URL=prefect_server.api_url,
        PREFECT_JULIA_WORK_POOL=pool,
    )
    env = repo.environment("dev")
    deployed = repo.invoke("deploy", "--env", "dev", check=True)
    assert f"work pool {pool}: at most 2 runs at once" in deployed.stdout
    found = _api(prefect_server, "POST", "/deployments/filter", {"work_pools": {"name": {"any_": [pool]}}})
    assert {d["name"]: (d["global_concurrency_limit"] or {}).get("limit") for d in found} == {"one": 1, "free": None}

    try:
        workers.worker_up(env, repo.environ(PREFECT_WORKER_QUERY_SECONDS="2"), timeout=120)  # polls every 2 s
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
            ids = [run_deployment("lim-one/one", timeout=0).id for _ in range(3)]
            ids += [run_deployment("lim-free/free", timeout=0).id for _ in range(2)]

        def runs() -> list[dict[str, Any]]:
            return _api(
                prefect_server, "POST", "/flow_runs/filter", {"flow_runs": {"id": {"any_": [str(i) for i in ids]}}}
            )

        def all_final() -> bool:
            states = [r["state"] for r in runs()]
            assert all(s["type"] in ("COMPLETED", "FAILED", "CRASHED") for s in states), [s["name"] for s in states]
            return True

        eventually(all_final, 300, "the five runs to end")
    finally:
        workers.worker_down(env)

    finished = runs()
    assert [r["state"]["name"] for r in finished] == ["Completed"] * 5
    of_one = [r for r in finished if str(r["id"]) in {str(i) for i in ids[:3]}]
    assert _most_at_once(of_one) == 1  # the deployment's limit held
    assert _most_at_once(finished) <= 2  # the pool's limit held
    waited = [
        r for r in of_one
        if any(s["name"] == "AwaitingConcurrencySlot" for s in _api(prefect_server, "GET", f"/flow_run_states/?flow_run_id={r['id']}"))
    ]  # fmt: skip
    assert waited, "no run of the limited deployment ever waited for a slot"

    # Removing the limits from prefect.yaml removes them from the server.
    _declare(repo, _entry("one", "one"), _entry("free", "free"))
    again = repo.invoke("deploy", "--env", "dev", check=True)
    assert f"work pool {pool}: no limit" in again.stdout
    assert _api(prefect_server, "GET", f"/work_pools/{pool}")["concurrency_limit"] is None
    found = _api(prefect_server, "POST", "/deployments/filter", {"work_pools": {"name": {"any_": [pool]}}})
    assert all(d["global_concurrency_limit"] is None for d in found), found


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ((_entry("one", "one", limit=0),), "concurrency_limit = 0 is below 1"),
        ((_entry("one", "one", limit="two"),), "concurrency_limit = 'two' is not a whole number"),
        ((_entry("one", "one", pool_limit=-1),), "work_pool: concurrency_limit = -1 is below 1"),
        ((_entry("one", "one", pool_limit=2), _entry("free", "free", pool_limit=3)), "different concurrency limits"),
    ],
)
def test_bad_limits_stop_deploy_before_anything_is_applied(
    tmp_path: Path, entries: tuple[str, ...], problem: str
) -> None:
    repo = _repo(tmp_path, *entries)
    with pytest.raises(ConfigError, match="nothing was applied") as raised:
        limits.declared(repo.root, "dev")
    assert problem in str(raised.value) and "fix:" in str(raised.value)
    run = repo.invoke("deploy", "--env", "dev")  # no server runs: the check comes before any connection
    assert run.returncode == ConfigError.exit_code and problem in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
