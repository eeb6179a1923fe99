"""Julia images: which image a fresh job starts with, and `invoke julia-image`'s refusals and failures.

A real build compiles for about 3 minutes on 2 cores, more than the gate can spend on one test: it runs in
`invoke bench-julia` (benchmarks/julia_flow.py builds one, checks that jobs start with it and measures
them). Here the image put in place is Julia's own default image, copied: a real image file that julia
really starts with, placed by the same `images.install` a build ends with.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, make_kit_repo
from prefect_julia.kit.julia import images
from prefect_julia.runtime import julia_image, julia_session
from prefect_julia.runtime.bridge import find_julia, run_julia


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "julia"
    for part in ("Project.toml", "src", "jobs", "build"):
        source = REPO_ROOT / "julia" / part
        if source.is_dir():
            shutil.copytree(source, project / part)
        else:
            project.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / part)
    return project


def test_the_key_follows_the_package_code_not_the_jobs(tmp_path: Path) -> None:
    project = _project(tmp_path)
    key = julia_image.image_key(sys.executable, project)
    (project / "jobs" / "hello.jl").write_text("# changed job\n", encoding="utf-8")
    assert julia_image.image_key(sys.executable, project) == key  # jobs are not in the image
    with (project / "src" / "json.jl").open("a", encoding="utf-8") as source:
        source.write("\n# changed package\n")
    changed = julia_image.image_key(sys.executable, project)
    assert changed != key
    (project / "Manifest.toml").write_text("# resolved\n", encoding="utf-8")
    assert julia_image.image_key(sys.executable, project) != changed
    other_julia = tmp_path / "julia-bin"
    other_julia.write_text("#!/bin/sh\n", encoding="utf-8")
    assert julia_image.image_key(str(other_julia), project) != julia_image.image_key(sys.executable, project)


@pytest.mark.julia
def test_a_fresh_job_starts_with_the_current_image_and_never_a_stale_one(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {
        **os.environ,
        "PREFECT_JULIA_IMAGE_DIR": str(tmp_path / "images"),
        "PREFECT_JULIA_PROJECT": str(project),
        "PREFECT_JULIA_IMAGE": "auto",
    }
    env.pop("PREFECT_API_URL", None)
    julia = find_julia(env)
    image = julia_image.Image.of(julia, project, env)
    # No background build here (its own tests are in test_julia_image_background.py): as if one had failed.
    image.path.parent.mkdir(parents=True, mode=0o700)
    image.failure.write_text("{}")
    facts = images.julia_facts(julia, env)
    stand_in = image.path.parent / "built.so"
    shutil.copy2(facts["base_image"], stand_in)
    images.install(image, stand_in, facts)

    def started_with(**extra: str) -> str | None:
        done = run_julia("hello", {"name": "img"}, env={**env, **extra}, project=project, session="fresh")
        assert done.result["greeting"] == "hello, img"  # the job ran to its end with that command line
        flags = [word for word in done.command if word.startswith("--sysimage=")]
        return flags[0].removeprefix("--sysimage=") if flags else None

    assert started_with() == str(image.path)
    assert images.image_state(env) == ("current", image.path)

    # A warm session starts with it too (and is replaced by one without it once the image no longer matches).
    sessions = tmp_path / "sessions"
    warm = {**env, "PREFECT_JULIA_SESSION_DIR": str(sessions)}
    try:
        done = run_julia("hello", {"name": "warm"}, env=warm, project=project, session="warm")
        assert done.result["greeting"] == "hello, warm"
        (session,) = julia_session.sessions(sessions)
        assert f"--sysimage={image.path}" in session.record.command
    finally:
        julia_session.stop_sessions(sessions)
    assert started_with(PREFECT_JULIA_IMAGE="off") is None

    # Julia's own image changed since the build (Julia upgraded in place): not used.
    record = json.loads(image.record.read_text())
    image.record.write_text(json.dumps({**record, "base_image_stat": [1, 2]}))
    assert started_with() is None
    image.record.write_text(json.dumps(record))
    assert started_with() == str(image.path)

    # The package's code changed: its image no longer matches, until it is built again.
    with (project / "src" / "bridge.jl").open("a", encoding="utf-8") as source:
        source.write("\n# a change\n")
    julia_image.Image.of(julia, project, env).failure.write_text("{}")
    assert started_with() is None
    assert images.image_state(env)[0] == "not built"


@pytest.mark.julia
def test_julia_image_refusals_and_a_failed_build_leave_nothing_behind(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    folder = tmp_path / "images"
    settings = {"PREFECT_JULIA_IMAGE_DIR": str(folder), "PREFECT_JULIA_IMAGE": "auto"}

    checked = repo.invoke("julia-image", "--check", check=True, **settings)
    assert "Julia image: not built" in checked.stdout

    # No C compiler on PATH: refused before anything is compiled.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "julia").symlink_to(find_julia(os.environ))
    python_dir = str(Path(sys.executable).parent)
    no_cc = repo.invoke("julia-image", PATH=f"{bin_dir}:{python_dir}", **settings)
    assert no_cc.returncode == 2, no_cc.stdout + no_cc.stderr
    assert "neither gcc nor cc is on PATH" in no_cc.stderr and "fix: Install one" in no_cc.stderr
    assert "Traceback" not in no_cc.stderr
    assert not folder.exists()  # nothing was created

    # Another build holds the folder's lock: refused, the other build untouched.
    folder.mkdir(mode=0o700)
    with (folder / ".build.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = repo.invoke("julia-image", **settings)
    assert busy.returncode == 2 and "Another build of a Julia image is running" in busy.stderr, busy.stderr

    # A build script that fails: the error and its output tail, exit 4, and no image or scratch folder left.
    script = repo.root / "julia" / "build" / "image.jl"
    broken = script.read_text().replace(
        "Base.reinit_stdio()\n", 'Base.reinit_stdio()\nerror("broken workload: $(1 + 1)")\n'
    )
    script.write_text(broken, encoding="utf-8")
    failed = repo.invoke("julia-image", timeout=300, **settings)
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert "Compiling the Julia image failed" in failed.stderr and "broken workload: 2" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert sorted(p.name for p in folder.iterdir()) == [".build.lock"]
    again = repo.invoke("julia-image", "--check", check=True, **settings)
    assert "Julia image: not built" in again.stdout


# Loads the package the way julia/build/image.jl does (Julia's image-compiling mode, in which Julia's default
# random generator is not set up), writes a file atomically, then leaves before any image is written.
_LOAD_AS_AN_IMAGE_BUILD = """
Base.reinit_stdio()
Base.init_load_path()
Base.init_depot_path()
using PrefectInterfaces
target = joinpath(ARGS[1], "out.json")
PrefectInterfaces.atomicwrite(target, "{}")
PrefectInterfaces.atomicwrite(target, "[]")
println("wrote ", read(target, String))
flush(stdout)
ccall(:_exit, Cvoid, (Cint,), 0)
"""


@pytest.mark.julia
@pytest.mark.slow
def test_the_package_loads_and_writes_while_an_image_is_compiled(tmp_path: Path) -> None:
    julia = find_julia(os.environ)
    facts = images.julia_facts(julia, dict(os.environ))
    script = tmp_path / "load.jl"
    script.write_text(_LOAD_AS_AN_IMAGE_BUILD, encoding="utf-8")
    done = subprocess.run(
        [julia, f"--sysimage={facts['base_image']}", f"--project={REPO_ROOT / 'julia'}", "--startup-file=no",
         f"--output-o={tmp_path / 'never.o'}", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "wrote []"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["load.jl", "out.json"]  # no temporary left
