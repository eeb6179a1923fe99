"""Benchmark many concurrent deployment runs on a prod server on PostgreSQL against the same on sqlite.

    .venv/bin/python benchmarks/team_load.py [--runs 50] [--kinds postgresql,sqlite] [--kill-db]

For each database kind, in a throwaway kit repository (in a folder the ``postgres`` user can enter):
``invoke server-up --env prod``, ``invoke deploy --env prod`` of one small flow, ``invoke worker-up --env prod``, then ``--runs``
flow runs created at once; it waits for all of them and prints Completed / Crashed / Failed / lost and runs
per minute. ``--kill-db`` (postgresql) kills PostgreSQL with SIGKILL once half the runs finished, runs
``invoke server-up --env prod`` and checks that finished runs, blocks and deployments are all still there.
Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect_julia.kit.server import postgres

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from harness import make_kit_repo  # noqa: E402

FLOW = """from prefect import flow


@flow
def tick(n: int = 0) -> int:
    return n * 2
"""
PREFECT_YAML = """name: load
prefect-version: 3.8.8
deployments:
  - name: tick
    entrypoint: flows/tick.py:tick
    parameters: {n: 0}
    work_pool:
      name: "{{ $PREFECT_JULIA_WORK_POOL }}"
"""
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


async def _create_and_wait(api_url: str, runs: int, on_half: Any, timeout: float) -> dict[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("tick/tick")
            created = await asyncio.gather(
                *(client.create_flow_run_from_deployment(deployment.id, parameters={"n": i}) for i in range(runs)),
                return_exceptions=True,
            )
            ids = [run.id for run in created if not isinstance(run, BaseException)]
            refused = runs - len(ids)  # e.g. 503 from a busy sqlite database: never created
            runs = len(ids)
            deadline = time.monotonic() + timeout
            half_done = False
            while True:
                states: dict[str, int] = {}
                for run_id in ids:
                    try:
                        run = await client.read_flow_run(run_id)
                        kind = run.state.type.value if run.state else "NONE"
                    except Exception:  # the server is restarting
                        kind = "UNKNOWN"
                    states[kind] = states.get(kind, 0) + 1
                done = sum(v for k, v in states.items() if k in TERMINAL)
                if not half_done and done >= runs // 2 and on_half is not None:
                    half_done = True
                    on_half()
                if done == runs or time.monotonic() > deadline:
                    states["REFUSED"] = refused
                    return states
                await asyncio.sleep(2)


def _load(kind: str, runs: int, kill_db: bool, work: Path) -> None:
    repo = make_kit_repo(work / kind / "repo", branch="main")
    (repo.root / "flows").mkdir(exist_ok=True)
    (repo.root / "flows" / "tick.py").write_text(FLOW)
    (repo.root / "prefect.yaml").write_text(PREFECT_YAML)
    with (repo.root / "envs" / "prod.local.env").open("a") as local:
        local.write(f"PREFECT_JULIA_DATABASE={kind}\nPREFECT_JULIA_CODE_SOURCE=tree\n")
    api = f"http://127.0.0.1:{repo.ports['prod']}/api"
    try:
        for step in (("server-up", "--env", "prod"), ("deploy", "--env", "prod"), ("worker-up", "--env", "prod")):
            repo.invoke(*step, check=True, timeout=600)

        def kill_and_recover() -> None:
            pid = postgres.Cluster(repo.environment("prod")).pid()
            if pid is None:
                return
            os.kill(pid, signal.SIGKILL)
            print(f"  killed PostgreSQL (pid {pid}) with half the runs finished", flush=True)
            up = repo.invoke("server-up", "--env", "prod", timeout=600)
            print(f"  server-up prod: exit {up.returncode} {up.stdout.strip().splitlines()[-1:]}", flush=True)
            repo.invoke("worker-up", "--env", "prod", timeout=600)

        started = time.perf_counter()
        states = asyncio.run(_create_and_wait(api, runs, kill_and_recover if kill_db else None, timeout=1800))
        minutes = (time.perf_counter() - started) / 60
        finished = sum(v for k, v in states.items() if k in TERMINAL)
        print(
            f"{kind:10} {runs} runs: {states.get('REFUSED', 0)} refused at creation, {states.get('COMPLETED', 0)} "
            f"Completed, {states.get('CRASHED', 0)} Crashed, {states.get('FAILED', 0)} Failed, "
            f"{runs - finished - states.get('REFUSED', 0)} not finished; "
            f"{states.get('COMPLETED', 0) / minutes:6.1f} completed runs/min",
            flush=True,
        )
    finally:
        repo.invoke("server-down", "--env", "prod", "--cancel", timeout=300)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--kinds", default="postgresql,sqlite")
    parser.add_argument("--kill-db", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pj-bench-load-"))
    work.chmod(0o755)  # the postgres user enters it when the kit runs as root
    try:
        for kind in args.kinds.split(","):
            _load(kind.strip(), args.runs, args.kill_db and kind.strip() == "postgresql", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
