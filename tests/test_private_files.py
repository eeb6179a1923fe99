"""Private files everywhere, and no trust in shared folders: folders the kit uses are its user's alone (0700,
refused otherwise), processes it starts create 0600 files, and the fork server's folder goes with it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from live_kit import LiveKit
from prefect_julia.core.errors import ConfigError
from prefect_julia.core.files import private_folder
from prefect_julia.core.processes import spawn, write_pid_file
from prefect_julia.runtime.forkserver import CLIENT_MODULE, FOLDER_PREFIX
from prefect_julia.runtime.julia_image import current_image
from prefect_julia.runtime.julia_session import session_folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_private_folder_is_0700_and_an_open_or_foreign_one_is_refused_with_the_fix(tmp_path: Path) -> None:
    made = private_folder(tmp_path / "a" / "b", "the test folder")
    assert _mode(made) == 0o700
    open_one = tmp_path / "open"
    open_one.mkdir()
    open_one.chmod(0o777)
    with pytest.raises(ConfigError) as refused:
        private_folder(open_one, "the test folder", "SOME_DIR")
    assert "open to other users (mode 0777)" in str(refused.value)
    assert f"fix: chmod 700 {open_one}, or set SOME_DIR" in str(refused.value)
    open_one.chmod(0o750)
    with pytest.raises(ConfigError):
        private_folder(open_one, "the test folder")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        private_folder(not_a_folder, "the test folder")


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to another user"):
        private_folder(foreign, "the test folder")


def test_warm_sessions_never_fall_back_to_a_shared_temporary_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = session_folder({"HOME": str(home)})
    assert folder == home / ".cache" / "prefect-julia" / "sessions"
    assert not str(folder).startswith(tempfile.gettempdir() + "/prefect-julia-sessions")
    assert _mode(folder) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp is: anyone may create it first
    with pytest.raises(ConfigError, match="chmod 700"):
        session_folder({"PREFECT_JULIA_SESSION_DIR": str(shared)})


def test_an_images_folder_others_may_write_to_is_refused(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    images.chmod(0o775)
    env = {"PREFECT_JULIA_IMAGE_DIR": str(images), "PREFECT_JULIA_IMAGE": "auto"}
    with pytest.raises(ConfigError, match="Julia images' folder"):
        current_image("julia", Path(__file__).resolve().parents[1] / "julia", env)
    images.chmod(0o700)
    assert current_image("julia", Path(__file__).resolve().parents[1] / "julia", env) is None


def test_processes_the_kit_starts_create_private_files_whatever_the_callers_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        script = f"umask; touch {tmp_path / 'made.txt'}; mkdir {tmp_path / 'made'}"
        child = spawn(["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"]}, text=True)
        out, _ = child.communicate(timeout=60)
        pid_file = tmp_path / "x.pid"
        write_pid_file(pid_file, os.getpid(), [sys.executable])
    finally:
        os.umask(previous)
    assert out.strip() == "0077"
    assert _mode(tmp_path / "made.txt") == 0o600 and _mode(tmp_path / "made") == 0o700
    assert _mode(pid_file) == 0o600


def test_the_fork_servers_folder_is_removed_on_sigterm() -> None:
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    socket_path = folder / "socket"
    server = subprocess.Popen(
        [sys.executable, "-m", CLIENT_MODULE, "--serve", str(socket_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()  # blocks until the server has bound its socket (or ended)
        assert "fork server ready" in ready, ready + server.stdout.read()
        assert socket_path.exists()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert not folder.exists()


@pytest.mark.server
def test_the_files_of_a_running_environment_are_private(live_kit: LiveKit) -> None:
    """What the kit and the processes it started wrote is 0600 in a 0700 home. (The test kit's prefect.db is
    seeded by the harness, not made by its server: ``Home.tighten`` is what makes such a database private.)"""
    files = live_kit.env.files
    assert _mode(live_kit.env.home) == 0o700
    own = (files.server_pid, files.worker_pid, files.identity, files.server_log, files.worker_log, files.server_lock)
    for path in own:
        assert _mode(path) == 0o600, f"{path} is {_mode(path):04o}"
    files.tighten()
    for path in files.kit_files():
        assert _mode(path) == 0o600, f"{path} is {_mode(path):04o}"
    assert any(path.name == "prefect.db-wal" for path in files.kit_files())


def test_tighten_makes_a_homes_files_private(tmp_path: Path) -> None:
    from prefect_julia.kit.environment.home import Home

    home = Home(tmp_path)
    for name in ("prefect.db", "prefect.db-wal", "server.pid", "kit-identity.json"):
        (tmp_path / name).write_text("x")
        (tmp_path / name).chmod(0o644)
    (tmp_path / "data.csv").write_text("a\n")
    assert sorted(p.name for p in home.tighten()) == ["kit-identity.json", "prefect.db", "prefect.db-wal", "server.pid"]
    assert all(_mode(tmp_path / n) == 0o600 for n in ("prefect.db", "prefect.db-wal", "server.pid"))
    assert _mode(tmp_path / "data.csv") == 0o644 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
