"""Shared fixtures: a real Prefect server on a free port in a temporary PREFECT_HOME.

Tests never touch the user's ``~/.prefect`` or the repository's own ``.prefect/`` state.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    api_url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """Process environment for a client of this server."""
        env = dict(os.environ)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_PROFILES_PATH=str(self.home / "profiles.toml"),
        )
        return env


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _hermetic_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point every Prefect client in the test process at a throwaway home, never ~/.prefect."""
    home = tmp_path_factory.mktemp("client-prefect-home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_PROFILES_PATH")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_PROFILES_PATH"] = str(home / "profiles.toml")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real Prefect server for the whole session (start-up costs about 20 s here)."""
    home = tmp_path_factory.mktemp("server-prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api_url,
    )
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not _healthy(api_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((home / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    server = RunningServer(api_url=api_url, port=port, home=home, process=proc)
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url  # for subprocesses
    # Prefect reads its settings once, at import: point this process's clients at the server too.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield server
    finally:
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --- a throwaway copy of the kit's front door, for tests of environments, servers and tasks ---------------

KIT_FILES = ("tasks.py", "justfile", "envs/branches.toml", "envs/dev.env", "envs/prod.env")
PROJECT_FILES = (
    "flows",
    "julia/Project.toml",
    "julia/src",
    "julia/jobs",
    "envs/dev.blocks.toml",
    "envs/prod.blocks.toml",
)


@dataclass(frozen=True)
class KitRepo:
    """A temporary git repository holding the kit's committed front door, with free ports per environment."""

    root: Path
    ports: dict[str, int]

    def environ(self, **extra: str) -> dict[str, str]:
        """A process environment without the caller's PREFECT_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(extra)
        return env

    def invoke(self, *args: str, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout


def make_kit_repo(root: Path, *, branch: str = "feature", git: bool = True, project: bool = False) -> KitRepo:
    """A kit repository in ``root``; ``project=True`` also copies the flows, the Julia package and blocks."""
    for name in KIT_FILES + (PROJECT_FILES if project else ()):
        source, target = REPO_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "Manifest.toml"))
        else:
            target.write_bytes(source.read_bytes())
    ports = {"dev": free_port(), "prod": free_port()}
    for env, port in ports.items():
        (root / "envs" / f"{env}.local.env").write_text(f"PREFECT_JULIA_PORT={port}\n")
    if git:
        subprocess.run(["git", "init", "-q", "-b", branch], cwd=root, check=True)
        subprocess.run(
            [
                "git",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "init",
            ],
            cwd=root,
            check=True,
        )
    return KitRepo(root=root, ports=ports)


@pytest.fixture
def kit_repo(tmp_path: Path) -> KitRepo:
    return make_kit_repo(tmp_path / "repo")
