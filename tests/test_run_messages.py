"""What `invoke run` says when a run does not simply complete: Ctrl-C leaves the run going and says how to follow
it; a run cancelled while it runs reads Cancelled; a server of another checkout is refused before any note.

The end-to-end parts use the session's live kit (its `sleepy` deployment runs a Julia job that sleeps)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from harness import eventually, kit_api
from live_kit import LiveKit, read_run, wait_state
from prefect_julia.core.errors import ServerError
from prefect_julia.kit.run import runs


def test_a_run_crashed_by_its_cancellation_reads_cancelled() -> None:
    history = ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "CRASHED"]
    assert runs.ended("CRASHED", "Crashed", "Flow run process exited", history) == (
        "Cancelled",
        "cancelled while it ran (its process was stopped)",
    )
    assert runs.ended("CRASHED", "Crashed", "exit -9", ["RUNNING", "CRASHED"]) == ("Crashed", "exit -9")
    assert runs.ended("CANCELLED", "Cancelled", "by you", ["RUNNING", "CANCELLING", "CANCELLED"]) == (
        "Cancelled",
        "by you",
    )


def test_leaving_a_run_says_it_goes_on_and_how_to_follow_it() -> None:
    env: Any = SimpleNamespace(name="dev", ui_url="http://127.0.0.1:4201")
    error = runs.left_running(env, "brave-fox", "abc-123")
    assert error.exit_code == 130
    assert str(error).startswith("Stopped following flow run brave-fox; the run goes on.")
    assert "http://127.0.0.1:4201/runs/flow-run/abc-123" in str(error)
    assert "`invoke status dev`" in (error.hint or "") and "prefect flow-run cancel abc-123" in (error.hint or "")


def test_a_run_refused_for_another_checkout_says_only_that(prefect_server: Any, kit_repo: Any) -> None:
    """The session's plain Prefect server (no auth, no worker) stands in for another checkout's server."""
    port = prefect_server.api_url.rsplit(":", 1)[1].split("/")[0]
    (kit_repo.root / "envs" / "dev.local.env").write_text(f"PREFECT_JULIA_PORT={port}\nPREFECT_JULIA_AUTH=off\n")
    env = kit_repo.environment("dev")
    notes: list[str] = []
    with pytest.raises(ServerError, match="is not this checkout's dev server"):
        runs.run(env, "quick", {}, on_note=notes.append)
    assert notes == []  # not "no worker is online" first


def _cancel(live_kit: LiveKit, run_id: str) -> None:
    body = {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}
    kit_api(live_kit.env, "POST", f"/flow_runs/{run_id}/set_state", body)


def test_ctrl_c_leaves_the_run_going_and_a_cancelled_run_reads_cancelled(live_kit: LiveKit) -> None:
    repo = live_kit.repo
    command = [sys.executable, "-m", "invoke", "run", "sleepy", "--param", "seconds=600", "--env", "dev"]
    proc = subprocess.Popen(
        command, cwd=repo.root, env=repo.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    left = ""
    try:
        eventually(lambda: any("sleeping" in line for line in lines), 300, "the Julia job to start sleeping")
        submitted = next(line for line in lines if " submitted: " in line)
        left = submitted.rsplit("/", 1)[1].strip()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Stopped following flow run " in err and "the run goes on" in err, err
        assert f"/runs/flow-run/{left}" in err and "`invoke status dev`" in err, err
        assert "Traceback" not in err and "interrupted." not in err, err
        assert read_run(live_kit.env, left).state.type.value == "RUNNING"  # it goes on

        # A run cancelled while `invoke run` follows it ends Cancelled, whatever its process said on the way out.
        seen: list[str] = []
        ids: list[str] = []
        failure: list[BaseException] = []

        def follow() -> None:
            try:
                runs.run(
                    live_kit.env,
                    "sleepy",
                    {"seconds": "600"},
                    write_log=seen.append,
                    on_submitted=lambda outcome: ids.append(outcome.flow_run_id),
                    timeout=600,
                )
            except BaseException as error:
                failure.append(error)

        follower = threading.Thread(target=follow)
        follower.start()
        eventually(lambda: any("sleeping" in line for line in seen), 300, "the second Julia job to start sleeping")
        _cancel(live_kit, ids[0])
        follower.join(timeout=300)
        (error,) = failure
        assert isinstance(error, runs.RunFailed), error
        assert " ended Cancelled: " in str(error) and "Crashed" not in str(error), str(error)
        assert "run it again with `invoke run sleepy/sleepy dev`" in (error.hint or ""), error.hint
    finally:
        proc.kill()
        proc.wait()
        if left:
            _cancel(live_kit, left)
            wait_state(live_kit.env, left, {"Cancelled", "Crashed", "Failed", "Completed"}, timeout=120)
