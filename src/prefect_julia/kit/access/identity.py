"""Server identity: is the server at an environment's URL this checkout's server for that environment?

On first start the kit writes ``kit-identity.json`` (``Home.identity``) into the environment's ``PREFECT_HOME``: a random id, the
checkout and the environment. A server reports its own ``PREFECT_HOME`` (``GET /api/admin/settings``); the
server is ours when that is our home, or a home holding our id. Anything else answering on our port (another
clone configured with the same port, another environment's server) is foreign: tasks refuse to read or write
it, naming the checkout that owns it, and ``server-status`` shows ``taken by <folder>``.

Only the kit's own local server is checked: an environment whose ``PREFECT_API_URL`` points elsewhere
(Prefect Cloud, a shared server) has no local home to compare.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from prefect_julia.core.errors import ServerError
from prefect_julia.core.files import write_atomic
from prefect_julia.kit.environment.environments import Environment
from prefect_julia.kit.environment.home import Home


@dataclass(frozen=True)
class Identity:
    id: str
    checkout: str
    environment: str


@dataclass(frozen=True)
class Owner:
    """Who serves an environment's URL: ``ours``, or else the home and checkout of the server that answered."""

    ours: bool
    home: str
    checkout: str | None = None
    environment: str | None = None

    @property
    def folder(self) -> str:
        return self.checkout or self.home


def read(home: Path) -> Identity | None:
    """The identity written in the PREFECT_HOME ``home``, or None (no file, or not one the kit wrote)."""
    try:
        data = json.loads(Home(home).identity.read_text(encoding="utf-8"))
        return Identity(id=str(data["id"]), checkout=str(data["checkout"]), environment=str(data["environment"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure(env: Environment) -> Identity:
    """The environment's identity, written on first use (before its server first starts)."""
    found = read(env.home)
    if found is not None:
        return found
    identity = Identity(id=uuid.uuid4().hex, checkout=str(env.root), environment=env.name)
    write_atomic(env.files.identity, (json.dumps(identity.__dict__, indent=2) + "\n").encode(), mode=0o600)
    return identity


def is_local(env: Environment) -> bool:
    """True when the environment's clients talk to the kit's local server (its host and port)."""
    url = urlsplit(env.api_url)
    return url.port == env.port and url.hostname in {env.host, "127.0.0.1", "localhost", "0.0.0.0"}


def _reported_home(api_url: str, env: Environment, timeout: float) -> str | None:
    """The PREFECT_HOME the server at ``api_url`` reports; when it refuses our credential, the one it runs with."""
    headers = {"Accept": "application/json"}
    auth = env.lookup("PREFECT_API_AUTH_STRING")
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        with urlopen(Request(f"{api_url}/admin/settings", headers=headers), timeout=timeout) as response:
            data = json.load(response)
    except HTTPError as error:
        return _listener_home(env.port) if error.code in (401, 403) else None
    except (OSError, ValueError):
        return None
    home = data.get("home") if isinstance(data, dict) else None
    return home if isinstance(home, str) else None


def _listener_home(port: int) -> str | None:
    """The PREFECT_HOME of the process listening on ``port`` (a server with another auth string), if readable.

    Only a process of this user can be read; another user's server gives None (and the kit's request then fails
    with the auth error it got).
    """
    import psutil

    try:
        listening = [c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid]
        for pid in listening:
            home = str(psutil.Process(pid).environ().get("PREFECT_HOME") or "")
            if home:
                return home
    except (psutil.Error, OSError):
        return None
    return None


def owner(env: Environment, *, timeout: float = 5.0) -> Owner | None:
    """Who serves ``env``'s local URL; None when nothing answers (or the environment's server is remote)."""
    if not is_local(env):
        return None
    reported = _reported_home(env.local_api_url, env, timeout)
    if reported is None:
        return None
    home = Path(reported)
    mine = read(env.home)
    theirs = read(home)
    same_folder = home.resolve() == env.home.resolve()
    if same_folder or (mine is not None and theirs is not None and mine.id == theirs.id):
        return Owner(ours=True, home=str(home))
    return Owner(
        ours=False,
        home=str(home),
        checkout=theirs.checkout if theirs else None,
        environment=theirs.environment if theirs else None,
    )


def check(env: Environment) -> None:
    """Raise ``ServerError`` when the server at ``env``'s URL belongs to another checkout or environment."""
    found = owner(env)
    if found is None or found.ours:
        return
    whose = (
        f"the {found.environment} environment of {found.checkout}" if found.checkout else f"PREFECT_HOME {found.home}"
    )
    raise ServerError(
        f"The server at {env.local_api_url} is not this checkout's {env.name} server: it is {whose} "
        f"(PREFECT_HOME {found.home}). Nothing was read or written.",
        hint=f"Stop it from {found.folder} (`invoke server-down`), or give this checkout its own port: "
        f"PREFECT_JULIA_PORT=<free port> in envs/{env.name}.local.env.",
    )
