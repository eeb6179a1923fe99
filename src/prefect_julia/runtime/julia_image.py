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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.files import private_folder
from prefect_julia.core.setting import JULIA_IMAGE, JULIA_IMAGE_DIR

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

    def read_record(self) -> dict[str, object]:
        """The record written with the image (empty when missing or unreadable)."""
        try:
            found = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def is_current(self) -> bool:
        """True when the image exists and Julia's own image it was built on is unchanged."""
        if not self.path.is_file():
            return False
        record = self.read_record()
        base = record.get("base_image")
        if not isinstance(base, str):
            return False
        return base_stat(Path(base)) == record.get("base_image_stat")


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


__all__ = [
    "BUILD_SCRIPT",
    "PACKAGE",
    "SYSIMAGE_FLAG",
    "Image",
    "base_stat",
    "code_files",
    "current_image",
    "image_dir",
    "image_key",
    "julia_start",
    "package_files",
    "wanted",
]
