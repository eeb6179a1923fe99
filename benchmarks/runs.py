"""Benchmark deployment runs on a sqlite dev server, through the front door.

    .venv/bin/python benchmarks/runs.py [--concurrent 50] [--trivial 3]

In a temporary copy of the kit with the project (its own dev server on a free port, `invoke server-up`,
`invoke deploy`, `invoke worker-up`):
  - a trivial deployment, `invoke run quick` on the warm server, to Completed (median; target <= 3 s), with
    dev's warm flow start (PREFECT_JULIA_FLOW_START=fork) and with Prefect's own (spawn); beside it the raw
    tool: `prefect deployment run quick/quick --watch` against a plain spawning worker;
  - N deployment runs submitted at once (50 by default): runs per minute from submission to the last final
    state, how many Crashed, how many lost (never final, or never created); target 0 and 0;
  - a Julia job printing 10 MB: run directly (`julia ... loud.jl`) and as a flow run (`invoke run loud`);
    target: the flow run within 2x the direct time + 3 s.
Then `invoke server-down --env dev --cancel`. Then the same burst on Prefect's own server, the raw tool: a fresh
temporary PREFECT_HOME, `prefect server start`, a process work pool, the same `quick` flow deployed with
`flow.from_source(...).deploy(...)`, `prefect worker start`; runs per minute of both and their ratio (kit / raw).
``--only-burst`` measures the two bursts and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway kit copies the tests use
from harness import KitRepo, eventually, free_port, make_kit_repo  # noqa: E402
from live_kit import FINAL, add_test_flows, burst_figures, concurrent_runs  # noqa: E402

sys.path.insert(0, str(HERE))
from bench_report import each, load_line, ratio  # noqa: E402
from prefect_julia.core.prefect_http import ApiClient  # noqa: E402
from prefect_julia.core.processes import spawn_detached, stop_tree  # noqa: E402
from prefect_julia.kit.run import runs  # noqa: E402
from prefect_julia.kit.server.servers import is_healthy  # noqa: E402

RAW_POOL = "raw-bench"
RAW_DEPLOY = """
import sys
from prefect import flow

flow.from_source(source=sys.argv[1], entrypoint="flows/quick.py:quick").deploy(name="quick", work_pool_name=sys.argv[2])
"""

LOUD_JOB = """using PrefectInterfaces
line = repeat("x", 99)
for i in 1:100_000
    println(line)
end
"""

LOUD_FLOW = """
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="loud")
def loud() -> object:
    return julia_job("loud", {})
"""

LOUD_DEPLOYMENT = """  - name: loud
    entrypoint: flows/loud.py:loud
    work_pool: *work_pool
"""


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def invoke(repo: KitRepo, *args: str, timeout: float = 900, **extra: str) -> subprocess.CompletedProcess[str]:
    done = repo.invoke(*args, timeout=timeout, **extra)
    if done.returncode != 0:
        raise RuntimeError(f"`invoke {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def trivial_spawned(repo: KitRepo, count: int) -> tuple[list[float], list[float]]:
    """`invoke run quick` and raw `prefect deployment run --watch`, each ``count`` times, with a worker that
    starts every flow run as a new process (Prefect's way); the dev worker is started again as before after."""
    invoke(repo, "worker-down", "--env", "dev")
    invoke(repo, "worker-up", "--env", "dev", PREFECT_JULIA_FLOW_START="spawn")
    try:
        invoke(repo, "run", "quick")  # warm-up
        spawned = [timed(lambda: invoke(repo, "run", "quick")) for _ in range(count)]
        env = repo.environment("dev").process_env(repo.environ())
        raw_cmd = [sys.executable, "-m", "prefect", "deployment", "run", "quick/quick", "--watch",
                   "--watch-interval", "1"]  # fmt: skip
        raw = [
            timed(lambda: subprocess.run(raw_cmd, cwd=repo.root, env=env, capture_output=True, check=True))
            for _ in range(count)
        ]
    finally:
        invoke(repo, "worker-down", "--env", "dev")
        invoke(repo, "worker-up", "--env", "dev")
    return spawned, raw


def raw_environ(home: Path, port: int) -> dict[str, str]:
    """The process environment of the raw tool: the caller's without its PREFECT_* settings, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def raw_burst(root: Path, home: Path, count: int, timeout: float = 1800) -> dict[str, Any]:
    """``count`` runs of ``quick`` at once on Prefect's own server and worker (a fresh home), measured as the
    kit's burst is: from the first submission to the last final state."""
    home.mkdir(mode=0o700, parents=True)
    port = free_port()
    env = raw_environ(home, port)
    api = ApiClient(env["PREFECT_API_URL"], timeout=30)
    prefect = [sys.executable, "-m", "prefect"]
    server = spawn_detached([*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, log_file=home / "server.log", cwd=root)  # fmt: skip
    worker = None
    try:
        eventually(lambda: is_healthy(env["PREFECT_API_URL"]), 600, "the raw Prefect server to answer")
        subprocess.run([*prefect, "work-pool", "create", RAW_POOL, "--type", "process"], env=env, cwd=root,
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([sys.executable, "-c", RAW_DEPLOY, str(root), RAW_POOL], env=env, cwd=root, check=True,
                       capture_output=True)  # fmt: skip
        worker = spawn_detached([*prefect, "worker", "start", "--pool", RAW_POOL], env=env,
                                log_file=home / "worker.log", cwd=root)  # fmt: skip
        deployment_id = api.request("GET", "/deployments/name/quick/quick")["id"]
        wait_runs(api, [runs.submit(api, deployment_id, {"count": 0})["id"]], timeout)  # warm-up, as the kit's
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(runs.submit, api, deployment_id, {"count": i}) for i in range(count)]
        ids, failed = [], 0
        for future in futures:
            try:
                ids.append(str(future.result()["id"]))
            except Exception as error:  # a submission that failed for good: a lost run
                failed += 1
                print(f"raw submission failed: {type(error).__name__}: {error}", flush=True)
        states = wait_runs(api, ids, timeout)
        return burst_figures(count, time.perf_counter() - started, states, failed)
    finally:
        if worker is not None:
            stop_tree(worker.pid, grace=15)  # the worker before its server, or it hangs retrying
        stop_tree(server.pid, grace=15)


def wait_runs(api: ApiClient, ids: list[str], timeout: float) -> dict[str, str]:
    """The state names of runs ``ids``, once all are final or ``timeout`` s have passed."""
    states: dict[str, str] = {}

    def ended() -> bool:
        body = {"flow_runs": {"id": {"any_": ids}}, "limit": len(ids)}
        for run in api.request("POST", "/flow_runs/filter", body):
            states[str(run["id"])] = (run.get("state") or {}).get("name") or "?"
        return all(states.get(i) in FINAL for i in ids)

    with contextlib.suppress(AssertionError):  # the runs still going are counted as such
        eventually(ended, timeout, f"{len(ids)} raw runs to end")
    return states


def print_burst(label: str, burst: dict[str, Any]) -> None:
    print(f"  {label:<5} {burst['per_minute']:6.1f} runs/min   ({burst['seconds']:.0f} s to the last final state); "
          f"completed {burst['completed']}, crashed {burst['crashed']}, lost {burst['lost']}")  # fmt: skip
    if burst["other"]:
        print(f"        states other than Completed: {', '.join(burst['other'])}")


def kit_part(repo: KitRepo, concurrent: int, trivial_count: int) -> dict[str, Any]:
    """The kit's figures: trivial runs, the burst and the 10 MB Julia job (only the burst when ``trivial_count``
    is 0), then `invoke server-down --env dev --cancel`."""
    found: dict[str, Any] = {}
    try:
        invoke(repo, "server-up", "--env", "dev")
        invoke(repo, "deploy", "--env", "dev")
        invoke(repo, "worker-up", "--env", "dev")
        invoke(repo, "run", "quick")  # warm-up: first flow-run process, compiled caches
        if trivial_count:
            found["trivial"] = [timed(lambda: invoke(repo, "run", "quick")) for _ in range(trivial_count)]
            found["spawned"], found["raw"] = trivial_spawned(repo, trivial_count)
        print(f"running {concurrent} deployment runs at once on the kit's server ({load_line()}) ...", flush=True)
        found["burst"] = concurrent_runs(repo, concurrent)
        print_burst("kit", found["burst"])  # at once: the raw burst may take many minutes
        if trivial_count:
            julia = os.environ.get("PREFECT_JULIA_BIN") or "julia"
            direct_cmd = [julia, f"--project={repo.root / 'julia'}", "--startup-file=no", "julia/jobs/loud.jl"]
            env = repo.environment("dev").process_env(repo.environ())
            found["direct"] = timed(
                lambda: subprocess.run(direct_cmd, cwd=repo.root, env=env, stdout=subprocess.DEVNULL, check=True)
            )
            found["flow"] = timed(lambda: invoke(repo, "run", "loud"))
    finally:
        repo.invoke("server-down", "--env", "dev", "--cancel", timeout=300)
    return found


def print_trivial(found: dict[str, Any]) -> None:
    trivial, spawned, raw = found["trivial"], found["spawned"], found["raw"]
    print(f"trivial deployment `invoke run quick` to Completed, warm server (median of {len(trivial)})")
    print(f"  {statistics.median(trivial):6.2f} s   (target <= 3 s; each: {each(trivial)})")
    median_raw = statistics.median(raw)
    print(f"  spawn    {statistics.median(spawned):6.2f} s   (each: {each(spawned)})")
    print(f"  raw `prefect deployment run quick/quick --watch`, spawning worker: {median_raw:.2f} s")
    print(f"  ratio invoke run (fork) / raw = {statistics.median(trivial) / median_raw:.2f}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--trivial", type=int, default=3)
    parser.add_argument("--only-burst", action="store_true", help="the two bursts (kit, raw) and nothing else")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        repo = make_kit_repo(Path(tmp) / "repo", project=True)
        add_test_flows(repo.root)
        (repo.root / "flows" / "loud.py").write_text(LOUD_FLOW)
        (repo.root / "julia" / "jobs" / "loud.jl").write_text(LOUD_JOB)
        with (repo.root / "prefect.yaml").open("a") as decl:
            decl.write(LOUD_DEPLOYMENT)
        print("starting the kit's dev server, deployments and worker in a copy of the kit ...", flush=True)
        found = kit_part(repo, args.concurrent, 0 if args.only_burst else args.trivial)
        print(f"the same burst on Prefect's own server and worker ({load_line()}) ...", flush=True)
        found["raw_burst"] = raw_burst(repo.root, Path(tmp) / "raw-home", args.concurrent)
    if "trivial" in found:
        print_trivial(found)
    burst, raw = found["burst"], found["raw_burst"]
    print(f"{burst['count']} deployment runs submitted at once, sqlite, the same `quick` flow   (kit target: 0 and 0)")
    print_burst("kit", burst)
    print_burst("raw", raw)
    print(f"  ratio kit / raw (runs/min) = {ratio(burst['per_minute'], raw['per_minute']):.2f}   ({load_line()})")
    if "flow" in found:
        direct, flow = found["direct"], found["flow"]
        print("Julia job printing 10 MB (100,000 lines)")
        print(f"  direct   {direct:6.2f} s")
        print(f"  flow run {flow:6.2f} s   = {flow / direct:.2f}x direct (target <= 2x + 3 s = {2 * direct + 3:.1f} s)")
    return found


if __name__ == "__main__":
    main(sys.argv[1:])
