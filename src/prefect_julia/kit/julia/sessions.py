"""The warm Julia sessions of an environment (``PREFECT_JULIA_SESSION=warm``): listed and stopped with its worker."""

from __future__ import annotations

from pathlib import Path

from prefect_julia.kit.environment.environments import Environment
from prefect_julia.runtime import julia_session


def folder(env: Environment) -> Path:
    """Where the environment's flow runs keep their sessions (they run with its PREFECT_HOME)."""
    return julia_session.session_folder(env.process_env({}))


def running(env: Environment) -> list[int]:
    """Pids of the environment's running sessions."""
    return [info.pid for info in julia_session.sessions(folder(env))]


def stop(env: Environment) -> list[int]:
    """Stop every session of the environment; their pids."""
    return julia_session.stop_sessions(folder(env))
