"""Benchmark a Julia job run directly, with prefect-shell, through the bridge (fresh and warm), and the demo.

    .venv/bin/python benchmarks/julia_flow.py [--runs 5] [--no-demo]

With a throwaway Prefect server (temporary PREFECT_HOME, free port), round by round so every way sees the
same machine load, after one untimed warm-up of each, for ``julia/jobs/hello.jl --name=x``:
  - direct subprocess: ``julia --project=julia --startup-file=no julia/jobs/hello.jl --name=x``;
  - ``@flow`` + prefect-shell's ``ShellOperation`` running that command;
  - ``run_julia`` (no flow), and ``@flow`` + ``julia_job``, with ``PREFECT_JULIA_SESSION=fresh`` and ``warm``;
  - the same fresh, started with the Julia image: the default experience. Where none matches the code, the
    kit's own background build is started (as ``invoke deploy`` / ``worker-up`` / a first fresh job do, at
    nice 19) and waited for; the seconds until the image was current are reported.
The default experience (``@flow + julia_job``, image built by itself) is printed against the
``ShellOperation`` flow of the same run.
Prints the medians, the overhead over direct and the ratios; then, for a warm session, the Nth call over the
first call (which starts the session); then a job printing 10 MB run directly and as a flow run (with its logs
delivered to the server).

Then the demo end to end: ``invoke demo`` twice in a temporary copy of the kit with the project files (the
first run starts the server and worker), reporting the second, warm run; the demo's Julia job in a warm
session (Nth over first call); ``invoke run daily`` to Completed; ``invoke server-down --env dev`` after.
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
LOUD_LINES = 100_000  # x 101 bytes: about 10 MB of output
LOUD = f'for i in 1:{LOUD_LINES}\n    println("line ", lpad(i, 6), " ", "x"^88)\nend\n'


def program_ways(julia: str) -> list[Way]:
    """The ways to run the program, each a (label, action) pair, against the server in PREFECT_API_URL."""
    from prefect import flow
    from prefect_shell import ShellOperation

    from prefect_julia.runtime.bridge import CommandParts, julia_job, run_julia

    direct_cmd = [julia, "--project=julia", "--startup-file=no", f"julia/jobs/{PROGRAM}.jl", f"--name={NAME}"]

    def direct() -> None:
        subprocess.run(direct_cmd, cwd=REPO_ROOT, check=True, capture_output=True, stdin=subprocess.DEVNULL)

    @flow(name="bench-shell-hello")
    def shell_flow(name: str) -> Any:
        command = " ".join([*direct_cmd[:-1], f"--name={name}"])
        return ShellOperation(commands=[command], working_dir=REPO_ROOT).run()

    @flow(name="bench-julia-hello")
    def hello_flow(name: str) -> Any:
        return julia_job(PROGRAM, {"name": name})

    def bridge(session: str, image: str = "off") -> Callable[[], Any]:
        def action() -> None:
            with environ_set(PREFECT_JULIA_IMAGE=image):
                done = run_julia(PROGRAM, {"name": NAME}, project=JULIA_PROJECT, session=session)
            if image == "auto" and CommandParts.of(done.command).image is None:
                raise RuntimeError("the Julia image was not used: " + " ".join(done.command))

        return action

    def in_flow(session: str, image: str = "off") -> Callable[[], Any]:
        def action() -> None:
            with environ_set(
                PREFECT_JULIA_SESSION=session, PREFECT_JULIA_PROJECT=str(JULIA_PROJECT), PREFECT_JULIA_IMAGE=image
            ):
                hello_flow(NAME)

        return action

    return [
        ("direct subprocess", direct),
        ("@flow + ShellOperation", lambda: shell_flow(NAME)),
        ("run_julia fresh", bridge("fresh")),
        ("@flow + julia_job fresh", in_flow("fresh")),
        ("run_julia fresh + image", bridge("fresh", "auto")),
        ("@flow + julia_job fresh + image", in_flow("fresh", "auto")),
        ("run_julia warm", bridge("warm")),
        ("@flow + julia_job warm", in_flow("warm")),
    ]


def program_runs(ways: list[Way], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each way, round by round so all see the same load, after one untimed warm-up."""
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    quiet_prefect_console()
    times: dict[str, list[float]] = {label: [] for label, _ in ways}
    with temporary_settings(updates={PREFECT_API_URL: os.environ["PREFECT_API_URL"]}):
        for _, action in ways:  # warm-up: precompilation, imports, first API calls, the warm session
            action()
        for _ in range(runs):
            for label, action in ways:
                times[label].append(timed(action))
        APILogHandler().flush()  # send the flow runs' logs while the server is still up
    return times


def warm_calls(call: Callable[[], Any], runs: int, folder: Path) -> tuple[float, float]:
    """(first call with no session, median of the next ``runs`` calls) in seconds."""
    from prefect_julia.runtime import julia_session

    julia_session.stop_sessions(folder)
    first = timed(call)
    return first, statistics.median(timed(call) for _ in range(runs))


def loud_runs(julia: str, tmp: Path) -> tuple[float, float, int]:
    """(direct seconds, flow-run seconds with its logs delivered, log records on the server) for 10 MB."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_julia.runtime.bridge import julia_job

    program = tmp / "loud.jl"
    program.write_text(LOUD)
    command = [julia, f"--project={JULIA_PROJECT}", "--startup-file=no", str(program)]
    direct = timed(lambda: subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL))

    @flow(name="bench-julia-loud")
    def loud_flow() -> Any:
        return julia_job(str(program), {}, anywhere=True)  # a program outside julia/jobs: allowed here

    state: Any = None

    def as_flow_run() -> None:
        nonlocal state
        state = loud_flow(return_state=True)
        APILogWorker.drain_all(timeout=300)

    with temporary_settings(updates={PREFECT_API_URL: os.environ["PREFECT_API_URL"]}):
        in_flow = timed(as_flow_run)
        if not state.is_completed():  # a failed run is no measurement
            raise RuntimeError(f"the 10 MB flow run ended {state.name}: {state.message}")
        with get_client(sync_client=True) as client:
            flow_run_id = state.state_details.flow_run_id
            records = len(client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))))
    return direct, in_flow, records


def demo_runs(tmp: Path, runs: int) -> dict[str, float]:
    """`invoke demo` twice, the demo's Julia job in a warm session, `invoke run daily`, in a copy of the kit."""
    kit = make_kit_repo(tmp / "demo-repo", project=True)
    figures: dict[str, float] = {}
    try:
        figures["demo_first_s"] = timed(lambda: kit.invoke("demo", "--env", "dev", timeout=DEMO_TIMEOUT, check=True))
        figures["demo_warm_s"] = timed(lambda: kit.invoke("demo", "--env", "dev", timeout=DEMO_TIMEOUT, check=True))
        figures["run_daily_s"] = statistics.median(
            timed(lambda: kit.invoke("run", "daily", timeout=DEMO_TIMEOUT, check=True)) for _ in range(3)
        )
        figures.update(demo_job_warm(kit, runs))
    finally:
        try:
            kit.invoke("server-down", "--env", "dev", timeout=120, check=True)
        finally:
            from prefect_julia.kit.server import servers

            servers.server_down(kit.environment("dev"))  # nothing left running even if the task failed
    return figures


def ensure_image() -> float:
    """The Julia image of ``julia/`` as a user gets it: built by itself in the background (the kit's trigger)
    unless it matches the code; the seconds until it was current (0: it was)."""
    from prefect_julia.kit.julia import images
    from prefect_julia.runtime.julia_image import running_build

    environ = {**os.environ, "PREFECT_JULIA_PROJECT": str(JULIA_PROJECT), "PREFECT_JULIA_IMAGE": "auto"}
    if images.image_state(environ)[0] == "current":
        print(images.status_line(environ), flush=True)
        return 0.0
    started = time.perf_counter()
    start = images.start_in_background(environ, say=lambda line: print(f"  {line}", flush=True))
    image = images.image_of(environ)
    while running_build(image.path.parent) is not None:
        time.sleep(2)  # a benchmark waits for the build it measures
    line = images.status_line(environ)
    if line != "Julia image: current":
        raise SystemExit(f"the background build did not make the image current ({start.state}): {line}")
    seconds = time.perf_counter() - started
    print(f"  the Julia image was built by itself in {seconds:.0f} s (nice 19): {image.path}", flush=True)
    return seconds


def demo_job_warm(kit: Any, runs: int) -> dict[str, float]:
    """The demo's Julia job (reads and writes CSV through blocks): fresh without and with the Julia image, and
    in a warm session (first and Nth call)."""
    from prefect_julia.kit.julia import sessions
    from prefect_julia.runtime.bridge import run_julia
    from prefect_julia.runtime.julia_image import image_dir

    env = kit.environment("dev")
    # The images folder ensure_image() built in (the kit copy's environment leaves out the caller's settings).
    environ = {**env.process_env(kit.environ()), "PREFECT_JULIA_IMAGE_DIR": str(image_dir(os.environ))}
    parameters = {"dataset_name": "sensor_readings", "datastore_type": "local", "output_name": "bench_summary"}

    def call(session: str) -> Callable[[], Any]:
        return lambda: run_julia("summarize_readings", parameters, env=environ, session=session)

    def with_image(image: str) -> Callable[[], Any]:
        return lambda: run_julia(
            "summarize_readings", parameters, env={**environ, "PREFECT_JULIA_IMAGE": image}, session="fresh"
        )

    fresh = statistics.median(timed(with_image("off")) for _ in range(runs))
    fresh_image = statistics.median(timed(with_image("auto")) for _ in range(runs))
    first, nth = warm_calls(call("warm"), runs, sessions.folder(env))
    return {
        "demo_job_fresh_s": fresh,
        "demo_job_fresh_image_s": fresh_image,
        "demo_job_warm_first_s": first,
        "demo_job_warm_nth_s": nth,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each way")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo end to end")
    args = parser.parse_args(argv)
    julia = shutil.which("julia")
    if julia is None:
        raise SystemExit("julia is not on PATH: run `bash scripts/install-julia.sh`.")

    from prefect_julia.runtime import julia_session
    from prefect_julia.runtime.bridge import run_julia

    build_seconds = ensure_image()
    with tempfile.TemporaryDirectory(prefix="julia-flow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "server").mkdir()
        (tmp / "client").mkdir()
        print("starting a throwaway Prefect server ...", flush=True)
        server = start_server(tmp / "server")
        sessions = tmp / "client" / "julia-sessions"
        try:
            with environ_set(
                PREFECT_HOME=str(tmp / "client"),
                PREFECT_PROFILES_PATH=str(tmp / "client" / "profiles.toml"),
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PREFECT_API_URL=server.api_url,
            ):
                times = program_runs(program_ways(julia), args.runs)
                hello = warm_calls(
                    lambda: run_julia(PROGRAM, {"name": NAME}, project=JULIA_PROJECT, session="warm"),
                    args.runs,
                    sessions,
                )
                loud = loud_runs(julia, tmp)
        finally:
            julia_session.stop_sessions(sessions)
            server.stop()
    medians = {label: statistics.median(values) for label, values in times.items()}
    direct = medians["direct subprocess"]
    print(f"julia/jobs/{PROGRAM}.jl --name={NAME}, medians of {args.runs}", flush=True)
    for label, value in medians.items():
        line = f"  {label:<32}: {value * 1e3:8.0f} ms"
        if label != "direct subprocess":
            line += f"   overhead {(value - direct) * 1e3:+7.0f} ms   ratio {value / direct:5.2f}"
        print(line)
    # Paired per round (the ways of one round ran back to back), so a load swing between rounds cancels out.
    rounds = range(args.runs)
    for way in ("fresh", "fresh + image", "warm"):
        ratio = statistics.median(
            times[f"@flow + julia_job {way}"][r] / times["@flow + ShellOperation"][r] for r in rounds
        )
        print(f"  julia_job flow {way} / ShellOperation flow, per round: {ratio:5.2f} (target <= 1.0)", flush=True)
    for way in ("fresh", "fresh + image"):
        over = statistics.median(times[f"run_julia {way}"][r] - times["direct subprocess"][r] for r in rounds)
        print(f"  run_julia {way} over direct, per round: {over * 1e3:+.0f} ms (target <= 150 ms)", flush=True)
    shell, default = medians["@flow + ShellOperation"], medians["@flow + julia_job fresh + image"]
    print(
        f"  default experience (julia_job flow, image built by itself) {default * 1e3:.0f} ms vs ShellOperation "
        f"flow {shell * 1e3:.0f} ms: {shell / default:.2f}x faster",
        flush=True,
    )
    if build_seconds:
        print(f"  (the Julia image was built by itself first, in {build_seconds:.0f} s)")
    print(
        f"warm session, hello.jl: first call {hello[0] * 1e3:.0f} ms, Nth call {hello[1] * 1e3:.0f} ms, "
        f"Nth/first {hello[1] / hello[0]:.3f} (target <= 0.1)"
    )
    loud_direct, loud_flow, loud_records = loud
    print(
        f"10 MB of output: direct {loud_direct:.1f} s, as a flow run {loud_flow:.1f} s "
        f"(target <= {2 * loud_direct + 3:.1f} s = 2 x direct + 3 s), {loud_records} log records on the server"
    )
    results: dict[str, Any] = {
        "image_build_s": build_seconds,
        "medians_s": medians,
        "warm_hello_first_s": hello[0],
        "warm_hello_nth_s": hello[1],
        "loud_direct_s": loud_direct,
        "loud_flow_s": loud_flow,
        "loud_records": loud_records,
    }
    demo: dict[str, float] = {}
    if not args.no_demo:
        print("running `invoke demo` twice in a copy of the kit ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="julia-flow-bench-demo-") as demo_tmp:
            demo = demo_runs(Path(demo_tmp), args.runs)
        results.update(demo)
    if demo:
        print("`invoke demo` end to end", flush=True)
        print(f"  first run (starts server) : {demo['demo_first_s']:8.1f} s")
        print(f"  second run (warm server)  : {demo['demo_warm_s']:8.1f} s")
        print(
            f"  `invoke run daily` to Completed (the demo pipeline, its Julia job fresh): {demo['run_daily_s']:8.1f} s"
        )
        first, nth = demo["demo_job_warm_first_s"], demo["demo_job_warm_nth_s"]
        print(
            f"  demo job summarize_readings.jl: fresh {demo['demo_job_fresh_s'] * 1e3:.0f} ms, fresh with the image "
            f"{demo['demo_job_fresh_image_s'] * 1e3:.0f} ms; warm first {first * 1e3:.0f} ms, Nth {nth * 1e3:.0f} ms, "
            f"Nth/first {nth / first:.3f}"
        )
    return results


if __name__ == "__main__":
    main()
