"""Real Prefect servers in a temporary repository, on free ports, each with its own PREFECT_HOME."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from conftest import KitRepo, make_kit_repo
from harness import eventually, kit_api
from prefect_julia.core.errors import ServerError
from prefect_julia.core.processes import group_alive, is_alive, port_is_free, read_pid_file, running, write_pid_file
from prefect_julia.kit.environment.environments import Environment, resolve_environment
from prefect_julia.kit.server import servers

pytestmark = pytest.mark.server


def _save_block(api_url: str, name: str, auth: str | None = None) -> None:
    """Save a real block through the Prefect Python API (the client's home is the hermetic test home), with the
    server's auth string (auth is on by default)."""
    code = f"from prefect.blocks.system import Secret; Secret(value='kept').save({name!r}, overwrite=True)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=os.environ["PREFECT_HOME"])
    if auth:
        env["PREFECT_API_AUTH_STRING"] = auth
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _block_exists(env: Environment, name: str) -> bool:
    """Whether the environment's server holds the Secret block ``name`` (asked with its auth string)."""
    try:
        found = kit_api(env, "GET", f"/block_types/slug/secret/block_documents/name/{name}", patience=5)
        return bool(found["name"] == name)
    except (OSError, AssertionError):
        return False


def test_server_lifecycle(tmp_path: Path) -> None:
    """From empty homes: concurrent ups, both environments at once, status, down/up persistence, kill -9 recovery."""
    kit_repo = make_kit_repo(tmp_path / "repo", seed=False)  # the servers make and migrate their databases
    dev = resolve_environment("dev", kit_repo.root, {})
    prod = resolve_environment("prod", kit_repo.root, {})
    try:
        with ThreadPoolExecutor(3) as pool:
            runs = list(pool.map(lambda env: kit_repo.invoke("server-up", "--env", env), ["dev", "dev", "prod"]))
        for run in runs:
            assert run.returncode == 0, run.stderr
        outputs = sorted(run.stdout for run in runs[:2])
        assert "already up" in outputs[0] and "started in" in outputs[1], outputs
        pid_dev = read_pid_file(dev.files.server_pid)
        assert pid_dev is not None and is_alive(pid_dev)
        assert f"pid {pid_dev.pid}" in runs[0].stdout and f"pid {pid_dev.pid}" in runs[1].stdout
        assert servers.is_healthy(dev.local_api_url) and servers.is_healthy(prod.local_api_url)
        assert dev.files.database.exists() and prod.files.database.exists()

        again = kit_repo.invoke("server-up")  # the branch is `feature`: dev
        assert again.returncode == 0 and "dev server already up" in again.stdout

        status = kit_repo.invoke("server-status")
        assert status.returncode == 0, status.stderr
        rows = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
        assert (
            "healthy" in rows["dev"] and str(kit_repo.ports["dev"]) in rows["dev"] and str(pid_dev.pid) in rows["dev"]
        )
        assert "healthy" in rows["prod"] and "main" in rows["prod"]
        assert str(dev.files.database) in rows["dev"]

        written = resolve_environment("dev", kit_repo.root, {})  # with the auth string server-up wrote
        _save_block(dev.api_url, "persist-me", written.get("PREFECT_API_AUTH_STRING"))
        down = kit_repo.invoke("server-down", "--env", "dev")
        assert down.returncode == 0 and "dev server stopped" in down.stdout
        assert not group_alive(pid_dev.pid) and not dev.files.server_pid.exists()
        assert servers.is_healthy(prod.local_api_url)  # environments are independent
        down_again = kit_repo.invoke("server-down", "--env", "dev")
        assert down_again.returncode == 0 and "not running" in down_again.stdout

        up = servers.server_up(dev, kit_repo.environ())
        assert not up.already_up and _block_exists(dev, "persist-me")

        os.killpg(up.pid, signal.SIGKILL)  # a crash: the pid file stays behind
        eventually(  # the whole group dead and the port released, children included
            lambda: not running(up.pid) and port_is_free(dev.host, dev.port), 30, "the killed server's port to be free"
        )
        assert dev.files.server_pid.exists()
        recovered = servers.server_up(dev, kit_repo.environ())
        assert not recovered.already_up and recovered.pid != up.pid
        assert any("stale pid file" in note for note in recovered.notes)
        assert _block_exists(dev, "persist-me")

        logs = kit_repo.invoke("server-logs", "--env", "dev", "--lines", "200")
        assert logs.returncode == 0 and "starting:" in logs.stdout
    finally:
        for env in (dev, prod):
            servers.server_down(env)
    assert not servers.is_healthy(dev.local_api_url) and not servers.is_healthy(prod.local_api_url)


def test_port_held_by_another_process_is_named(kit_repo: KitRepo) -> None:
    dev = resolve_environment("dev", kit_repo.root, {})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", dev.port))
        listener.listen()
        run = kit_repo.invoke("server-up", "--env", "dev")
    assert run.returncode == 3
    assert f"Port {dev.port} (dev) is held by pid {os.getpid()}" in run.stderr
    assert "PREFECT_JULIA_PORT" in run.stderr
    assert not dev.files.server_pid.exists()


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param({"start_time": 1.0}, id="other start time"),
        pytest.param({"command": "prefect server start"}, id="other command line"),
    ],
)
def test_pid_file_of_an_unrelated_process_is_never_signalled(kit_repo: KitRepo, forged: dict[str, object]) -> None:
    """A reused pid matches the pid file only if start time AND command line match: one alone is not enough."""
    dev = resolve_environment("dev", kit_repo.root, {})
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        genuine = write_pid_file(dev.files.server_pid, bystander.pid, ["sleep", "60"])
        assert is_alive(genuine)  # the forgery below differs from the truth in one field only
        dev.files.server_pid.write_text(json.dumps({**json.loads(genuine.to_json()), **forged}))
        result = servers.server_down(dev)
        assert not result.was_running and "stale pid file" in result.notes[0]
        assert bystander.poll() is None and not dev.files.server_pid.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_server_that_exits_during_start_up_shows_its_log(kit_repo: KitRepo) -> None:
    local = kit_repo.root / "envs" / "dev.local.env"
    local.write_text(
        local.read_text() + "PREFECT_SERVER_DATABASE_CONNECTION_URL=sqlite+aiosqlite:////nonexistent/x.db\n"
    )
    dev = resolve_environment("dev", kit_repo.root, {})
    with pytest.raises(ServerError, match="exited during start-up") as error:
        servers.server_up(dev, kit_repo.environ(), timeout=90)
    assert "unable to open database file" in str(error.value)
    assert not dev.files.server_pid.exists()


def test_health_timeout_stops_what_it_started(kit_repo: KitRepo) -> None:
    dev = resolve_environment("dev", kit_repo.root, {})
    with pytest.raises(ServerError, match="not healthy after 1 s") as error:
        servers.server_up(dev, kit_repo.environ(), timeout=1)
    assert "PREFECT_JULIA_HEALTH_TIMEOUT" in str(error.value)
    assert not dev.files.server_pid.exists()
    assert servers.server_status(dev, "-").pid is None
    # the whole process group is gone: nothing orphaned
    left = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if f"--port {dev.port}" in " ".join(p.info["cmdline"] or [])
    ]
    assert left == [], left


def test_bad_host_is_reported(kit_repo: KitRepo) -> None:
    local = kit_repo.root / "envs" / "dev.local.env"
    local.write_text(local.read_text() + "PREFECT_JULIA_HOST=256.1.1.1\n")
    dev = resolve_environment("dev", kit_repo.root, {})
    with pytest.raises(ServerError, match=r"Cannot listen on 256\.1\.1\.1"):
        servers.server_up(dev, kit_repo.environ())
