"""A warm Python for flow runs: a fork server with Prefect loaded, and the small client a worker starts.

A fresh flow-run process spends about 1.5 s importing Prefect before it does any work (Prefect's own process
worker even starts two: a workspace supervisor, then ``python -m prefect.engine``). The kit's worker instead
keeps one fork server beside it (:func:`serve`), and starts each flow run as this module's client
(``python -m prefect_julia.runtime.forkserver``, a bare interpreter start):

- the client hands its stdin, stdout and stderr, its arguments, its environment and its working folder to
  the server over a private Unix socket (a 0700 folder, and the peer's uid is checked);
- the server forks a child that already has Prefect imported; the child takes over the client's streams,
  environment and folder, re-reads Prefect's settings, and runs ``prefect.engine`` as a fresh process would;
- the client relays SIGTERM, SIGINT and SIGHUP to the child and ends with the child's exit status (or the
  same signal), so the worker sees one flow-run process, as before;
- when the client dies in any way (SIGKILL too), its socket closes: the child sees that, stops its run the
  way a SIGTERM would, and is killed outright if it has not ended a few seconds later.

Without a server (``PREFECT_JULIA_FORKSERVER`` unset, the socket gone, or a request it refuses because the
interpreter's own settings differ, e.g. another ``PYTHONPATH``), the client execs ``python -m prefect.engine``
itself: the same run, started cold. Flow code is never imported by the server, so an edited flow is picked up
by the next run; the server is replaced when its worker restarts.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

#: The worker's environment names the server's socket here; flow-run processes inherit it.
SOCKET_ENV = "PREFECT_JULIA_FORKSERVER"
#: The module a flow-run process runs (the worker's command); a fresh one runs ``prefect.engine``.
CLIENT_MODULE = "prefect_julia.runtime.forkserver"
#: The worker keeps the fork server's socket in a private temporary folder named so (``tempfile.mkdtemp``);
#: the fork server removes it when it stops (SIGTERM, or its worker gone).
FOLDER_PREFIX = "pj-fork-"
ENGINE_MODULE = "prefect.engine"
#: Imported once by the server, so that no child pays for them.
PRELOAD = (
    "prefect",
    "prefect._internal.control_listener",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.flows",
    "prefect.tasks",
    "prefect.deployments.steps",
    "prefect.logging.handlers",
    "prefect._internal.metrics",
    "prefect.utilities.processutils",
)
#: Variables that shape an interpreter at start-up: a request whose values differ is run cold, not forked.
INTERPRETER_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONNOUSERSITE", "PYTHONHASHSEED",
                   "PYTHONOPTIMIZE", "PYTHONWARNINGS", "PYTHONDEVMODE", "PYTHONUTF8", "PYTHONIOENCODING")  # fmt: skip
#: Seconds a child whose client died has to end its run after SIGTERM, before SIGKILL.
ORPHAN_GRACE = 10.0
_HEADER = struct.Struct("!I")
_FDS = 3  # stdin, stdout, stderr


def _send_line(conn: socket.socket, line: str) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(line.encode() + b"\n")


def _status_of(waitstatus: int) -> int:
    """An exit code (>= 0), or minus the signal that ended the process."""
    if os.WIFSIGNALED(waitstatus):
        return -os.WTERMSIG(waitstatus)
    return os.WEXITSTATUS(waitstatus) if os.WIFEXITED(waitstatus) else 1


# --- the client: the flow-run process the worker starts --------------------------------------------------


def _exec_engine(argv: Sequence[str]) -> NoReturn:
    """Become ``python -m prefect.engine ARGV``: a cold start, with the same pid, streams and signals."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", ENGINE_MODULE, *argv])


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _request(argv: Sequence[str]) -> bytes:
    body = json.dumps({"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd(), "client": os.getpid()})
    return body.encode()


class _Lines:
    """Newline-ended messages from a socket; ``None`` at its end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> str | None:
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")


def client_main(argv: Sequence[str]) -> int:
    """Run a flow run in a child of the fork server, relaying signals; exec the engine when there is none."""
    with contextlib.suppress(OSError):  # lead a process group: the forked run joins it, so stopping the
        os.setpgid(0, 0)  # group of this pid (as the kit's stop_tree does) reaches the run too
    path = os.environ.get(SOCKET_ENV, "")
    sock = _connect(path) if path else None
    if sock is None:
        _exec_engine(argv)
    child: list[int] = []
    pending: list[int] = []

    def relay(signum: int, _frame: object) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], signum)
        else:
            pending.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, relay)
    body = _request(argv)
    try:
        sock.sendmsg(
            [_HEADER.pack(len(body)), body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))]
        )
    except OSError:
        sock.close()
        _exec_engine(argv)
    lines = _Lines(sock)
    first = lines.next()
    if first is None or not first.startswith("pid "):
        sock.close()  # refused (another interpreter set-up) or a server that went away: nothing ran yet
        _exec_engine(argv)
    child.append(int(first.split()[1]))
    for signum in pending:
        relay(signum, None)
    status: int | None = None
    while (line := lines.next()) is not None:
        word, _, value = line.partition(" ")
        if word in ("exit", "status") and value.lstrip("-").isdigit():
            if word == "exit" or status is None:  # the server's reaped status is the exact one
                status = int(value)
            if word == "exit":
                break
    sock.close()
    if status is None:
        print("prefect-julia: the flow-run process ended without reporting its status.", file=sys.stderr)
        return 1
    if status < 0:  # end the way the child ended, so the worker reads the same signal
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)
        return 128 - status
    return status


# --- the server: one per worker, forking a child per flow run ---------------------------------------------


def interpreter_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in INTERPRETER_ENV if name in environ}


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The client's request and its three file descriptors."""
    fds = array.array("i")
    data, ancillary, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(_FDS * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    try:
        if len(data) < _HEADER.size or len(fds) != _FDS:
            raise ValueError("a request without its header or its three streams")
        (size,) = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ValueError("the client went away mid-request")
            body += chunk
        request = json.loads(body)
        if not isinstance(request, dict):
            raise ValueError("a request that is not an object")
        return request, list(fds)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _peer_is_us(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _watch_client(conn: socket.socket) -> None:
    """In the child: when the client's end closes, stop this run as a SIGTERM would, then kill it."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE)
    os.kill(os.getpid(), signal.SIGKILL)


def _exit_code(error: SystemExit) -> int:
    code = error.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_child(conn: socket.socket, request: dict[str, Any], fds: list[int], closing: Sequence[int]) -> None:
    """In the forked child: become the client's flow-run process, run the engine, and never return."""
    code = 1
    try:
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:  # the client's process group (both are in the worker's session), else a session of its own
            os.setpgid(0, int(request["client"]))
        except (OSError, KeyError, TypeError, ValueError):
            os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        env = {str(k): str(v) for k, v in dict(request["env"]).items()}
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update(env)
        sys.path[0] = os.getcwd()  # as `python -m` sets it
        sys.argv = [ENGINE_MODULE, *[str(a) for a in request["argv"]]]
        import runpy

        import prefect.context
        import prefect.logging.configuration

        prefect.context.refresh_global_settings_context()  # this run's environment, not the server's
        prefect.logging.configuration.setup_logging(incremental=False)
        threading.Thread(target=_watch_client, args=(conn,), name="forkserver-client", daemon=True).start()
        _send_line(conn, f"pid {os.getpid()}")
        sys.modules.pop(ENGINE_MODULE, None)  # run as `python -m` would: its code, fresh, as __main__
        try:
            runpy.run_module(ENGINE_MODULE, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as error:
            code = _exit_code(error)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        # What the interpreter does at its end: wait for non-daemon threads, then the exit handlers (Prefect
        # ships the run's last log lines in one).
        with contextlib.suppress(BaseException):
            threading._shutdown()  # type: ignore[attr-defined]
        import atexit

        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        _send_line(conn, f"status {code}")
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class ForkServer:
    """Accepts clients on ``socket_path`` and forks one child per request; reports each child's status."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.environ = interpreter_env(os.environ)
        self.children: dict[int, socket.socket] = {}
        self.parent = os.getppid()
        self.stopping = False

    def preload(self) -> None:
        import importlib

        for module in PRELOAD:
            importlib.import_module(module)
        from prefect_julia.runtime import heartbeats

        heartbeats.install()  # every forked flow run ends when its body does, not on the next whole second
        extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if extra:  # a fork copies one thread only: locks another one holds would never be released
            raise RuntimeError(f"threads started while loading Prefect: {', '.join(extra)}")

    def serve(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket_path.unlink(missing_ok=True)
        listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        listener.listen(64)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        print(f"fork server ready on {self.socket_path} (pid {os.getpid()})", flush=True)
        try:
            while not self.stopping and os.getppid() == self.parent:
                for key, _events in selector.select(timeout=1.0):
                    if key.data == "accept":
                        held = [c.fileno() for c in self.children.values()]
                        self._accept(listener, closing=(listener.fileno(), wake_r, wake_w, selector.fileno(), *held))
                    else:
                        with contextlib.suppress(BlockingIOError):
                            while os.read(wake_r, 512):
                                pass
                self._reap()
        finally:
            selector.close()
            listener.close()
            self.socket_path.unlink(missing_ok=True)
            if self.socket_path.parent.name.startswith(FOLDER_PREFIX):  # the worker's mkdtemp folder goes too
                with contextlib.suppress(OSError):
                    self.socket_path.parent.rmdir()

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _accept(self, listener: socket.socket, closing: Sequence[int]) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            if not _peer_is_us(conn):
                conn.close()
                return
            conn.settimeout(10)
            request, fds = _receive(conn)
            conn.settimeout(None)
        except (OSError, ValueError) as error:
            print(f"fork server: refused a request: {error}", flush=True)
            conn.close()
            return
        if interpreter_env(request.get("env") or {}) != self.environ:
            print(
                f"fork server: client {request.get('client')} starts cold: its interpreter settings differ", flush=True
            )
            _send_line(conn, "refused interpreter settings differ")  # the client starts the engine itself
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(conn, request, fds, closing)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        print(f"fork server: client {request.get('client')} runs in pid {pid}", flush=True)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, waitstatus = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                _send_line(conn, f"exit {_status_of(waitstatus)}")
                conn.close()


def serve(socket_path: Path) -> int:
    """Load Prefect, then serve flow runs on ``socket_path`` until SIGTERM or until the parent goes."""
    server = ForkServer(socket_path)
    try:
        server.preload()
    except Exception as error:  # the worker's clients start their engines cold instead
        print(f"fork server not started: {error}", file=sys.stderr, flush=True)
        return 1
    server.serve()
    return 0


def main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(Path(argv[1]))
    return client_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["CLIENT_MODULE", "FOLDER_PREFIX", "SOCKET_ENV", "client_main", "serve"]
