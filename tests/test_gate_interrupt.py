"""An interrupted `invoke gate` leaves nothing behind: a real gate in a kit copy, a real server, a real signal.

The gate runs only its tests step, narrowed (``PJ_GATE_TESTS``) to a probe test that starts the kit copy's dev
server with `invoke server-up dev` (a detached server in a session of its own, whose starter exits) and then
waits to be interrupted. The signal goes to `invoke gate`'s process group, as Ctrl-C at a terminal does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import make_kit_repo
from harness import eventually
from prefect_julia.core import processes
from prefect_julia.core.processes import read_pid_file
from prefect_julia.gates.runmark import MARK_VARIABLE, marked

PROBE = """
import os
import subprocess
import sys
import threading
from pathlib import Path


def test_a_server_then_wait_to_be_interrupted():
    done = subprocess.run([sys.executable, "-m", "invoke", "server-up", "dev"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    Path(os.environ["PROBE_READY"]).write_text("server up")
    threading.Event().wait(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_gate_stops_every_process_its_tests_started(tmp_path: Path, sig: signal.Signals) -> None:
    kit = make_kit_repo(tmp_path / "repo")
    (kit.root / "test_probe.py").write_text(PROBE)
    ready, log = tmp_path / "ready", tmp_path / "gate.log"
    outer = uuid.uuid4().hex[:12]  # the mark this test gives; the gate nests its own in it
    env = kit.environ(**{MARK_VARIABLE: outer, "PJ_GATE_TESTS": "test_probe.py", "PROBE_READY": str(ready)})
    with log.open("wb") as out:
        gate = subprocess.Popen(
            [sys.executable, "-m", "invoke", "gate", "--skip", "layers,declarations,hooks,types"],
            cwd=kit.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        eventually(lambda: ready.exists() or gate.poll() is not None, 300, "the probe's server")
        assert gate.poll() is None, log.read_text()
        server = read_pid_file(kit.environment("dev").files.server_pid)
        assert server is not None and processes.is_alive(server)
        assert server.pid in [p.pid for p in marked(outer)]  # the detached server carries the mark

        if sig == signal.SIGINT:
            os.killpg(gate.pid, sig)  # Ctrl-C at a terminal signals its foreground process group
        else:
            gate.send_signal(sig)
        code = gate.wait(timeout=120)
        text = log.read_text()
        assert code == 130, text
        assert "interrupted" in text
        assert marked(outer) == [], text
        assert not processes.running(server.pid)
    finally:
        if gate.poll() is None:
            processes.stop_tree(gate.pid, grace=5)
        for process in marked(outer):
            process.kill()
