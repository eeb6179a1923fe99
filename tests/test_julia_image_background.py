"""The Julia image builds itself: one background build where jobs would start without a matching image.

Real parts: a real `invoke worker-up` in a kit copy with its server, the kit's real background builder started
by module name with a real julia running the build script. The build script here is the test's own (the kit
takes it from the Julia project PREFECT_JULIA_PROJECT names): it waits for a file the test writes, so that
"a build is running" is a fact the test controls, not a race; then it fails at once, or (the slow test) loads
the package and lets the real build finish, which takes minutes at the lowest CPU priority.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conftest import REPO_ROOT
from harness import eventually
from live_kit import LiveKit
from prefect_julia.kit.julia import images
from prefect_julia.runtime import julia_image
from prefect_julia.runtime.bridge import find_julia, run_julia

HELD_SCRIPT = """Base.reinit_stdio()
while !isfile({release}) sleep(0.1) end
{then}
"""
FAIL = 'error("the test stopped this build")'
LOAD = """@eval Module() begin
    Base.init_load_path()
    Base.init_depot_path()
    using PrefectInterfaces
end
empty!(LOAD_PATH)
empty!(DEPOT_PATH)"""


def _project(tmp_path: Path, then: str) -> tuple[Path, Path]:
    """A copy of the Julia project whose build script waits for the returned release file, then runs ``then``."""
    project = tmp_path / "julia"
    shutil.copytree(REPO_ROOT / "julia", project, ignore=shutil.ignore_patterns("test", "Manifest.toml"))
    release = tmp_path / "release"
    (project / julia_image.BUILD_SCRIPT).write_text(HELD_SCRIPT.format(release=json.dumps(str(release)), then=then))
    return project, release


def _settings(tmp_path: Path, project: Path) -> dict[str, str]:
    return {
        "PREFECT_JULIA_IMAGE": "auto",
        "PREFECT_JULIA_IMAGE_DIR": str(tmp_path / "images"),
        "PREFECT_JULIA_PROJECT": str(project),
    }


def _builder(folder: Path) -> psutil.Process:
    record = julia_image.running_build(folder)
    assert record is not None, "no background build runs"
    return psutil.Process(record.pid)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.julia
def test_worker_up_starts_one_background_build_and_a_failed_one_is_not_retried(
    live_kit: LiveKit, tmp_path: Path
) -> None:
    project, release = _project(tmp_path, FAIL)
    settings = _settings(tmp_path, project)
    env = {**os.environ, **settings}
    folder = tmp_path / "images"
    image = julia_image.Image.of(find_julia(env), project.resolve(), env)

    live_kit.worker_up()  # running already: the call below only triggers (its worker keeps the kit's settings)
    up = live_kit.repo.invoke("worker-up", "--env", "dev", timeout=300, check=True, **settings)
    assert "building the Julia image in the background" in up.stderr + up.stdout, up.stdout + up.stderr
    builder = _builder(folder)
    assert builder.nice() == 19  # the lowest CPU priority
    assert _mode(image.log) == 0o600 and _mode(folder) == 0o700

    # While it runs (it waits for the release file): the status says so, and a second trigger starts none.
    status = live_kit.repo.invoke("worker-status", "--env", "dev", check=True, **settings)
    again = julia_image.start_build(image.julia, image.project, env)
    second = live_kit.repo.invoke("worker-up", "--env", "dev", timeout=300, check=True, **settings)
    assert _builder(folder).pid == builder.pid and builder.is_running()  # so it ran through all of the above
    assert "Julia image: building (since " in status.stdout, status.stdout
    assert again.state == "building"
    assert "building the Julia image" not in second.stdout + second.stderr
    assert [p for p in psutil.process_iter(["cmdline"]) if julia_image.BUILDER_MODULE in (p.info["cmdline"] or [])
            and "--background" in (p.info["cmdline"] or [])].count(builder) == 1  # fmt: skip

    # It fails: recorded with the key, the log kept; no trigger starts it again for this code.
    release.write_text("go")
    eventually(lambda: image.failure.exists() and julia_image.running_build(folder) is None, 600, "the failure")
    assert "the test stopped this build" in image.log.read_text()
    assert _mode(image.failure) == 0o600
    status = live_kit.repo.invoke("status", "--env", "dev", check=True, **settings)
    assert f"Julia image: failed (log: {image.log})" in status.stdout, status.stdout
    log_before = image.log.stat().st_mtime_ns
    assert julia_image.start_build(image.julia, image.project, env).state == "failed"
    done = run_julia("hello", {"name": "x"}, env=env, project=project, session="fresh")  # the bridge's trigger
    assert not any(word.startswith("--sysimage=") for word in done.command)
    assert julia_image.running_build(folder) is None and image.log.stat().st_mtime_ns == log_before

    # The code changes: a new key, and the bridge's first fresh job starts its build.
    with (project / "src" / "json.jl").open("a", encoding="utf-8") as source:
        source.write("\n# a change\n")
    changed = julia_image.Image.of(image.julia, image.project, env)
    assert changed.key != image.key and not changed.failure.exists()
    run_julia("hello", {"name": "y"}, env=env, project=project, session="fresh")
    eventually(lambda: changed.failure.exists() and julia_image.running_build(folder) is None, 600, "the 2nd build")
    assert image.failure.exists()  # the first key's record stays: its code has not come back


def test_off_starts_none_and_a_missing_compiler_is_noted_once(tmp_path: Path) -> None:
    project, _ = _project(tmp_path, FAIL)
    folder = tmp_path / "images"
    env = {**os.environ, **_settings(tmp_path, project)}
    julia = find_julia(env)

    assert julia_image.start_build(julia, project, {**env, "PREFECT_JULIA_IMAGE": "off"}).state == "off"
    assert not folder.exists()
    assert images.status_line({**env, "PREFECT_JULIA_IMAGE": "off"}) == "Julia image: off (PREFECT_JULIA_IMAGE=off)"

    bare = tmp_path / "bin"  # julia and python, no gcc or cc
    bare.mkdir()
    (bare / "julia").symlink_to(julia)
    no_cc = {**env, "PATH": f"{bare}:{Path(sys.executable).parent}", "PREFECT_JULIA_BIN": julia}
    first = julia_image.start_build(julia, project, no_cc)
    assert first.state == "no compiler" and "no C compiler" in first.note
    second = julia_image.start_build(julia, project, no_cc)
    assert second.state == "no compiler" and second.note == ""  # said once
    assert julia_image.running_build(folder) is None and not list(folder.glob("*.log"))
    assert "no C compiler on PATH" in images.status_line(no_cc)
    assert images.status_line(env) == "Julia image: not built"


@pytest.mark.julia
@pytest.mark.skipif(
    os.environ.get("PREFECT_JULIA_SLOW_TESTS") != "1",
    reason="a real image build takes minutes at nice 19: PREFECT_JULIA_SLOW_TESTS=1 runs it",
)
def test_a_background_build_puts_a_real_image_in_place_and_jobs_start_with_it(tmp_path: Path) -> None:
    project, release = _project(tmp_path, LOAD)
    settings = _settings(tmp_path, project)
    env = {**os.environ, **settings}
    folder = tmp_path / "images"
    started = subprocess.run(
        [sys.executable, "-m", julia_image.BUILDER_MODULE, "--start"], env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert "building the Julia image in the background" in started.stdout
    _builder(folder)
    release.write_text("go")
    image = julia_image.Image.of(find_julia(env), project.resolve(), env)
    eventually(lambda: julia_image.running_build(folder) is None, 1800, "the build's end")
    assert images.status_line(env) == "Julia image: current", image.log.read_text()
    assert _mode(image.path) == 0o600
    done = run_julia("hello", {"name": "img"}, env=env, project=project, session="fresh")
    assert f"--sysimage={image.path}" in done.command
