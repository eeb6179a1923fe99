"""Throwaway Prefect servers and throwaway copies of the kit, shared by the tests and the benchmarks.

Everything here uses free ports and temporary folders: never the user's ``~/.prefect`` or the repository's
own ``.prefect/`` state.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from prefect_julia.core import processes
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.kit.environment import environments, settings
from prefect_julia.kit.server import server_process, servers, template

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The kit's committed front door, and (``project=True``) the flows, the Julia package and the blocks.
KIT_FILES = ("tasks.py", "justfile", "envs/branches.toml", "envs/dev.env", "envs/prod.env")
PROJECT_FILES = (
    "prefect.yaml",
    "flows",
    "julia/Project.toml",
    "julia/src",
    "julia/jobs",
    "julia/build",
    "envs/dev.blocks.toml",
    "envs/prod.blocks.toml",
)


T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """The first truthy value of ``predicate()``, called again after a short, growing pause until ``timeout`` s.

    The one way the tests wait. An exception from ``predicate`` counts as "not yet" and is kept; on timeout an
    AssertionError names ``what`` was awaited and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            last: object = predicate()
            if last:
                return last  # type: ignore[return-value]
        except Exception as error:  # not there yet: a refused connection, a failed assert, a missing file
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last seen: {last!r}")
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 1.5, 1.0)


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    """True once ``pid`` has exited (``processes.running`` is False) within ``seconds``."""
    try:
        return eventually(lambda: not processes.running(pid), seconds, f"pid {pid} to exit")
    except AssertionError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    """``os.environ`` plus the settings of a server (or client) at ``api_url`` with PREFECT_HOME ``home``."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
    )
    return env


def api(
    api_url: str, method: str, path: str, body: object = None, *, patience: float = 120.0, auth: str | None = None
) -> Any:
    """A test's read (or idempotent write) on a throwaway server, through the kit's client (credentials, CSRF).

    ``auth``: the server's basic-auth string (a kit environment's: :func:`kit_api` passes it).

    A sqlite server under the gate's load can stall a request for tens of seconds: a timed-out read, a dropped
    connection or a 5xx answer is asked again until ``patience`` seconds have passed; any other answer (a 4xx,
    a refusal) is raised at once.
    """

    def attempt() -> tuple[Any, Exception | None]:  # a failure worth asking again raises: eventually retries it
        try:
            return ApiClient(api_url, auth_string=auth, timeout=30).request(method, path, body), None
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise
            return None, error
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            raise
        except Exception as error:  # a refusal: raised at once
            return None, error

    answer, refusal = eventually(attempt, patience, f"{method} {path} on {api_url} to answer")
    if refusal is not None:
        raise refusal
    return answer


def kit_api(env: environments.Environment, method: str, path: str, body: object = None, **kwargs: Any) -> Any:
    """:func:`api` on a kit environment's server, with its auth string as it is now (``server-up`` writes it)."""
    current = environments.resolve_environment(env.name, env.root, {})
    return api(current.api_url, method, path, body, auth=current.get("PREFECT_API_AUTH_STRING"), **kwargs)


@dataclass(frozen=True)
class RunningServer:
    """The kit's Prefect server (``kit/server/server_process.py``) in its own session, on a free port, with a temporary
    PREFECT_HOME."""

    api_url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """Process environment for a client of this server."""
        return prefect_env(self.api_url, self.home)

    def stop(self) -> None:
        """Stop the server and everything it started."""
        processes.stop_tree(self.process.pid, grace=15)
        self.process.wait()


#: Whether new server homes start from a copy of an empty, migrated database (see :func:`seed_database`).
#: The tests turn it on (conftest); the benchmarks keep it off, so a first start is timed as users see it.
SEED_DATABASES = False
_cache: Path | None = None
_cache_lock = threading.Lock()


def template_cache() -> Path:
    """This process's ``XDG_CACHE_HOME``: kit copies and test servers share one migrated template
    (``kit/server/template.py``), built at most once per process, never in the user's ``~/.cache``."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = Path(tempfile.mkdtemp(prefix="prefect-julia-cache-"))
            atexit.register(shutil.rmtree, _cache, ignore_errors=True)
        return _cache


def _migrated_template() -> Path:
    """An empty sqlite database with all of Prefect's migrations applied: the kit's template."""
    return template.ensure({**os.environ, "XDG_CACHE_HOME": str(template_cache())})


def _seeding(seed: bool | None) -> bool:
    return SEED_DATABASES if seed is None else seed


def seed_database(home: Path, seed: bool | None = None) -> None:
    """Copy an empty, migrated sqlite database into ``home`` (a server home with none yet).

    The server then skips its migrations, about 7 s of every start on these machines; it is otherwise the
    database a first start would make. ``seed`` defaults to :data:`SEED_DATABASES`.
    """
    if not _seeding(seed) or (home / "prefect.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    note = template.seed(home / "prefect.db", {}, template=_migrated_template())
    if note:
        raise RuntimeError(note)


def start_server(home: Path, *, timeout: float = 120.0, seed: bool | None = None) -> RunningServer:
    """Start a server with PREFECT_HOME ``home``; return once ``GET /api/health`` answers."""
    seed_database(home, seed)
    port = free_port()
    api_url = settings.api_url(settings.server_url("127.0.0.1", port))
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_process.command("127.0.0.1", port),  # the kit's: Prefect's server, steadier on sqlite
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # a run waiting for a deployment's concurrency slot tries again after 2 s (default 30 s)
            env={**prefect_env(api_url, home), "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"},
            start_new_session=True,
        )
    server = RunningServer(api_url, port, home, process)

    def started() -> str:
        if process.poll() is not None:
            return "exited"  # a server that died is not waited for
        return "healthy" if servers.is_healthy(api_url, timeout=2.0) else ""

    try:
        state = eventually(started, timeout, f"the Prefect server at {api_url} to answer /api/health")
    except AssertionError:
        state = "silent"
    if state == "healthy":
        return server
    server.stop()
    raise RuntimeError("The Prefect server did not start:\n" + log.read_text()[-3000:])


@dataclass(frozen=True)
class KitRepo:
    """A temporary git repository holding the kit's committed front door, with free ports per environment."""

    root: Path
    ports: dict[str, int]

    def environ(self, **extra: str) -> dict[str, str]:
        """A process environment without the caller's PREFECT_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env["XDG_CACHE_HOME"] = str(template_cache())  # the kit's database template: this process's
        env["PREFECT_JULIA_IMAGE"] = "off"  # no Julia image builds by itself under a test (its tests say "auto")
        env.update(extra)
        return env

    def invoke(
        self, *args: str, timeout: float = 180, check: bool = False, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``invoke ARGS`` in the repository; ``check=True`` raises with its output when it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"`invoke {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def environment(self, name: str = "dev") -> environments.Environment:
        return environments.resolve_environment(name, self.root, self.environ())


def make_kit_repo(
    root: Path,
    *,
    branch: str = "feature",
    git: bool = True,
    project: bool = False,
    seed: bool | None = None,
    per_branch: bool = False,
) -> KitRepo:
    """A kit repository in ``root``; ``project=True`` also copies the flows, the Julia package and blocks.

    ``seed`` (default :data:`SEED_DATABASES`) gives both environments' homes a migrated empty database.
    ``branch`` uses the shared dev environment, unless ``per_branch`` gives it one of its own (the kit's
    committed ``envs/branches.toml``).
    """
    for name in KIT_FILES + (PROJECT_FILES if project else ()):
        source, target = REPO_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "Manifest.toml"))
        else:
            target.write_bytes(source.read_bytes())
    if not per_branch and branch not in ("main", "dev"):
        (root / "envs" / "branches.toml").write_text(
            f'[branches]\nmain = "prod"\ndev = "dev"\n{json.dumps(branch)} = "dev"\n\n'
            '[default]\nper_branch = true\nbase = "dev"\n'
        )
    ports = {"dev": free_port(), "prod": free_port()}
    for env, port in ports.items():
        (root / "envs" / f"{env}.local.env").write_text(f"PREFECT_JULIA_PORT={port}\n")
        if _seeding(seed):
            seed_database(environments.resolve_environment(env, root, {}).files.path, True)
    if git:
        author = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run(["git", "init", "-q", "-b", branch], cwd=root, check=True)
        subprocess.run(["git", *author, "commit", "-q", "--allow-empty", "-m", "init"], cwd=root, check=True)
    return KitRepo(root=root, ports=ports)


@dataclass(frozen=True)
class S3Server:
    """A real S3-compatible endpoint (moto's server mode) with one IAM user allowed s3:* and one bucket.

    Authentication is on (``INITIAL_NO_AUTH_ACTION_COUNT``): a wrong key or secret is refused as on AWS.
    """

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    process: subprocess.Popen[bytes]

    def client(self, *, secret: str | None = None) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret_key,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: Requests moto serves before it checks credentials: exactly the set-up calls of ``start_s3_server``.
_S3_SETUP_REQUESTS = 4


def start_s3_server(log: Path, *, bucket: str = "team-data", timeout: float = 60.0) -> S3Server:
    """Start ``moto_server`` on a free port, create a user with a key pair and the bucket; return it."""
    import json

    import boto3

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_S3_SETUP_REQUESTS)
    moto = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def started() -> str:  # a TCP connect, not a request: requests before the set-up would use up the free ones
        if process.poll() is not None:
            return "exited"
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return "listening"

    try:
        state = eventually(started, timeout, f"moto_server to listen on port {port}")
    except AssertionError:
        state = "silent"
    if state != "listening":
        process.kill()
        raise RuntimeError("moto_server did not start:\n" + log.read_text()[-3000:])
    endpoint = f"http://127.0.0.1:{port}"
    setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup"}
    iam = boto3.client("iam", aws_secret_access_key="setup", **setup)
    iam.create_user(UserName="team")
    key = iam.create_access_key(UserName="team")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="team", PolicyName="s3", PolicyDocument=json.dumps(policy))
    server = S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket, process)
    server.client().create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    return server


class StandInHandler(BaseHTTPRequestHandler):
    """Base of the small local HTTP servers that stand in for a Prefect server where a real one cannot be made
    to misbehave on demand (answer 503, lose a CSRF token, answer late): JSON answers, no access log."""

    def log_message(self, *args: object) -> None:
        pass

    def answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve ``server`` in a thread; yields its API URL (``http://127.0.0.1:PORT/api``), shuts it down after."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()
