"""`invoke run` as a client, and many runs at once, against the session's running kit (real server, worker).

- 20 deployment runs submitted at once on the sqlite dev server: all Completed, none Crashed, none lost;
- a string parameter stays a string (``label=20261121``), the run's log lines are printed as they arrive;
- no worker online: said, with how to start one; ``--timeout`` says the run's state and how to follow it;
- the server going away while a run is followed exits 3 with a message; Ctrl-C exits 130 without a traceback.

The server "going away" is a TCP relay in front of the real server that the test closes: the client sees
exactly what a dead server looks like, and the shared server stays up for the other tests.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from harness import eventually
from live_kit import LiveKit, concurrent_runs
from prefect_julia.core import processes
from prefect_julia.kit.server import server_process

pytestmark = [pytest.mark.server]


# The gate's burst fills the worker's default limit (8); `invoke bench-tests` runs the full size.
@pytest.mark.parametrize("count", [8, pytest.param(50, marks=pytest.mark.slow)])
def test_a_burst_of_runs_submitted_at_once_all_complete(live_kit: LiveKit, count: int) -> None:
    live_kit.worker_up()
    # on the kit's server process (kit/server/server_process.py), which keeps a sqlite server answering under a burst
    server_pid = processes.port_owner(live_kit.repo.ports["dev"])
    assert server_pid is not None and f"-m {server_process.MODULE} " in processes.command_of(server_pid)
    burst = concurrent_runs(live_kit.repo, count, timeout=900 + 30 * count)
    assert burst["lost"] == 0 and burst["crashed"] == 0, burst
    assert burst["completed"] == count, burst


def test_string_parameter_stays_a_string_and_logs_stream(live_kit: LiveKit) -> None:
    live_kit.worker_up()
    done = live_kit.invoke("run", "quick", "--env", "dev", "--param", "label=20261121", "--param", "count=7")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quick says 20261121-7" in done.stdout  # the flow's own log line, printed by the client
    assert done.stdout.index("state: ") < done.stdout.index("quick says")  # states printed as they come
    assert done.stdout.index("quick says") < done.stdout.rindex("Completed")  # logs streamed before the end
    assert "Completed" in done.stdout.splitlines()[-2] and done.stdout.splitlines()[-1].startswith("returned: ")


def test_no_worker_and_timeout_say_what_to_do(live_kit: LiveKit) -> None:
    assert live_kit.invoke("worker-down", "--env", "dev", "--cancel").returncode == 0
    try:
        done = live_kit.invoke("run", "quick", "--env", "dev", "--timeout", "2")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "no worker of dev is online" in done.stderr and "invoke worker-up dev" in done.stderr
        assert "is still Scheduled after 2 s; it goes on" in done.stderr
        assert "prefect flow-run logs" in done.stderr and "Traceback" not in done.stdout + done.stderr
    finally:
        live_kit.worker_up()  # the waiting run then completes


class Relay:
    """A TCP relay 127.0.0.1:port -> the server; ``close()`` makes the server vanish for its clients."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):  # wakes the accept() of the relay's thread: no new connections
            self.listener.shutdown(socket.SHUT_RDWR)
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def relay(live_kit: LiveKit) -> Iterator[Relay]:
    relay = Relay(live_kit.repo.ports["dev"])
    yield relay
    relay.close()


def _follow_in_background(live_kit: LiveKit, relay: Relay) -> subprocess.Popen[str]:
    """`invoke run sleepy` through the relay; returns once it follows the run (its first state line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "run", "sleepy", "--env", "dev", "--param", "seconds=600"],
        cwd=live_kit.repo.root,
        env=live_kit.repo.environ(PREFECT_API_URL=f"http://127.0.0.1:{relay.port}/api"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout

    def following() -> bool:  # a line at a time: its first state line, or the end of its output
        line = stdout.readline()
        return line.startswith("state:") or not line

    eventually(following, 300, "`invoke run` to print its first state line")
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    return process


def test_server_going_away_exits_3(live_kit: LiveKit, relay: Relay) -> None:
    live_kit.worker_up()
    process = _follow_in_background(live_kit, relay)
    relay.close()
    _out, err = process.communicate(timeout=300)
    assert process.returncode == 3, err
    assert "server went away while following flow run" in err or "stopped answering" in err, err
    assert "fix:" in err and "Traceback" not in err


def test_ctrl_c_exits_130_and_says_the_run_goes_on(live_kit: LiveKit, relay: Relay) -> None:
    live_kit.worker_up()
    process = _follow_in_background(live_kit, relay)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    # Notes printed before the interrupt (a busy server's 503 retried, for one) are fine; what Ctrl-C itself
    # adds is that the run goes on, where to see it, and how to follow or stop it.
    own_lines = [line for line in err.strip().splitlines() if not line.startswith("note:")]
    assert "Traceback" not in err and "interrupted." not in err, err
    left, see, fix = own_lines
    assert left.startswith("error: Stopped following flow run ") and left.endswith("; the run goes on."), err
    assert see.startswith("  see http") and "/runs/flow-run/" in see, err
    run_id = see.rsplit("/", 1)[1]
    assert fix.startswith("  fix: Follow it in the UI") and "`invoke status dev`" in fix, err
    assert f"prefect flow-run cancel {run_id}" in fix, err
