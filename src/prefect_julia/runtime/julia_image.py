"""Julia images: a system image with the Julia package compiled in, so a fresh job skips most compilation.

Julia 1.5 keeps no machine code of a package between runs: every fresh ``julia`` compiles again what a job
calls, the package's code and Base's code for the job's own types (here the first ``@info`` with a keyword
and the first ``Dict`` of mixed values cost about 0.3 s each). ``invoke julia-image`` (``kit/julia/images.py``)
builds a system image with the package loaded and a job-like workload run (``<project>/build/image.jl``),
and the bridge starts every job with it (``--sysimage``) while it matches:

- its name holds a key, a hash of the package's ``src/``, ``Project.toml``, ``Manifest.toml``, the build
  script and the julia executable (path, size, modification time): a change to any of them means "no image"
  until it is built again. A changed job in ``jobs/`` changes nothing: jobs are not in the image;
- its record (``.json`` beside it) names Julia's own image it was built on; once that file has changed
  (Julia upgraded in place) the image is not used.

Images are shared by every checkout of the same code (``PREFECT_JULIA_IMAGE_DIR``), so a prod checkout of
the deployed commit finds the image built for that commit's code. With ``PREFECT_JULIA_IMAGE=off`` jobs
always start with Julia's own image.

Nobody has to build it: where a job would start without a matching image (``invoke deploy``, ``invoke
worker-up``, ``scripts/bootstrap.sh``, or the bridge's first fresh job), :func:`start_build` starts one build in
the background (the kit's builder, started by module name, at the lowest CPU priority), and jobs use the image
once it is in place; a run never waits for it. One build at a time per folder: the starter takes the folder's
lock and hands it to the build, which holds it until it ends. A build that failed is recorded beside the image
(``<image>.failed``, its log ``<image>.log``) and not started again for the same key; ``invoke julia-image``
builds in the foreground whatever the record says.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import PrefectJuliaError
from prefect_julia.core.files import private_folder, write_atomic
from prefect_julia.core.processes import PRIVATE_UMASK, PidRecord, is_alive, read_pid_file, write_pid_file
from prefect_julia.core.setting import JULIA_BIN, JULIA_IMAGE, JULIA_IMAGE_DIR, JULIA_PROJECT

_LOG = logging.getLogger(__name__)

#: The build script (and workload), inside the Julia project.
BUILD_SCRIPT = Path("build") / "image.jl"
#: What the images are named after.
PACKAGE = "PrefectInterfaces"
#: How julia is told which system image to start with.
SYSIMAGE_FLAG = "--sysimage="


def julia_start(julia: str, image: Path | None) -> list[str]:
    """The start of a julia command line: ``julia``, then ``--sysimage=<image>`` when an image is given."""
    return [julia, f"{SYSIMAGE_FLAG}{image}"] if image is not None else [julia]


#: How messages name the images' folder.
IMAGES_FOLDER = "the Julia images' folder"


def image_dir(env: Mapping[str, str]) -> Path:
    """``PREFECT_JULIA_IMAGE_DIR``, else ``$XDG_CACHE_HOME/prefect-julia/images`` (``~/.cache`` by default)."""
    configured = JULIA_IMAGE_DIR.lookup(env)
    if configured:
        return Path(configured).expanduser()
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "prefect-julia" / "images"


def package_files(project: Path) -> list[Path]:
    """The files the Julia package is made of: ``Project.toml``, ``Manifest.toml`` and ``src/`` (those that exist).
    A change to one of them means a new image, and a new warm session (``julia_session.project_fingerprint``)."""
    files = [project / "Project.toml", project / "Manifest.toml", *sorted((project / "src").rglob("*.jl"))]
    return [path for path in files if path.is_file()]


def code_files(project: Path) -> list[Path]:
    """The files an image is built from: the package's files and the build script."""
    return [*package_files(project), *[path for path in [project / BUILD_SCRIPT] if path.is_file()]]


def image_key(julia: str, project: Path) -> str:
    """A hash of what the image of ``project`` built with ``julia`` depends on."""
    digest = hashlib.sha256()
    executable = Path(julia).resolve()
    stat = executable.stat()
    digest.update(f"{executable}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    for path in code_files(project):
        digest.update(path.relative_to(project).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def wanted(env: Mapping[str, str]) -> bool:
    """``PREFECT_JULIA_IMAGE``: False when ``off``; a ConfigError naming the setting for a value it cannot take."""
    return JULIA_IMAGE.choose(env.get(JULIA_IMAGE.name)) != "off"


@dataclass(frozen=True)
class Image:
    """The image of one julia and Julia project: where its shared library and record live (built or not)."""

    julia: str
    project: Path
    key: str
    path: Path
    record: Path

    @classmethod
    def of(cls, julia: str, project: Path, env: Mapping[str, str]) -> Image:
        key = image_key(julia, project)
        folder = image_dir(env)
        return cls(julia, project, key, folder / f"{PACKAGE}-{key}.so", folder / f"{PACKAGE}-{key}.json")

    @property
    def log(self) -> Path:
        """The log of its background build."""
        return self.path.with_suffix(".log")

    @property
    def failure(self) -> Path:
        """The record of its failed background build: no build of this key starts by itself while it exists."""
        return self.path.with_suffix(".failed")

    def read_record(self) -> dict[str, object]:
        """The record written with the image (empty when missing or unreadable)."""
        return _read_json(self.record)

    def read_failure(self) -> dict[str, object]:
        """The record of its failed background build (empty when none)."""
        return _read_json(self.failure)

    def is_current(self) -> bool:
        """True when the image exists and Julia's own image it was built on is unchanged."""
        if not self.path.is_file():
            return False
        record = self.read_record()
        base = record.get("base_image")
        if not isinstance(base, str):
            return False
        return base_stat(Path(base)) == record.get("base_image_stat")


def _read_json(path: Path) -> dict[str, object]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def base_stat(path: Path) -> list[int] | None:
    """(size, modification time in ns) of Julia's own image, as a record keeps it; None if it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def current_image(julia: str, project: Path, env: Mapping[str, str]) -> Path | None:
    """The image to start a job of ``project`` with: None when ``PREFECT_JULIA_IMAGE=off`` or none matches.

    An images folder another user owns or may write to is refused (:class:`ConfigError`): an image planted
    there would run as this user's code.
    """
    if not wanted(env):
        return None
    folder = image_dir(env)
    if not folder.exists():
        return None
    private_folder(folder, IMAGES_FOLDER, JULIA_IMAGE_DIR.name)
    try:
        image = Image.of(julia, project, env)
    except OSError:
        return None
    return image.path if image.is_current() else None


#: The module that builds an image in the background (the kit's builder, started by name).
BUILDER_MODULE = "prefect_julia.kit.julia.images"
#: The C compilers that can link an image, first found first used.
COMPILERS = ("gcc", "cc")
#: The variables of a build's environment that Julia reads; nothing else (no server, no credentials) reaches it.
PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "JULIA_DEPOT_PATH", "JULIA_LOAD_PATH")
#: Files of the images folder: the build lock, the running build's pid file, the note that no compiler was found.
BUILD_LOCK = ".build.lock"
BUILD_PID = ".build.pid"
NO_COMPILER = ".no-compiler"


def find_compiler(env: Mapping[str, str]) -> str | None:
    """The C compiler that links an image (``gcc``, else ``cc``, on the env's PATH); None when there is none."""
    for name in COMPILERS:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return found
    return None


def running_build(folder: Path) -> PidRecord | None:
    """The background build running in the images folder ``folder`` (None when none runs)."""
    record = read_pid_file(folder / BUILD_PID)
    return record if record is not None and is_alive(record) else None


@dataclass(frozen=True)
class BuildStart:
    """What :func:`start_build` did: ``started``, or why not (``off``, ``current``, ``building``, ``failed``,
    ``no compiler``); ``note`` is a line to say once (the first time no compiler was found)."""

    state: str
    image: Image | None = None
    note: str = ""


def start_build(julia: str, project: Path, env: Mapping[str, str]) -> BuildStart:
    """Start a background build of the image of ``project`` unless it is off, current, being built, failed for
    this key, or no C compiler is on PATH. Never waits for the build."""
    if not wanted(env):
        return BuildStart("off")
    image = Image.of(julia, project, env)
    if image.is_current():
        return BuildStart("current", image)
    if image.failure.exists():
        return BuildStart("failed", image)
    folder = private_folder(image.path.parent, IMAGES_FOLDER, JULIA_IMAGE_DIR.name)
    if find_compiler(env) is None:
        return BuildStart("no compiler", image, note=_note_no_compiler(folder))
    (folder / NO_COMPILER).unlink(missing_ok=True)
    lock = os.open(folder / BUILD_LOCK, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return BuildStart("building", image)
        if image.is_current():  # a build ended between the first look and the lock
            return BuildStart("current", image)
        _spawn_builder(image, env, lock)
    finally:
        os.close(lock)  # the build holds the lock from here on, through the descriptor it inherited
    return BuildStart("started", image)


def start_build_for_job(julia: str, project: Path, env: Mapping[str, str]) -> BuildStart:
    """The bridge's trigger (a fresh job found no current image): :func:`start_build`, never raising; a job
    never waits for an image, nor fails because of one. The one-time no-compiler note goes to the log."""
    try:
        started = start_build(julia, project, env)
    except (PrefectJuliaError, OSError) as error:
        _LOG.debug("no background build of the Julia image: %s", error)
        return BuildStart("unknown")
    if started.note:
        _LOG.warning("%s", started.note)
    return started


def _note_no_compiler(folder: Path) -> str:
    note = folder / NO_COMPILER
    if note.exists():
        return ""
    text = "no C compiler (gcc or cc) on PATH: no Julia image is built, jobs start without one"
    write_atomic(note, (text + "\n").encode(), mode=0o600)
    return f"{text} (install gcc to have it built)"


def _spawn_builder(image: Image, env: Mapping[str, str], lock: int) -> None:
    """Start the builder detached, at the lowest CPU priority, with the lock's descriptor ``lock``."""
    argv = [sys.executable, "-m", BUILDER_MODULE, "--background", "--lock-fd", str(lock)]
    nice = shutil.which("nice", path=env.get("PATH", os.defpath))
    child_env = {name: env[name] for name in (*PASSED, "PYTHONPATH") if env.get(name)}
    child_env.update({JULIA_BIN.name: image.julia, JULIA_PROJECT.name: str(image.project),
                      JULIA_IMAGE_DIR.name: str(image.path.parent), JULIA_IMAGE.name: "auto"})  # fmt: skip
    log = os.open(image.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        os.fchmod(log, 0o600)
        os.write(log, f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} building {image.path.name}\n".encode())
        process = subprocess.Popen(
            [*([nice, "-n", "19"] if nice else []), *argv], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=child_env, cwd=image.path.parent, start_new_session=True,
            pass_fds=(lock,), umask=PRIVATE_UMASK,
        )  # fmt: skip
    finally:
        os.close(log)
    write_pid_file(image.path.parent / BUILD_PID, process.pid, argv)


__all__ = [
    "BUILDER_MODULE",
    "BUILD_LOCK",
    "BUILD_PID",
    "BUILD_SCRIPT",
    "COMPILERS",
    "NO_COMPILER",
    "PACKAGE",
    "PASSED",
    "SYSIMAGE_FLAG",
    "BuildStart",
    "Image",
    "base_stat",
    "code_files",
    "current_image",
    "find_compiler",
    "image_dir",
    "image_key",
    "julia_start",
    "package_files",
    "running_build",
    "start_build",
    "wanted",
]
