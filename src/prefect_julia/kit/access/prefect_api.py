"""Talking to an environment's Prefect server from this process: settings for the client, reachability.

Prefect is imported lazily here (it takes seconds), so tasks that do not talk to a server stay fast.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prefect_julia.core.errors import ServerError
from prefect_julia.core.prefect_http import ApiRefused
from prefect_julia.kit.access import identity
from prefect_julia.kit.access.security import AUTH_STRING, refused
from prefect_julia.kit.environment.environments import Environment

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def is_healthy(api_url: str, *, timeout: float = 1.0) -> bool:
    """True when ``GET {api_url}/health`` answers 200 ``true`` (no Prefect import: milliseconds)."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return bool(response.status == 200 and response.read().strip() == b"true")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def unreachable(env: Environment) -> ServerError:
    """The error of a server that does not answer: which, where, and how to start it."""
    return ServerError(
        f"The {env.name} Prefect server at {env.api_url} is not reachable.",
        hint=f"Start it with `invoke server-up {env.name}` (or `just server-up {env.name}`), then retry.",
    )


def require_up(env: Environment, *, timeout: float = 5.0) -> None:
    """Raise at once when ``env``'s server is down or another checkout's: before slow work (loading every flow,
    importing Prefect) that would only end in that refusal."""
    identity.check(env)
    if not is_healthy(env.api_url, timeout=timeout):
        raise unreachable(env)


@contextlib.contextmanager
def client_for(env: Environment) -> Iterator[SyncPrefectClient]:
    """A sync Prefect client of ``env``'s server (URL and key of that environment); the server must answer and
    be this checkout's server for ``env``."""
    from prefect.client.orchestration import get_client

    identity.check(env)
    with settings_for(env), get_client(sync_client=True) as client:
        if client.api_healthcheck() is not None:
            raise unreachable(env)
        yield client


@contextlib.contextmanager
def settings_for(env: Environment) -> Iterator[None]:
    """Prefect settings of ``env`` for code that builds its own client (blocks' ``save``/``load``).

    A 401 or 403 from the server inside the block becomes a message saying which credential was sent.
    """
    import httpx
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

    updates: dict[object, object] = {PREFECT_API_URL: env.api_url, PREFECT_API_AUTH_STRING: env.get(AUTH_STRING)}
    key = env.get("PREFECT_API_KEY")
    if key:
        updates[PREFECT_API_KEY] = key
    try:
        with temporary_settings(updates=updates):
            yield
    except httpx.HTTPStatusError as error:
        status = error.response.status_code
        if status not in (401, 403):
            raise
        raise refused(env, ApiRefused(str(status), status=status)) from None
