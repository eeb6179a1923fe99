"""Benchmark the kit's `server-up` against the raw `prefect server start`, in a throwaway copy of the kit.

    .venv/bin/python benchmarks/servers.py [--rounds 3] [--warm-runs 5]

In a temporary git repository holding the kit's front door (tasks.py, justfile, envs/*, with a free port in
envs/dev.local.env), so its PREFECT_HOME is temporary too:

1. creates the dev database once (`invoke server-up --env dev`, then `invoke server-down --env dev`), untimed;
2. on that same database, alternates ``--rounds`` restarts of each, order swapped every round:
   - raw: ``python -m prefect server start --host H --port P`` started here with the environment's process
     settings and PREFECT_HOME, polled on ``GET /api/health`` at the kit's poll interval until healthy;
   - kit: ``python -m invoke server-up --env dev`` (the command users run) until it exits 0 (healthy);
   and prints both medians and their ratio (target <= 1.10);
3. with the server up, times the no-op ``python -m invoke server-up --env dev`` (target < 0.5 s) against the
   ``python -m invoke --list`` baseline, and the in-process ``servers.server_up`` no-op;
4. a new environment: ``--rounds`` starts of each on a fresh PREFECT_HOME (the home removed before each, order
   swapped every round): the kit's ``server-up`` (a copy of the migrated database template, which the first
   start built) against raw ``prefect server start`` (which migrates an empty database); prints both medians
   and their ratio (target <= 0.5).

Every server it starts is stopped before it returns, whatever happens.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prefect_julia.core import processes
from prefect_julia.kit.environment import environments
from prefect_julia.kit.server import server_process, servers

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway servers and kit copies the tests use
from harness import make_kit_repo  # noqa: E402

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from bench_report import each, load_line, ratio_line  # noqa: E402

COLD_RATIO_TARGET = 1.10
NEW_HOME_RATIO_TARGET = 0.5
WARM_TARGET_S = 0.5
START_TIMEOUT = 180.0
BUILD_TIMEOUT = 900.0


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def wait_port_free(host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until nothing listens on ``host:port`` (the previous server has let go of it)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) != 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still in use {timeout:.0f} s after the server was stopped")
        time.sleep(0.1)


class RawServer:
    """``prefect server start`` run by the benchmark itself, as a user would without the kit."""

    def __init__(self, env: environments.Environment, environ: Mapping[str, str]) -> None:
        self.env = env
        self.environ = env.process_env(environ)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and return once ``GET /api/health`` answers, polled as the kit polls."""
        log = self.env.home / "raw-server.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                server_process.raw_command(self.env.host, self.env.port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environ,
                cwd=self.env.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not servers.is_healthy(self.env.local_api_url, timeout=1.0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the raw server did not start; see {log}")
            time.sleep(servers.POLL_INTERVAL)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        processes.stop_tree(process.pid, grace=15)
        process.wait()


def median(values: list[float]) -> float:
    return statistics.median(values)


def new_home_rounds(
    rounds: int,
    home: Path,
    kit: tuple[Callable[[], None], Callable[[], None]],
    raw: RawServer,
    raw_down: Callable[[], None],
) -> tuple[list[float], list[float]]:
    """Starts on a fresh PREFECT_HOME (removed before each): (kit times, raw times). Servers are down on entry."""
    kit_up, kit_down = kit
    kit_times: list[float] = []
    raw_times: list[float] = []
    for round_ in range(rounds):
        for which in ("raw", "kit") if round_ % 2 == 0 else ("kit", "raw"):
            shutil.rmtree(home, ignore_errors=True)
            if which == "raw":
                home.mkdir(mode=0o700, parents=True)
                raw_times.append(timed(raw.start))
                raw_down()
            else:
                kit_times.append(timed(kit_up))
                kit_down()
        print(f"  new home {round_ + 1}: raw {raw_times[-1]:.2f} s, kit {kit_times[-1]:.2f} s", flush=True)
    return kit_times, raw_times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold restarts of each (raw, kit)")
    parser.add_argument("--warm-runs", type=int, default=5, help="no-op server-up runs")
    parser.add_argument("--new-home-rounds", type=int, default=-1, help="starts on a fresh home (default: --rounds)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="servers-bench-") as tmp:
        kit = make_kit_repo(Path(tmp) / "repo")
        env = kit.environment("dev")
        raw = RawServer(env, kit.environ())
        print(f"kit copy in {kit.root}, dev on port {env.port}, PREFECT_HOME {env.home}", flush=True)
        print(f"at the start: {load_line()}", flush=True)

        def kit_up(timeout: float = START_TIMEOUT) -> None:
            kit.invoke("server-up", "--env", "dev", timeout=timeout, check=True)

        def kit_down() -> None:
            kit.invoke("server-down", "--env", "dev", timeout=START_TIMEOUT, check=True)
            wait_port_free(env.host, env.port)

        def raw_down() -> None:
            raw.stop()
            wait_port_free(env.host, env.port)

        try:
            print("creating the database (first start, untimed) ...", flush=True)
            create_s = timed(lambda: kit_up(BUILD_TIMEOUT))  # builds the database template too
            kit_down()
            raw_times: list[float] = []
            kit_times: list[float] = []
            for round_ in range(args.rounds):
                order = ("raw", "kit") if round_ % 2 == 0 else ("kit", "raw")
                for which in order:
                    if which == "raw":
                        raw_times.append(timed(raw.start))
                        raw_down()
                    else:
                        kit_times.append(timed(kit_up))
                        if not (round_ == args.rounds - 1 and which == order[-1]):
                            kit_down()
                print(
                    f"  round {round_ + 1}: raw {raw_times[-1]:.2f} s, kit {kit_times[-1]:.2f} s ({load_line()})",
                    flush=True,
                )
            if not servers.is_healthy(env.local_api_url):
                kit_up()  # the last round ended with raw: bring the kit's server up for the warm figures
            warm_cli = [timed(kit_up) for _ in range(args.warm_runs)]
            listing = [timed(lambda: kit.invoke("--list", check=True)) for _ in range(args.warm_runs)]
            warm_lib = [timed(lambda: servers.server_up(env, kit.environ())) for _ in range(args.warm_runs)]
            kit_down()
            print("new environments (fresh PREFECT_HOME) ...", flush=True)
            new_rounds = args.rounds if args.new_home_rounds < 0 else args.new_home_rounds
            kit_new, raw_new = new_home_rounds(new_rounds, env.home, (kit_up, kit_down), raw, raw_down)
        finally:
            raw.stop()
            servers.server_down(env)

    raw_s, kit_s = median(raw_times), median(kit_times)
    ratio = kit_s / raw_s
    warm_s, list_s, lib_s = median(warm_cli), median(listing), median(warm_lib)
    results = {
        "create_s": create_s,
        "raw_cold_s": raw_s,
        "kit_cold_s": kit_s,
        "cold_ratio": ratio,
        "warm_cli_s": warm_s,
        "invoke_list_s": list_s,
        "warm_library_s": lib_s,
    }
    if kit_new and raw_new:
        results.update(raw_new_home_s=median(raw_new), kit_new_home_s=median(kit_new))
        results["new_home_ratio"] = results["kit_new_home_s"] / results["raw_new_home_s"]
    n, w = args.rounds, args.warm_runs
    print(f"server start-up on an existing database, medians of {n}")
    print(f"  first start (builds the template too)  : {create_s:8.2f} s")
    print(f"  raw `prefect server start` to healthy  : {raw_s:8.2f} s   (each: {each(raw_times, 2)})")
    print(f"  `invoke server-up --env dev` to healthy: {kit_s:8.2f} s   (each: {each(kit_times, 2)})")
    print(ratio_line("ratio kit / raw", kit_s, raw_s, COLD_RATIO_TARGET))
    print(f"server already up, medians of {w}")
    print(
        f"  `invoke server-up --env dev` (no-op)         : {warm_s:8.3f} s   (target < {WARM_TARGET_S} s: "
        f"{'met' if warm_s < WARM_TARGET_S else 'MISSED'})"
    )
    print(f"  `invoke --list` (baseline)             : {list_s:8.3f} s")
    print(f"  no-op minus baseline                   : {warm_s - list_s:8.3f} s")
    print(f"  servers.server_up() in process (no-op) : {lib_s * 1e3:8.2f} ms")
    if "new_home_ratio" not in results:
        print(f"at the end: {load_line()}")
        return results
    print(f"a new environment (fresh PREFECT_HOME), medians of {len(kit_new)}")
    print(f"  raw `prefect server start` to healthy  : {results['raw_new_home_s']:8.2f} s")
    print(f"  `invoke server-up dev` to healthy      : {results['kit_new_home_s']:8.2f} s")
    print(ratio_line("ratio kit / raw", results["kit_new_home_s"], results["raw_new_home_s"], NEW_HOME_RATIO_TARGET))
    print(f"at the end: {load_line()}")
    return results


if __name__ == "__main__":
    main()
