"""What `invoke run` says when a run does not simply complete: leaving a run (Ctrl-C) says it goes on and how to
follow it; a run cancelled while it runs reads Cancelled; a server of another checkout is refused before any note.

The cancelled run uses the session's live kit (its `sleepy` deployment runs a Julia job that sleeps)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from harness import eventually, kit_api
from live_kit import LiveKit
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


def test_a_run_cancelled_while_it_runs_reads_cancelled(live_kit: LiveKit) -> None:
    """Cancelled while `invoke run` follows it (the Julia job sleeping), whatever its process said on the way out.
    (Ctrl-C in `invoke run`: tests/test_run_client.py.)"""
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
        except BaseException as error:  # handed to the test's thread
            failure.append(error)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        eventually(lambda: any("sleeping" in line for line in seen), 300, "the Julia job to start sleeping")
        _cancel(live_kit, ids[0])
        follower.join(timeout=300)
    finally:
        if follower.is_alive() and ids:
            _cancel(live_kit, ids[0])
            follower.join(timeout=300)
    (error,) = failure
    assert isinstance(error, runs.RunFailed), error
    assert " ended Cancelled: " in str(error) and "Crashed" not in str(error), str(error)
    assert "run it again with `invoke run sleepy/sleepy dev`" in (error.hint or ""), error.hint
