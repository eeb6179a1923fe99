"""An environment brought up and down in order, with the runs in flight respected.

Up: the server, then the runs it left in flight when it stopped are marked Crashed. Down: runs in flight refuse
the stop (or, with ``cancel``, are cancelled), the worker stops before the server, and runs the worker picked up
meanwhile are cancelled too. ``tasks.py`` only prints what these return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prefect_julia.core.console import Progress
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.server import inflight, servers
from prefect_julia.kit.server.inflight import InFlightRun
from prefect_julia.kit.worker import workers

Say = Callable[[str], None]


def _quiet(_line: str) -> None:
    return None


@dataclass
class Up:
    """What ``server_up`` did: the server's start, and the runs marked Crashed because it had stopped."""

    server: servers.UpResult
    lost: list[InFlightRun] = field(default_factory=list)


def server_up(
    env: Environment, environ: Mapping[str, str], *, progress: Progress | None = None, timeout: float | None = None
) -> Up:
    """Start the environment's server (a no-op when up); when it had stopped, mark the runs it lost."""
    stored = inflight.stored_count(env)  # read while no server runs: 0 means no run can have been lost
    started = servers.server_up(env, environ, progress=progress, timeout=timeout)
    if started.already_up or stored == 0:
        return Up(started)
    env = started.resolved or env  # with the auth string a first start wrote
    lost = inflight.mark_lost(
        env,
        pool=env.require("PREFECT_JULIA_WORK_POOL"),
        reason=f"The {env.name} server stopped (crashed or killed) while this run was in flight",
        worker_running=workers.worker_status(env).pid is not None,
    )
    return Up(started, lost)


@dataclass
class Down:
    """What a stop did: runs cancelled, the worker stopped first (its pid), and the server's own result."""

    cancelled: list[InFlightRun] = field(default_factory=list)
    worker_pid: int | None = None
    worker_stopped: bool = False
    server: servers.DownResult | None = None


def server_down(env: Environment, *, cancel: bool, say: Say = _quiet) -> Down:
    """Stop the worker, then the server; refuses while runs are in flight unless ``cancel``."""
    down = Down(cancelled=_guard(env, None, "server", "server-down", cancel, say))
    down.worker_pid = workers.worker_down(env)
    down.worker_stopped = down.worker_pid is not None
    inflight.confirm_cancelled(env, down.cancelled, task="server-down")
    if cancel:  # a run the worker picked up meanwhile
        down.cancelled += _guard(env, None, "server", "server-down", True, say)
    down.server = servers.server_down(env)
    return down


def worker_down(env: Environment, *, cancel: bool, say: Say = _quiet) -> Down:
    """Stop the worker; refuses while runs of its pool are in flight unless ``cancel``."""
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    down = Down(cancelled=_guard(env, pool, "worker", "worker-down", cancel, say))
    down.worker_stopped = workers.worker_down(env) is not None
    inflight.confirm_cancelled(env, down.cancelled, task="worker-down")
    if cancel:
        down.cancelled += _guard(env, pool, "worker", "worker-down", True, say)
    return down


def _guard(env: Environment, pool: str | None, what: str, task: str, cancel: bool, say: Say) -> list[InFlightRun]:
    return inflight.guard_stop(env, pool=pool, what=what, task=task, cancel_runs=cancel, say=say)
