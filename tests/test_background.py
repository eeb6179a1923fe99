"""`core.background.Background`: the one lifecycle of the kit's background processes, on real processes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness import eventually
from prefect_julia.core.background import Background
from prefect_julia.core.processes import read_pid_file, running, write_pid_file

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]


def _background(tmp_path: Path) -> Background:
    return Background("sleeper", tmp_path / "sleeper.pid", tmp_path / "logs" / "sleeper.log", tmp_path / "sleeper.lock")


def test_start_records_the_process_and_stop_ends_it(tmp_path: Path) -> None:
    bg = _background(tmp_path)
    assert bg.record() is None and bg.stop() is None  # nothing ran: nothing to stop
    process = bg.start(SLEEPER, env=dict(os.environ))
    try:
        assert bg.pid() == process.pid
        assert (bg.log_file.stat().st_mode & 0o777) == 0o600  # its log is its owner's alone
        eventually(lambda: "up" in bg.log_file.read_text(), 30, "the sleeper's line in its log")
        stopped = bg.stop(grace=5)
        assert stopped is not None and stopped.pid == process.pid and not stopped.killed
        process.wait(timeout=10)
        assert not bg.pid_file.exists() and bg.record() is None
    finally:
        if process.poll() is None:
            process.kill()


def test_a_start_that_never_becomes_ready_leaves_nothing_running(tmp_path: Path) -> None:
    bg = _background(tmp_path)
    seen: list[subprocess.Popen[bytes]] = []

    def never(process: subprocess.Popen[bytes]) -> None:
        seen.append(process)
        raise TimeoutError("not ready")

    with pytest.raises(TimeoutError):
        bg.start(SLEEPER, env=dict(os.environ), ready=never, grace=2)
    (process,) = seen
    assert process.wait(timeout=10) is not None and not running(process.pid)
    assert not bg.pid_file.exists()


def test_a_stale_or_unreadable_pid_file_is_removed_and_said(tmp_path: Path) -> None:
    bg = _background(tmp_path)
    assert bg.forget_stale() is None  # no file
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_pid_file(bg.pid_file, int(done.stdout), ["gone"])  # a pid that no longer runs that command
    note = bg.forget_stale()
    assert note is not None and "stale pid file (sleeper.pid" in note and "no longer runs the sleeper" in note
    assert not bg.pid_file.exists()
    bg.pid_file.write_text("{torn")
    note = bg.forget_stale()
    assert note is not None and "unreadable pid file" in note and not bg.pid_file.exists()


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    """A record names pid, start time and command: another process holding the pid is never stopped."""
    bg = _background(tmp_path)
    other = subprocess.Popen(SLEEPER)
    try:
        write_pid_file(bg.pid_file, other.pid, ["some", "other", "command"])
        assert bg.record() is None and bg.stop() is None
        assert other.poll() is None  # not stopped
        record = read_pid_file(bg.pid_file)
        assert record is None  # the stale record was removed by stop
    finally:
        other.kill()
        other.wait()


def test_record_again_follows_an_exec(tmp_path: Path) -> None:
    bg = _background(tmp_path)
    wrapper = ["/bin/sh", "-c", f"exec {shlex.quote(sys.executable)} -c 'import time; time.sleep(600)'"]
    process = bg.start(wrapper, env=dict(os.environ))
    try:
        eventually(lambda: "import time" in " ".join(psutil.Process(process.pid).cmdline()), 30, "the exec")
        assert bg.record() is None  # the recorded command line is the wrapper's
        assert bg.record_again(process.pid).pid == process.pid
        assert bg.pid() == process.pid
    finally:
        bg.stop(grace=2)
        process.wait(timeout=10)
