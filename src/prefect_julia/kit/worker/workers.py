"""The environment's background process worker: started detached, found by pid file, stopped before its server."""

from __future__ import annotations

import functools
import hashlib
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import ConfigError, ServerError
from prefect_julia.core.files import tail
from prefect_julia.core.prefect_http import ApiRefused
from prefect_julia.kit.access import identity
from prefect_julia.kit.access.prefect_api import is_healthy
from prefect_julia.kit.access.security import api_client, refused, worker_env
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.settings import FLOW_START
from prefect_julia.kit.julia import images, sessions
from prefect_julia.kit.server.inflight import InFlightRun, mark_lost
from prefect_julia.kit.worker import worker_process


def worker_name(env: Environment) -> str:
    """Unique per machine and checkout: workers of one pool on several machines never share a name."""
    checkout = hashlib.sha256(str(env.root).encode()).hexdigest()[:6]
    return f"{env.name}-{socket.gethostname()}-{checkout}"


def online_workers(env: Environment, pool: str) -> list[str]:
    """Names of the pool's workers the server sees as online (empty when it cannot be asked)."""
    try:
        workers = api_client(env).request("POST", f"/work_pools/{pool}/workers/filter", {"offset": 0, "limit": 50})
    except ApiRefused as error:
        raise refused(env, error) from None
    except (OSError, ValueError):
        return []
    return [w["name"] for w in workers if w.get("status") == "ONLINE"]


def worker_limit(env: Environment) -> int:
    """PREFECT_JULIA_WORKER_LIMIT: most flow runs at once (0: no limit); runs beyond it wait Scheduled."""
    raw = env.get("PREFECT_JULIA_WORKER_LIMIT") or "0"
    if not raw.isdigit():
        raise ConfigError(
            f"PREFECT_JULIA_WORKER_LIMIT={raw!r} is not a whole number.",
            hint=f"Use e.g. PREFECT_JULIA_WORKER_LIMIT=8 in envs/{env.name}.local.env (0: no limit).",
        )
    return int(raw)


@dataclass(frozen=True)
class WorkerState:
    env: str
    pool: str
    pid: int | None
    online: bool
    log: Path
    sessions: tuple[int, ...] = ()


def worker_up(
    env: Environment,
    environ: Mapping[str, str],
    *,
    timeout: float = 60.0,
    on_lost: Callable[[list[InFlightRun]], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[WorkerState, bool]:
    """Start the worker of ``env``'s pool unless it runs; wait until the server sees it. Returns (state, started).

    Before a new worker starts, the pool's runs that the previous one left in flight and that can no longer
    finish are marked Crashed (``on_lost`` hears of them). Where no Julia image matches the code, its build
    starts in the background (``say`` hears of it).
    """
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    limit = worker_limit(env)
    flow_start = env.choice(FLOW_START)
    if not is_healthy(env.api_url):
        remote = env.api_url != env.local_api_url
        raise ServerError(
            f"The {env.name} server at {env.api_url} is not {'reachable' if remote else 'running'}, so no worker "
            "can start.",
            hint=(
                f"Check PREFECT_API_URL (and PREFECT_API_KEY) in envs/{env.name}.local.env and that the {env.name} "
                "server is up on its machine."
                if remote
                else f"Run `invoke server-up {env.name}` first."
            ),
        )
    identity.check(env)
    images.start_in_background(env.process_env(environ), say)
    worker = env.files.worker
    with worker.lock():
        if worker.record() is not None:
            return worker_status(env), False
        worker.forget_stale()
        lost = mark_lost(
            env,
            pool=pool,
            reason=f"The {env.name} worker stopped (crashed or killed) while this run was in flight",
            worker_running=False,
        )
        if lost and on_lost is not None:
            on_lost(lost)
        worker_args = ["--pool", pool, "--type", "process", "--name", worker_name(env)]
        if limit:
            worker_args += ["--limit", str(limit)]
        command = worker_process.command(flow_start, worker_args)
        ready = functools.partial(_wait_online, env, pool, timeout=timeout)
        worker.start(command, env=worker_env(env, environ), cwd=env.root, ready=ready)
    return worker_status(env), True


def _wait_online(env: Environment, pool: str, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Return once the server lists ``process`` as the pool's worker; raise when it exits or times out."""
    deadline = time.monotonic() + timeout
    while worker_name(env) not in online_workers(env, pool):
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServerError(
                f"The {env.name} worker did not come online (pool {pool}). Last lines of {env.files.worker_log}:\n"
                + tail(env.files.worker_log, 20),
                hint=f"Check the pool exists (`invoke deploy {env.name}` creates it), then retry.",
            )
        time.sleep(0.5)


def worker_down(env: Environment) -> int | None:
    """Stop the worker of ``env`` with every process it started (flow runs, their jobs) and its warm Julia
    sessions; the worker's pid, None when no worker ran."""
    stopped = env.files.worker.stop(grace=10)
    sessions.stop(env)
    return None if stopped is None else stopped.pid


def worker_status(env: Environment) -> WorkerState:
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    pid = env.files.worker.pid()
    online = pid is not None and worker_name(env) in online_workers(env, pool)
    return WorkerState(
        env=env.name,
        pool=pool,
        pid=pid,
        online=online,
        log=env.files.worker_log,
        sessions=tuple(sessions.running(env)),
    )
