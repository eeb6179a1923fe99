"""Build the Julia image fresh jobs start with (``invoke julia-image``); what an image is: ``runtime/julia_image.py``.

A build runs ``julia --output-o`` on the project's ``build/image.jl`` (Julia writes every module it loaded
and everything it compiled into one object file: about 3 minutes on 2 cores), links the object into a shared
library with the C compiler, checks that julia starts with it and loads the package, and only then puts it
in place: a failed or interrupted build leaves the images folder as it was. One build at a time per folder
(a lock file); the newest :data:`KEEP` images are kept, older ones removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import CommandFailed, ConfigError, PrefectJuliaError
from prefect_julia.core.files import private_folder, tail, write_atomic
from prefect_julia.core.processes import file_lock
from prefect_julia.core.setting import JULIA_IMAGE_DIR
from prefect_julia.runtime.bridge import default_project, find_julia
from prefect_julia.runtime.julia_image import (
    BUILD_SCRIPT,
    IMAGES_FOLDER,
    PACKAGE,
    Image,
    base_stat,
    image_dir,
    julia_start,
    wanted,
)

#: Images kept in the folder after a build (each is about 150 MB): this build's and the ones before it.
KEEP = 3
#: Seconds a build may take before it is stopped.
BUILD_TIMEOUT = 1800.0
#: The variables of a build's environment that Julia reads; nothing else (no server, no credentials) reaches it.
PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "JULIA_DEPOT_PATH", "JULIA_LOAD_PATH")
COMPILERS = ("gcc", "cc")


@dataclass(frozen=True)
class BuildReport:
    path: Path
    built: bool  # False: the image already matched the code
    seconds: float
    size: int
    removed: list[Path]


def compiler(env: Mapping[str, str]) -> str:
    """The C compiler that links the image (``gcc``, else ``cc``, on PATH)."""
    for name in COMPILERS:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return found
    raise ConfigError(
        "Building a Julia image needs a C compiler to link it, and neither gcc nor cc is on PATH.",
        hint="Install one (Debian/Ubuntu: `sudo apt-get install gcc`), then run `invoke julia-image` again.",
    )


@contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    with file_lock(folder / ".build.lock", wait=False) as held:
        if not held:
            raise ConfigError(
                f"Another build of a Julia image is running in {folder}.",
                hint="Wait for it to finish (a build takes a few minutes), then run `invoke julia-image` again.",
            )
        yield


def _run(command: list[str], env: Mapping[str, str], log: Path, what: str, hint: str) -> None:
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                command, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT, check=False, start_new_session=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise CommandFailed(
                f"{what} took longer than {BUILD_TIMEOUT:g} s and was stopped.", command=command, hint=hint
            ) from None
    if done.returncode != 0:
        raise CommandFailed(
            f"{what} failed.", command=command, return_code=done.returncode, stderr_tail=tail(log, 30), hint=hint
        )


#: Asks julia for its version, its own image (a build starts from it) and its library (an image links to it).
FACTS = (
    "using Libdl; println(VERSION); println(unsafe_string(Base.JLOptions().image_file)); "
    'println(first(filter(p -> startswith(basename(p), "libjulia."), dllist())))'
)


def julia_facts(julia: str, env: Mapping[str, str]) -> dict[str, str]:
    """Julia's version, its own image and its library, as julia reports them."""
    command = [julia, "--startup-file=no", "-e", FACTS]
    try:
        done = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=120, check=False)
        lines = done.stdout.splitlines() if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        lines = []
    if len(lines) != 3 or not all(lines):
        raise CommandFailed(
            "julia did not say where its own image and library are.",
            command=command,
            hint="Check that `julia --startup-file=no -e 1` works (`bash scripts/install-julia.sh` installs it).",
        )
    return dict(zip(("julia_version", "base_image", "libjulia"), lines, strict=True))


def image_of(environ: Mapping[str, str]) -> Image:
    """The image of the julia and Julia project ``environ`` names (``PREFECT_JULIA_BIN``, ``PREFECT_JULIA_PROJECT``)."""
    return Image.of(find_julia(environ), default_project(environ).resolve(), environ)


def build_image(environ: Mapping[str, str], *, force: bool = False, say: Callable[[str], None] = print) -> BuildReport:
    """Build the image of the Julia project ``environ`` names (``PREFECT_JULIA_PROJECT``, ``PREFECT_JULIA_BIN``,
    ``PREFECT_JULIA_IMAGE_DIR``), unless one matching the code exists and ``force`` is False."""
    image = image_of(environ)
    julia, project = image.julia, image.project
    if not (project / BUILD_SCRIPT).is_file():
        raise ConfigError(
            f"The Julia project {project} has no {BUILD_SCRIPT.as_posix()}, the script an image is built with.",
            hint="Set PREFECT_JULIA_PROJECT to the kit's julia/ folder, or restore julia/build/image.jl from git.",
        )
    if image.is_current() and not force:
        return BuildReport(image.path, False, 0.0, image.path.stat().st_size, [])
    cc = compiler(environ)
    folder = private_folder(image.path.parent, IMAGES_FOLDER, JULIA_IMAGE_DIR.name)
    started = time.monotonic()
    with _build_lock(folder), tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as scratch:
        work = Path(scratch)
        log, obj, built = work / "build.log", work / "image.o", work / "image.so"
        env = {name: environ[name] for name in PASSED if environ.get(name)}
        facts = julia_facts(julia, env)
        say(f"compiling {PACKAGE} and a job-like workload into a Julia image (about 3 minutes) ...")
        hint = f"Read the build log above; the build script is {project / BUILD_SCRIPT}."
        _run(
            [*julia_start(julia, Path(facts["base_image"])), f"--project={project}", "--startup-file=no",
             f"--output-o={obj}", str(project / BUILD_SCRIPT)],
            env, log, "Compiling the Julia image", hint,
        )  # fmt: skip
        say("linking it ...")
        _run(
            [cc, "-shared", "-o", str(built), "-Wl,--whole-archive", str(obj), "-Wl,--no-whole-archive",
             str(facts["libjulia"])],
            env, log, "Linking the Julia image", "Check that the C compiler works: `gcc --version`.",
        )  # fmt: skip
        check = f"using {PACKAGE}; print(isdefined(Base, :PROGRAM_FILE))"
        _run(
            [*julia_start(julia, built), f"--project={project}", "--startup-file=no", "-e", check],
            env, log, "Starting julia with the new image", hint,
        )  # fmt: skip
        install(image, built, facts)
    removed = prune(folder, keep=image.path)
    return BuildReport(image.path, True, time.monotonic() - started, image.path.stat().st_size, removed)


def install(image: Image, built: Path, facts: Mapping[str, str]) -> None:
    """Move the linked image ``built`` (in the images folder) into place with its record."""
    record: dict[str, object] = dict(facts)
    record["base_image_stat"] = base_stat(Path(facts["base_image"]))
    record.update(
        key=image.key, project=str(image.project), julia=image.julia, built_at=time.strftime("%Y-%m-%dT%H:%M:%S")
    )
    write_atomic(image.record, json.dumps(record, indent=2).encode(), mode=0o600)
    os.chmod(built, 0o600)
    os.replace(built, image.path)  # last: an image in place always has its record


def prune(folder: Path, keep: Path) -> list[Path]:
    """Remove all but the :data:`KEEP` newest images (never ``keep``); returns the removed images."""
    images = sorted(folder.glob(f"{PACKAGE}-*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = [p for p in images[KEEP:] if p != keep]
    for path in removed:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
    return removed


def image_state(environ: Mapping[str, str], *, quiet: bool = False) -> tuple[str, Path | None]:
    """(``current``, ``not built`` or ``off``; the image's path) for the code ``environ`` names. With
    ``quiet``, ``("unknown", None)`` where that cannot be told (no julia) instead of the error."""
    try:
        image = image_of(environ)
    except (PrefectJuliaError, OSError):
        if quiet:
            return "unknown", None
        raise
    if not wanted(environ):
        return "off", image.path
    return ("current" if image.is_current() else "not built"), image.path


__all__ = [
    "KEEP",
    "BuildReport",
    "build_image",
    "compiler",
    "image_dir",
    "image_of",
    "image_state",
    "install",
    "julia_facts",
    "prune",
]
