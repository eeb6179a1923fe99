"""A write killed half-way (SIGKILL) leaves the previous data intact, and its temporary file does not outlive
the next write or read of that dataset, from Python and from Julia (both name temporary files alike).

The writers are real processes running the kit's own write code; each is held mid-write (after its temporary
file holds data, before the rename) and then SIGKILLed, as a killed job would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from harness import eventually
from prefect_julia.core.files import stale_temps, write_atomic
from prefect_julia.runtime.dataset import Dataset

REPO_ROOT = Path(__file__).resolve().parents[1]

#: A Python writer held after writing its temporary file: fsync never returns.
PY_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from prefect_julia.runtime.dataset import Dataset
    os.fsync = lambda fd: time.sleep(3600)
    Dataset("iris", basepath=sys.argv[1], env={}).write_text("new,half\\n" * 100_000)
    """
)


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".data.csv.tmp-*"))


def _wait_for_temp(folder: Path, process: subprocess.Popen[bytes], timeout: float = 120) -> Path:

    def found() -> list[Path] | str:
        return [p for p in _temps(folder) if p.stat().st_size > 0] or ("exited" if process.poll() is not None else "")

    temps = eventually(found, timeout, "the writer to start its temporary file")
    assert not isinstance(temps, str), process.stderr.read().decode() if process.stderr else "writer exited"
    return temps[0]


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _dataset(base: Path) -> Dataset:
    return Dataset("iris", basepath=base, env={})


def test_python_write_killed_leaves_old_data_and_next_write_sweeps(tmp_path: Path) -> None:
    _dataset(tmp_path).write_text("old\n")
    writer = subprocess.Popen([sys.executable, "-c", PY_WRITER, str(tmp_path)], stderr=subprocess.PIPE)
    try:
        temp = _wait_for_temp(tmp_path, writer)
    finally:
        _kill(writer)
    assert temp.exists(), "the killed writer left no temporary file: the test did not kill it mid-write"
    assert _dataset(tmp_path).read_text() == "old\n"  # previous data intact
    assert not temp.exists(), "a read of the dataset did not remove the killed write's temporary file"

    writer = subprocess.Popen([sys.executable, "-c", PY_WRITER, str(tmp_path)], stderr=subprocess.PIPE)
    try:
        temp = _wait_for_temp(tmp_path, writer)
    finally:
        _kill(writer)
    _dataset(tmp_path).write_text("next\n")
    assert not temp.exists(), "the next write did not remove the killed write's temporary file"
    assert _temps(tmp_path) == []
    assert _dataset(tmp_path).read_text() == "next\n"


def test_a_running_writers_temp_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "data.csv"
    live = tmp_path / f".data.csv.tmp-{os.getpid()}-abc"  # this process runs: a write in progress
    live.write_text("in progress")
    write_atomic(target, b"x")
    assert live.exists() and stale_temps(target) == []


def _julia() -> str:
    julia = shutil.which("julia")
    if julia is None:
        pytest.fail("julia is not on PATH: run `bash scripts/install-julia.sh`.")
    return julia


def _julia_writer(path: Path) -> subprocess.Popen[bytes]:
    """A Julia process in ``atomicwrite(path, stdin)``: its temporary file exists, it waits for stdin's end."""
    code = "using PrefectInterfaces; PrefectInterfaces.atomicwrite(ARGS[1], stdin)"
    return subprocess.Popen(
        [_julia(), f"--project={REPO_ROOT / 'julia'}", "--startup-file=no", "-e", code, str(path)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_julia_write_killed_is_swept_by_the_next_julia_write_and_python_write(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    target = tmp_path / ds.dated_path
    write_atomic(target, b"old\n")
    writer = _julia_writer(target)
    try:
        temp = _wait_for_any_temp(tmp_path, writer)
    finally:
        _kill(writer)
    assert temp.name.startswith(".data.csv.tmp-") and temp.exists()
    assert target.read_bytes() == b"old\n"

    code = 'using PrefectInterfaces; PrefectInterfaces.atomicwrite(ARGS[1], "julia\\n")'
    done = subprocess.run(
        [_julia(), f"--project={REPO_ROOT / 'julia'}", "--startup-file=no", "-e", code, str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not temp.exists(), "the next Julia write did not remove the killed Julia write's temporary file"
    assert target.read_bytes() == b"julia\n"

    writer = _julia_writer(target)
    try:
        temp = _wait_for_any_temp(tmp_path, writer)
    finally:
        _kill(writer)
    Dataset("iris", basepath=tmp_path, env={}, rundate=date.today()).write_text("python\n")
    assert not temp.exists(), "a Python write did not remove a killed Julia write's temporary file"
    assert _temps(tmp_path) == []


def _wait_for_any_temp(folder: Path, process: subprocess.Popen[bytes], timeout: float = 180) -> Path:
    """Julia's temporary file is empty while it waits for stdin: wait for it to exist."""

    def found() -> list[Path] | str:
        return _temps(folder) or ("exited" if process.poll() is not None else "")

    temps = eventually(found, timeout, "julia to start its temporary file")
    assert not isinstance(temps, str), process.stderr.read().decode() if process.stderr else "julia exited"
    return temps[0]
