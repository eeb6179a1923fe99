"""Build the Julia image fresh jobs start with (``invoke julia-image``); what an image is: ``runtime/julia_image.py``.

A build runs ``julia --output-o`` on the project's ``build/image.jl`` (Julia writes every module it loaded
and everything it compiled into one object file: about 3 minutes on 2 cores), links the object into a shared
library with the C compiler, checks that julia starts with it and loads the package, and only then puts it
in place: a failed or interrupted build leaves the images folder as it was. One build at a time per folder
(a lock file); the newest :data:`KEEP` images are kept, older ones removed.

The same build runs in the background by itself (:func:`start_in_background`, started by ``invoke deploy``,
``invoke worker-up``, ``scripts/bootstrap.sh`` and the bridge's first fresh job; ``python -m
prefect_julia.kit.julia.images --start`` from a shell): :func:`main` with ``--background`` is that build,
``runtime/julia_image.start_build`` starts it. :func:`status_line` says where it is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import CommandFailed, ConfigError, PrefectJuliaError
from prefect_julia.core.files import private_folder, tail, write_atomic
from prefect_julia.core.processes import file_lock
from prefect_julia.core.setting import JULIA_IMAGE_DIR
from prefect_julia.runtime.julia_image import (
    BUILD_LOCK,
    BUILD_SCRIPT,
    IMAGES_FOLDER,
    NO_COMPILER,
    PACKAGE,
    PASSED,
    BuildStart,
    Image,
    base_stat,
    find_compiler,
    image_dir,
    julia_start,
    running_build,
    start_build,
    wanted,
)
from prefect_julia.runtime.julia_process import default_project, find_julia

#: Images kept in the folder after a build (each is about 150 MB): this build's and the ones before it.
KEEP = 3
#: Seconds a build may take before it is stopped.
BUILD_TIMEOUT = 1800.0


@dataclass(frozen=True)
class BuildReport:
    path: Path
    built: bool  # False: the image already matched the code
    seconds: float
    size: int
    removed: list[Path]


def compiler(env: Mapping[str, str]) -> str:
    """The C compiler that links the image (``gcc``, else ``cc``, on PATH)."""
    found = find_compiler(env)
    if found:
        return found
    raise ConfigError(
        "Building a Julia image needs a C compiler to link it, and neither gcc nor cc is on PATH.",
        hint="Install one (Debian/Ubuntu: `sudo apt-get install gcc`), then run `invoke julia-image` again.",
    )


@contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    with file_lock(folder / BUILD_LOCK, wait=False) as held:
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


def build_image(
    environ: Mapping[str, str],
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
    locked: bool = False,
    log: Path | None = None,
) -> BuildReport:
    """Build the image of the Julia project ``environ`` names (``PREFECT_JULIA_PROJECT``, ``PREFECT_JULIA_BIN``,
    ``PREFECT_JULIA_IMAGE_DIR``), unless one matching the code exists and ``force`` is False.

    ``locked``: the caller holds the folder's build lock already (the background build); ``log``: where the
    commands' output goes (default: a scratch file, removed with the scratch folder)."""
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
    lock = contextlib.nullcontext() if locked else _build_lock(folder)
    with lock, tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as scratch:
        work = Path(scratch)
        obj, built = work / "image.o", work / "image.so"
        log = log or work / "build.log"
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
    image.failure.unlink(missing_ok=True)  # a failed background build of this key is over


def prune(folder: Path, keep: Path) -> list[Path]:
    """Remove all but the :data:`KEEP` newest images (never ``keep``), and all but the :data:`KEEP` newest
    build logs and failure records; returns the removed images."""
    removed = [p for p in _newest_first(folder, ".so")[KEEP:] if p != keep]
    for path in removed:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
    for suffix in (".log", ".failed"):
        for path in _newest_first(folder, suffix)[KEEP:]:
            if path.with_suffix(".so") != keep:
                path.unlink(missing_ok=True)
    return removed


def _newest_first(folder: Path, suffix: str) -> list[Path]:
    found = []
    for path in folder.glob(f"{PACKAGE}-*{suffix}"):
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime, path))
    return [path for _, path in sorted(found, reverse=True)]


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


def start_in_background(environ: Mapping[str, str], say: Callable[[str], None] | None = None) -> BuildStart:
    """Start the background build of the image of the code ``environ`` names where jobs would start without
    one (see ``runtime/julia_image.start_build``); ``say`` hears that it started, or the one-time note that
    no C compiler is on PATH. Never raises: without julia or a usable images folder, nothing starts."""
    try:
        image = image_of(environ)
        started = start_build(image.julia, image.project, environ)
    except (PrefectJuliaError, OSError):
        return BuildStart("unknown")
    if say is not None and started.state == "started" and started.image is not None:
        say(f"building the Julia image in the background (nice 19, log {started.image.log}); fresh jobs use it "
            "once it is ready (`invoke status` shows it)")  # fmt: skip
    if say is not None and started.note:
        say(started.note)
    return started


def status_line(environ: Mapping[str, str]) -> str:
    """``Julia image: current``, ``building (since HH:MM)``, ``failed (log: PATH)``, ``not built`` or ``off``,
    for the code ``environ`` names."""
    try:
        image = image_of(environ)
        on = wanted(environ)
    except (PrefectJuliaError, OSError) as error:
        return f"Julia image: unknown ({str(error).splitlines()[0]})"
    if not on:
        return "Julia image: off (PREFECT_JULIA_IMAGE=off)"
    if image.is_current():
        return "Julia image: current"
    folder = image.path.parent
    running = running_build(folder)
    if running is not None:
        return f"Julia image: building (since {time.strftime('%H:%M', time.localtime(running.start_time))})"
    if image.failure.exists():
        return f"Julia image: failed (log: {image.read_failure().get('log') or image.log})"
    if (folder / NO_COMPILER).exists() and find_compiler(environ) is None:
        return "Julia image: not built (no C compiler on PATH: jobs start without one)"
    return "Julia image: not built"


def record_failure(image: Image, error: BaseException) -> None:
    """Record that the background build of ``image`` failed: none starts again by itself for this key."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    body = {"key": image.key, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "log": str(image.log), "error": first}
    write_atomic(image.failure, json.dumps(body, indent=2).encode(), mode=0o600)


def build_in_background(environ: Mapping[str, str]) -> int:
    """The background build (its output goes to the image's log): the image built, or the failure recorded."""
    with contextlib.suppress(OSError):
        os.nice(19 - os.nice(0))  # the lowest CPU priority, whoever started it
    image = image_of(environ)
    try:
        report = build_image(environ, say=print, locked=True, log=image.log)
    except Exception as error:  # every failure is recorded, so that it is not retried in a loop
        record_failure(image, error)
        print(f"the Julia image was not built: {error}", flush=True)
        return 1
    print(f"built {report.path.name} in {report.seconds:.0f} s" if report.built else "the image was current")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``--start``: start the background build when none matches (a shell's trigger: scripts/bootstrap.sh);
    ``--background --lock-fd N``: be that build (started by ``runtime/julia_image.start_build``)."""
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("--start", action="store_true")
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--lock-fd", type=int, default=-1)
    args = parser.parse_args(argv)
    if args.background:
        if args.lock_fd < 0:
            print("--background needs --lock-fd: start it with --start", file=sys.stderr)
            return 2
        return build_in_background(os.environ)
    started = start_in_background(os.environ, say=print)
    if started.state not in ("started", "building"):
        print(status_line(os.environ))
    return 0


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
    "main",
    "prune",
    "record_failure",
    "start_in_background",
    "status_line",
]


if __name__ == "__main__":
    raise SystemExit(main())
