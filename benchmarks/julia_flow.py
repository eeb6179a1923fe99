"""Benchmark one Julia program run directly, through the bridge, and inside a Prefect flow run; and the demo.

    .venv/bin/python benchmarks/julia_flow.py [--runs 5] [--no-demo]

With a throwaway Prefect server (temporary PREFECT_HOME, free port), round by round so all three see the
same machine load, after one untimed warm-up of each:
  - direct: ``julia --project=julia --startup-file=no julia/jobs/hello.jl --name=x`` as a subprocess;
  - bridge: ``run_julia("hello", {"name": "x"})``, no flow;
  - flow:   a ``@flow`` calling the ``julia_job`` task, a flow run on that server.
Prints the medians, the overhead over direct in ms and the ratios.

Then the demo end to end: ``invoke demo`` twice in a temporary copy of the kit with the project files (the
first run starts the server and worker), reporting the second, warm run; ``invoke server-down dev`` after.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
JULIA_PROJECT = REPO_ROOT / "julia"
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway servers and kit copies the tests use
from harness import make_kit_repo, start_server  # noqa: E402

PROGRAM = "hello"
NAME = "x"
DEMO_TIMEOUT = 900.0


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@contextmanager
def environ_set(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_prefect_console() -> None:
    """Keep Prefect's console handlers to warnings; run logs still go to the API as usual."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


Way = tuple[str, Callable[[], Any]]


def program_ways(julia: str) -> list[Way]:
    """The ways to run the program, each a (label, action) pair, against the server in PREFECT_API_URL."""
    from prefect import flow
    from prefect_shell import ShellOperation

    from prefect_julia.runtime.bridge import julia_job, run_julia

    direct_cmd = [julia, "--project=julia", "--startup-file=no", f"julia/jobs/{PROGRAM}.jl", f"--name={NAME}"]

    def direct() -> None:
        subprocess.run(direct_cmd, cwd=REPO_ROOT, check=True, capture_output=True, stdin=subprocess.DEVNULL)

    def bridge() -> None:
        run_julia(PROGRAM, {"name": NAME}, project=JULIA_PROJECT)

    @flow(name="bench-shell-hello")
    def shell_flow(name: str) -> Any:
        return ShellOperation(commands=[" ".join([*direct_cmd[:-1], f"--name={name}"])], working_dir=REPO_ROOT).run()

    @flow(name="bench-julia-hello")
    def hello_flow(name: str) -> Any:
        return julia_job(PROGRAM, {"name": name})

    return [
        ("direct subprocess", direct),
        ("@flow + ShellOperation", lambda: shell_flow(NAME)),
        ("run_julia (bridge)", bridge),
        ("@flow + julia_job", lambda: hello_flow(NAME)),
    ]


def program_runs(ways: list[Way], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each way, round by round so all see the same load, after one untimed warm-up."""
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    quiet_prefect_console()
    times: dict[str, list[float]] = {label: [] for label, _ in ways}
    with temporary_settings(updates={PREFECT_API_URL: os.environ["PREFECT_API_URL"]}):
        for _, action in ways:  # warm-up: precompilation, imports, first API calls
            action()
        for _ in range(runs):
            for label, action in ways:
                times[label].append(timed(action))
        APILogHandler().flush()  # send the flow runs' logs while the server is still up
    return times


def demo_runs(tmp: Path) -> tuple[float, float]:
    """Seconds of the first and the second `invoke demo` in a temporary copy of the kit."""
    kit = make_kit_repo(tmp / "demo-repo", project=True)
    try:
        first = timed(lambda: kit.invoke("demo", "dev", timeout=DEMO_TIMEOUT, check=True))
        second = timed(lambda: kit.invoke("demo", "dev", timeout=DEMO_TIMEOUT, check=True))
    finally:
        try:
            kit.invoke("server-down", "dev", timeout=120, check=True)
        finally:
            from prefect_julia.kit import servers

            servers.server_down(kit.environment("dev"))  # nothing left running even if the task failed
    return first, second


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each way")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo end to end")
    args = parser.parse_args(argv)
    julia = shutil.which("julia")
    if julia is None:
        raise SystemExit("julia is not on PATH: run `bash scripts/install-julia.sh`.")

    with tempfile.TemporaryDirectory(prefix="julia-flow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "server").mkdir()
        (tmp / "client").mkdir()
        print("starting a throwaway Prefect server ...", flush=True)
        server = start_server(tmp / "server")
        api_url = server.api_url
        try:
            with environ_set(
                PREFECT_HOME=str(tmp / "client"),
                PREFECT_PROFILES_PATH=str(tmp / "client" / "profiles.toml"),
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PREFECT_API_URL=api_url,
            ):
                times = program_runs(program_ways(julia), args.runs)
        finally:
            server.stop()
        demo: tuple[float, float] | None = None
        if not args.no_demo:
            print("running `invoke demo` twice in a copy of the kit ...", flush=True)
            demo = demo_runs(tmp)

    medians = {label: statistics.median(values) for label, values in times.items()}
    results: dict[str, Any] = {"medians_s": medians}
    direct = medians["direct subprocess"]
    print(f"julia/jobs/{PROGRAM}.jl --name={NAME}, medians of {args.runs}")
    for label, value in medians.items():
        line = f"  {label:<28}: {value * 1e3:8.0f} ms"
        if label != "direct subprocess":
            line += f"   overhead {(value - direct) * 1e3:+7.0f} ms   ratio {value / direct:5.2f}"
        print(line)
    shell, job = medians["@flow + ShellOperation"], medians["@flow + julia_job"]
    print(f"  julia_job flow / ShellOperation flow: {job / shell:5.2f} (target <= 1.0)")
    if demo is not None:
        results.update(demo_first_s=demo[0], demo_warm_s=demo[1])
        print("`invoke demo` end to end")
        print(f"  first run (starts server) : {demo[0]:8.1f} s")
        print(f"  second run (warm server)  : {demo[1]:8.1f} s")
    return results


if __name__ == "__main__":
    main()
