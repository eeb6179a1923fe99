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
Then `invoke server-down --env dev --cancel`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway kit copies the tests use
from harness import KitRepo, make_kit_repo  # noqa: E402
from live_kit import add_test_flows, concurrent_runs  # noqa: E402

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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--trivial", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        repo = make_kit_repo(Path(tmp) / "repo", project=True)
        add_test_flows(repo.root)
        (repo.root / "flows" / "loud.py").write_text(LOUD_FLOW)
        (repo.root / "julia" / "jobs" / "loud.jl").write_text(LOUD_JOB)
        with (repo.root / "prefect.yaml").open("a") as decl:
            decl.write(LOUD_DEPLOYMENT)
        print("starting the kit's dev server, deployments and worker in a copy of the kit ...", flush=True)
        try:
            invoke(repo, "server-up", "--env", "dev")
            invoke(repo, "deploy", "--env", "dev")
            invoke(repo, "worker-up", "--env", "dev")
            invoke(repo, "run", "quick")  # warm-up: first flow-run process, compiled caches
            trivial = [timed(lambda: invoke(repo, "run", "quick")) for _ in range(args.trivial)]
            spawned, raw = trivial_spawned(repo, args.trivial)
            print(f"running {args.concurrent} deployment runs at once ...", flush=True)
            burst = concurrent_runs(repo, args.concurrent)
            julia = os.environ.get("PREFECT_JULIA_BIN") or "julia"
            direct_cmd = [julia, f"--project={repo.root / 'julia'}", "--startup-file=no", "julia/jobs/loud.jl"]
            env = repo.environment("dev").process_env(repo.environ())
            direct = timed(
                lambda: subprocess.run(direct_cmd, cwd=repo.root, env=env, stdout=subprocess.DEVNULL, check=True)
            )
            flow = timed(lambda: invoke(repo, "run", "loud"))
        finally:
            repo.invoke("server-down", "--env", "dev", "--cancel", timeout=300)
    print(f"trivial deployment `invoke run quick` to Completed, warm server (median of {args.trivial})")
    print(f"  {statistics.median(trivial):6.2f} s   (target <= 3 s; each: {', '.join(f'{t:.1f}' for t in trivial)})")
    median_raw = statistics.median(raw)
    print(f"  spawn    {statistics.median(spawned):6.2f} s   (each: {', '.join(f'{t:.1f}' for t in spawned)})")
    print(f"  raw `prefect deployment run quick/quick --watch`, spawning worker: {median_raw:.2f} s")
    print(f"  ratio invoke run (fork) / raw = {statistics.median(trivial) / median_raw:.2f}")
    print(f"{burst['count']} deployment runs submitted at once (sqlite dev server)")
    print(f"  {burst['per_minute']:6.1f} runs/min   ({burst['seconds']:.0f} s to the last final state)")
    print(f"  completed {burst['completed']}, crashed {burst['crashed']}, lost {burst['lost']}   (target: 0 and 0)")
    if burst["other"]:
        print(f"  states other than Completed: {', '.join(burst['other'])}")
    limit = 2 * direct + 3
    print("Julia job printing 10 MB (100,000 lines)")
    print(f"  direct   {direct:6.2f} s")
    print(f"  flow run {flow:6.2f} s   = {flow / direct:.2f}x direct (target <= 2x + 3 s = {limit:.1f} s)")
    return {"trivial": trivial, "burst": burst, "direct": direct, "flow": flow}


if __name__ == "__main__":
    main(sys.argv[1:])
