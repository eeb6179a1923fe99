"""Every process a gate run starts carries its mark, so an interrupted run can find and stop all of them.

A gate run gives its steps ``PJ_GATE_RUN=<marks>`` in their environment: the marks of the runs around it (a
gate inside a test inside a gate) plus a new one of its own, joined by ``:``. Every child inherits it, also
the servers, workers, fork servers and Julia processes the tests detach into sessions of their own
(``start_new_session``) whose parents exit. :func:`marked` finds them by reading ``/proc/PID/environ`` of this
user's processes; :meth:`RunMark.stop_all` stops them (SIGTERM, then SIGKILL after a grace period).

:func:`interruptible` turns SIGTERM into ``KeyboardInterrupt`` for its block, so ``kill PID`` stops a gate the
way Ctrl-C does: the edge (``cli/edge.guarded``) then exits 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType

import psutil

__all__ = ["MARK_VARIABLE", "RunMark", "interruptible", "marked", "new_mark"]

MARK_VARIABLE = "PJ_GATE_RUN"
_SEPARATOR = ":"


def _environ_marks(pid: int, uid: int) -> set[str]:
    """The marks in the process's starting environment; empty for another user's process or one that is gone."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return set()
        with open(f"/proc/{pid}/environ", "rb") as handle:
            data = handle.read()
    except OSError:
        return set()
    for entry in data.split(b"\0"):
        if entry.startswith(MARK_VARIABLE.encode() + b"="):
            value = entry.split(b"=", 1)[1].decode(errors="replace")
            return set(value.split(_SEPARATOR))
    return set()


def marked(mark: str) -> list[psutil.Process]:
    """This user's running processes (this one left out) whose environment carries ``mark``."""
    found = []
    uid, me = os.getuid(), os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        if mark in _environ_marks(int(name), uid):
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(int(name))
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
    return found


def _signal_all(processes: list[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


@dataclass(frozen=True)
class RunMark:
    """One gate run's mark, and the environment value that carries it (with the marks of enclosing runs)."""

    mark: str
    value: str

    def env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` with this run's ``PJ_GATE_RUN``."""
        return {**environ, MARK_VARIABLE: self.value}

    def stop_all(self, *, grace: float = 10.0) -> list[int]:
        """Stop every process that carries the mark: SIGTERM, SIGKILL after ``grace`` seconds. The pids stopped.

        Processes started while it stops them (a test's teardown starting one more) are found by scanning again.
        """
        stopped: dict[int, psutil.Process] = {}
        for _ in range(5):
            found = [p for p in marked(self.mark) if p.pid not in stopped]
            if not found:
                break
            stopped.update((p.pid, p) for p in found)
            _signal_all(found, signal.SIGTERM)
            _, alive = psutil.wait_procs(found, timeout=grace)
            _signal_all(alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
        return sorted(stopped)


def new_mark(environ: Mapping[str, str]) -> RunMark:
    """A new run's mark, nested in the marks ``environ`` already carries."""
    mark = uuid.uuid4().hex[:12]
    outer = environ.get(MARK_VARIABLE, "")
    return RunMark(mark, f"{outer}{_SEPARATOR}{mark}" if outer else mark)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """For the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does (main thread only; else nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
