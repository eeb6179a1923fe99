"""The environment's background process worker: started detached, found by pid file, stopped before its server."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import ConfigError, ServerError
from prefect_julia.core.files import tail
from prefect_julia.core.prefect_http import ApiRefused
from prefect_julia.core.processes import (
    file_lock,
    is_alive,
    read_pid_file,
    spawn_detached,
    stop_recorded,
    stop_tree,
    write_pid_file,
)
from prefect_julia.kit.access import identity
from prefect_julia.kit.access.security import api_client, private_file, refused, worker_env
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.settings import FLOW_START
from prefect_julia.kit.julia import images, sessions
from prefect_julia.kit.server.inflight import InFlightRun, mark_lost
from prefect_julia.kit.server.servers import is_healthy
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
    with file_lock(env.files.worker_lock):
        record = read_pid_file(env.files.worker_pid)
        if record is not None and is_alive(record):
            return worker_status(env), False
        env.files.worker_pid.unlink(missing_ok=True)
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
        private_file(env.files.worker_log)
        process = spawn_detached(command, env=worker_env(env, environ), log_file=env.files.worker_log, cwd=env.root)
        write_pid_file(env.files.worker_pid, process.pid, command)
        deadline = time.monotonic() + timeout
        while worker_name(env) not in online_workers(env, pool):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_tree(process.pid, grace=5)
                env.files.worker_pid.unlink(missing_ok=True)
                raise ServerError(
                    f"The {env.name} worker did not come online (pool {pool}). Last lines of {env.files.worker_log}:\n"
                    + tail(env.files.worker_log, 20),
                    hint=f"Check the pool exists (`invoke deploy {env.name}` creates it), then retry.",
                )
            time.sleep(0.5)
    return worker_status(env), True


def worker_down(env: Environment) -> bool:
    """Stop the worker of ``env`` with every process it started (flow runs, their jobs) and its warm Julia
    sessions; False when no worker ran."""
    record = read_pid_file(env.files.worker_pid)
    env.files.worker_pid.unlink(missing_ok=True)
    if record is None or not is_alive(record):
        sessions.stop(env)
        return False
    stop_recorded(record, grace=10)
    sessions.stop(env)
    return True


def worker_status(env: Environment) -> WorkerState:
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    record = read_pid_file(env.files.worker_pid)
    pid = record.pid if record is not None and is_alive(record) else None
    online = pid is not None and worker_name(env) in online_workers(env, pool)
    return WorkerState(
        env=env.name,
        pool=pool,
        pid=pid,
        online=online,
        log=env.files.worker_log,
        sessions=tuple(sessions.running(env)),
    )
