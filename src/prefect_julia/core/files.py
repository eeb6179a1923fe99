"""Small file helpers: atomic writes, so a crash never leaves a half-written file.

A write goes to ``.NAME.tmp-PID-RANDOM`` beside its target, then is renamed over it. The Julia package
(``julia/src/files.jl``) names its temporary files the same way. A writer killed mid-write (SIGKILL, power
loss) leaves its temporary file behind; the next write to that target removes every such file whose writer
no longer runs, so a half-written file never outlives the next write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from prefect_julia.core.errors import ConfigError

TEMP_MARK = ".tmp-"


def temp_prefix(path: Path) -> str:
    """The prefix of the temporary files of writes to ``path``: ``.NAME.tmp-``."""
    return f".{path.name}{TEMP_MARK}"


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temps(path: Path) -> list[Path]:
    """Temporary files beside ``path`` left by writes to it whose writer process no longer runs."""
    prefix = temp_prefix(path)
    found: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        if not _writer_alive(int(pid_text)):
            found.append(Path(entry.path))
    return found


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of killed writes to ``path`` (see :func:`stale_temps`); return them."""
    removed = []
    for stale in stale_temps(path):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            stale.unlink()
            removed.append(stale)
    return removed


def umask() -> int:
    """The process's file-creation mask (read without changing it where Linux shows it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: readers see the old file or the new one.

    The file gets ``mode``, or by default what a plain ``open`` would give it (0666 less the umask).
    """
    if mode is None:
        mode = 0o666 & ~umask()
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{temp_prefix(path)}{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def private_folder(folder: Path, what: str, setting: str | None = None) -> Path:
    """``folder``, created with mode 0700 when missing; refused (:class:`ConfigError`, with the fix) when it
    is not a folder, belongs to another user, or lets the group or others in (anyone who can write there can
    plant a program, a socket or an image this user then trusts).

    ``what`` names the folder in the message; ``setting`` is the variable that chooses another one.
    """
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    info = os.lstat(folder)
    elsewhere = f", or set {setting} to a folder of your own" if setting else ""
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what[:1].upper() + what[1:]}, {folder}, is not a folder.", hint=f"Remove it{elsewhere}.")
    if info.st_uid != os.getuid():
        raise ConfigError(
            f"{what[:1].upper() + what[1:]}, {folder}, belongs to another user (uid {info.st_uid}): it is not used.",
            hint=f"Remove it (its owner or root: `rm -r {folder}`){elsewhere}.",
        )
    if info.st_mode & 0o077:
        raise ConfigError(
            f"{what[:1].upper() + what[1:]}, {folder}, is open to other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            "it is not used.",
            hint=f"chmod 700 {folder}{elsewhere}.",
        )
    return folder


#: Longest Unix socket path used as is (Linux allows 107 bytes, macOS 103).
MAX_SOCKET_PATH = 100


def socket_path(wanted: Path) -> Path:
    """``wanted``, or, when it is too long for a Unix socket (a deep checkout), a short stand-in named by its
    hash, always the same for the same ``wanted``, in a folder of this user's that only this user may enter.
    """
    if len(os.fsencode(str(wanted))) <= MAX_SOCKET_PATH:
        return wanted
    folder = private_folder(
        Path(tempfile.gettempdir()) / f"prefect-julia-{os.getuid()}", "the folder for Unix sockets of long paths"
    )
    return folder / f"{hashlib.sha256(os.fsencode(str(wanted))).hexdigest()[:32]}.sock"


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 64 * 1024))
            data = stream.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
