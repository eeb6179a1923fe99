"""Shared fixtures: a real Prefect server on a free port in a temporary PREFECT_HOME, and kit copies.

Tests never touch the user's ``~/.prefect`` or the repository's own ``.prefect/`` state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
from harness import REPO_ROOT, KitRepo, RunningServer, S3Server, free_port, make_kit_repo, start_s3_server, start_server
from prefect_julia.core.errors import PrefectJuliaError
from prefect_julia.runtime.bridge import find_julia

# New server homes start from a migrated empty database (about 7 s less per server start); the tests of a
# first start from nothing ask for an empty home (seed=False).
harness.SEED_DATABASES = True

__all__ = ["REPO_ROOT", "KitRepo", "RunningServer", "S3Server", "free_port", "make_kit_repo"]  # imported by the tests


#: The modules that take longest (each a minute or more here), collected first, so that the gate's parallel
#: run (pytest-xdist, a module per process, ``--no-loadscope-reorder``) starts them early instead of ending on one
#: of them. Measured with ``--durations=0``: keep the order when a module's time changes much.
SLOW_FIRST = ("test_bad_input", "test_prod_code", "test_plan", "test_branch_worktrees", "test_pipeline",
              "test_security", "test_julia_suite", "test_readme_add_flow", "test_inflight", "test_schedules",
              "test_servers", "test_julia_errors", "test_automations", "test_database", "test_template",
              "test_julia_image", "test_julia_image_background", "test_promote", "test_run_client", "test_limits",
              "test_gate_interrupt", "test_julia_session", "test_remote_worker", "test_identity", "test_run_result",
              "test_forkserver", "test_dataset", "test_precommit", "test_actions")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.module.__name__ if item.module is not None else ""
        return SLOW_FIRST.index(module) if module in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: tests keep their order within a module


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``julia`` needs a julia: skipped with the reason locally, a failure when CI=true."""
    if item.get_closest_marker("julia") is None:
        return
    try:
        find_julia(os.environ)
    except PrefectJuliaError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, and this test needs julia: {error}", pytrace=False)
        pytest.skip(f"needs julia: {error}")


@pytest.fixture(autouse=True, scope="session")
def _hermetic_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point every Prefect client in the test process at a throwaway home, never ~/.prefect."""
    home = tmp_path_factory.mktemp("client-prefect-home")
    saved = {
        k: os.environ.get(k)
        for k in ("PREFECT_HOME", "PREFECT_PROFILES_PATH", "PREFECT_JULIA_IMAGE_DIR", "PREFECT_JULIA_IMAGE")
    }
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_PROFILES_PATH"] = str(home / "profiles.toml")
    # Julia images this process's jobs look for: a folder of the test run, not ~/.cache/prefect-julia/images.
    # (Kit copies run with none of the caller's PREFECT_* settings: their jobs may find an image the user
    # built for the same code, which changes their speed, not what they do; no test builds one there.)
    os.environ["PREFECT_JULIA_IMAGE_DIR"] = str(tmp_path_factory.mktemp("julia-images"))
    # No image builds by itself in the background under a test: the tests of that build ask for it ("auto").
    os.environ["PREFECT_JULIA_IMAGE"] = "off"
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
    server = start_server(tmp_path_factory.mktemp("server-prefect-home"))
    api_url = server.api_url
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
        server.stop()


@pytest.fixture
def on_server(prefect_server: RunningServer) -> Iterator[RunningServer]:
    """The session server, with this test's Prefect run logs delivered to it before the test ends."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server
        APILogWorker.drain_all(timeout=10)  # deliver run logs while the server is still up


@pytest.fixture
def kit_repo(tmp_path: Path) -> KitRepo:
    return make_kit_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3-compatible server (moto) for the whole session, with a bucket and a key pair."""
    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


from live_kit import live_kit  # noqa: E402,F401 - one running kit shared by the session's tests that need it


@pytest.fixture
def other_user() -> Iterator[str]:
    """A second local user, made for this test and removed after it (skipped, with the reason, where it can't be)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("a second local user needs root, useradd and runuser; this machine lacks one of them")
    name = f"pj{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"useradd refused ({made.stderr.strip()}): no second user here")
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)
