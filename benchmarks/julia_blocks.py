"""Benchmark PrefectInterfaces (Julia) block lookups and load time against a real Prefect server.

    .venv/bin/python benchmarks/julia_blocks.py [--rounds 30]

Starts a throwaway Prefect server (temporary PREFECT_HOME, free port), saves a LocalFileSystem block,
then, alternating round by round so both see the same server:
  - a warm Julia process loads the block with `PrefectBlock("local-file-system/bench")`,
  - `curl` makes the same REST request (GET .../block_documents/name/bench?include_secrets=true).
Prints the medians and their ratio (target <= 1.5), and the time of `using PrefectInterfaces` in a fresh
process with the `julia -e 1` baseline subtracted (target < 0.5 s).

Then a job of 3 dataset operations (write, read, readcsv) through PREFECT_DATA_BLOCK_LOCAL: the requests
it sends to the Prefect API (the package's own request counter; target 1, the block fetch) and its time,
against the same job with the block cache off (one fetch per operation), in the same warm process, plus
the wall time of the job as a fresh `julia` process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway servers and kit copies the tests use
from harness import start_server  # noqa: E402

JULIA_PROJECT = REPO_ROOT / "julia"
BLOCK = "local-file-system/bench"
RATIO_TARGET = 1.5
LOAD_TARGET_S = 0.5

JOB_TARGET_REQUESTS = 1

JULIA_JOB = r"""
using PrefectInterfaces
const PI = PrefectInterfaces
function job(name)
    ds = Dataset(name; datastore_type="local")
    write(ds, "a,b\n1,2\n")
    read(ds, String)
    readcsv(ds)
end
function measured(name)
    PI.clear_block_cache!()
    before = PI.REQUESTS_SENT[]
    t = time_ns()
    job(name)
    return PI.REQUESTS_SENT[] - before, (time_ns() - t) / 1e9
end
if get(ARGS, 1, "") == "once"
    n, dt = measured("bench_once")
    println(n, " ", dt)
else
    measured("bench_warmup")                       # compile
    rounds = parse(Int, ARGS[1])
    cached = [measured("bench_cached") for _ in 1:rounds]
    PI.BLOCK_CACHE_SECONDS[] = 0.0
    uncached = [measured("bench_uncached") for _ in 1:rounds]
    for (n, dt) in cached; println("cached ", n, " ", dt); end
    for (n, dt) in uncached; println("uncached ", n, " ", dt); end
end
"""

JULIA_WARM = r"""
using PrefectInterfaces
api = PrefectAPI()
name = ARGS[1]
PrefectBlock(name; api=api)          # compile and warm up
println("ready"); flush(stdout)
while (line = readline(stdin)) == "go"
    t = time_ns()
    b = PrefectBlock(name; api=api)
    dt = (time_ns() - t) / 1e9
    b.block isa LocalFSBlock || error("unexpected block")
    println(dt); flush(stdout)
end
"""


def save_block(env: dict[str, str], basepath: Path) -> None:
    code = (
        "from prefect.filesystems import LocalFileSystem\n"
        f"LocalFileSystem(basepath={str(basepath)!r}).save('bench', overwrite=True)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdin=subprocess.DEVNULL)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def lookups(julia: str, curl: str, api_url: str, env: dict[str, str], rounds: int) -> tuple[list[float], list[float]]:
    url = f"{api_url}/block_types/slug/local-file-system/block_documents/name/bench?include_secrets=true"
    curl_cmd = [curl, "--silent", "--show-error", "--fail", "-H", "Accept: application/json", "-o", "/dev/null", url]
    proc = subprocess.Popen(
        [julia, f"--project={JULIA_PROJECT}", "--startup-file=no", "-e", JULIA_WARM, BLOCK],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the Julia benchmark process did not start")
        for _ in range(3):
            timed(curl_cmd, env)
        jl: list[float] = []
        cu: list[float] = []
        for _ in range(rounds):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            jl.append(float(proc.stdout.readline()))
            cu.append(timed(curl_cmd, env))
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return jl, cu


def load_times(julia: str, env: dict[str, str], runs: int) -> tuple[float, float]:
    base = [julia, "--startup-file=no"]
    load = [julia, f"--project={JULIA_PROJECT}", "--startup-file=no", "-e", "using PrefectInterfaces"]
    timed(load, env)  # precompile if needed
    baseline = statistics.median(timed([*base, "-e", "1"], env) for _ in range(runs))
    loaded = statistics.median(timed(load, env) for _ in range(runs))
    return baseline, loaded


def dataset_job(julia: str, env: dict[str, str], rounds: int) -> dict[str, float]:
    """The 3-operation job: requests and median times, cache on and off (warm), and a fresh process."""
    env = {**env, "PREFECT_DATA_BLOCK_LOCAL": BLOCK}
    cmd = [julia, f"--project={JULIA_PROJECT}", "--startup-file=no", "-e", JULIA_JOB]
    out = subprocess.run([*cmd, str(rounds)], env=env, check=True, capture_output=True, text=True).stdout
    runs: dict[str, list[tuple[int, float]]] = {"cached": [], "uncached": []}
    for line in out.splitlines():
        kind, n, dt = line.split()
        runs[kind].append((int(n), float(dt)))
    t = time.perf_counter()
    once = subprocess.run([*cmd, "once"], env=env, check=True, capture_output=True, text=True).stdout.split()
    fresh_s = time.perf_counter() - t
    return {
        "job_requests": max(n for n, _ in runs["cached"]),
        "job_requests_uncached": max(n for n, _ in runs["uncached"]),
        "job_ms": statistics.median(dt for _, dt in runs["cached"]) * 1e3,
        "job_uncached_ms": statistics.median(dt for _, dt in runs["uncached"]) * 1e3,
        "job_fresh_requests": int(once[0]),
        "job_fresh_s": fresh_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="block lookups per client")
    parser.add_argument("--load-runs", type=int, default=5, help="fresh processes per load-time figure")
    args = parser.parse_args(argv)

    julia = shutil.which("julia")
    curl = shutil.which("curl")
    if julia is None:
        raise SystemExit("julia is not on PATH: run `bash scripts/install-julia.sh`.")
    if curl is None:
        raise SystemExit("curl is not on PATH: install it (apt-get install curl).")

    with tempfile.TemporaryDirectory(prefix="julia-bench-") as tmp:
        home = Path(tmp)
        print("starting a throwaway Prefect server ...", flush=True)
        server = start_server(home)
        api_url, env = server.api_url, server.env()
        try:
            save_block(env, home / "data")
            for var in ("PREFECT_JULIA_LOG_FORMAT", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
                env.pop(var, None)
            jl, cu = lookups(julia, curl, api_url, env, args.rounds)
            baseline, loaded = load_times(julia, env, args.load_runs)
            job = dataset_job(julia, env, args.rounds)
        finally:
            server.stop()

    version = subprocess.run(
        [julia, "--startup-file=no", "-e", "print(VERSION)"], capture_output=True, text=True, check=True
    ).stdout
    julia_ms, curl_ms = statistics.median(jl) * 1e3, statistics.median(cu) * 1e3
    ratio = julia_ms / curl_ms
    load_s = loaded - baseline
    results = {
        "julia_version": version,
        "rounds": args.rounds,
        "julia_lookup_ms": julia_ms,
        "curl_lookup_ms": curl_ms,
        "ratio": ratio,
        "julia_baseline_s": baseline,
        "using_total_s": loaded,
        "using_s": load_s,
        **job,
    }
    print(f"Julia {version}, {args.rounds} rounds, medians")
    print(f"  block lookup, warm Julia process : {julia_ms:8.2f} ms")
    print(f"  same request with curl           : {curl_ms:8.2f} ms")
    print(
        f"  ratio Julia / curl               : {ratio:8.2f}   (target <= {RATIO_TARGET}: "
        f"{'met' if ratio <= RATIO_TARGET else 'MISSED'})"
    )
    print(f"  julia -e 1 (baseline)            : {baseline:8.3f} s")
    print(f"  using PrefectInterfaces (total)  : {loaded:8.3f} s")
    print(
        f"  using PrefectInterfaces (- base) : {load_s:8.3f} s   (target < {LOAD_TARGET_S} s: "
        f"{'met' if load_s < LOAD_TARGET_S else 'MISSED'})"
    )
    job_ok = job["job_requests"] <= JOB_TARGET_REQUESTS and job["job_fresh_requests"] <= JOB_TARGET_REQUESTS
    print("  dataset job (write, read, readcsv through PREFECT_DATA_BLOCK_LOCAL)")
    print(
        f"    requests sent, block cache on  : {job['job_requests']:8.0f}   (target {JOB_TARGET_REQUESTS} block fetch: "
        f"{'met' if job_ok else 'MISSED'})"
    )
    print(f"    requests sent, block cache off : {job['job_requests_uncached']:8.0f}")
    print(f"    time, warm process, cache on   : {job['job_ms']:8.2f} ms")
    print(f"    time, warm process, cache off  : {job['job_uncached_ms']:8.2f} ms")
    print(f"    ratio cache on / off           : {job['job_ms'] / job['job_uncached_ms']:8.2f}")
    print(
        f"    fresh process, whole job       : {job['job_fresh_s']:8.3f} s "
        f"({job['job_fresh_s'] - baseline:.3f} s beyond julia -e 1; {job['job_fresh_requests']:.0f} request)"
    )
    return results


if __name__ == "__main__":
    main()
