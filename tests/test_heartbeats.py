"""Flow run heartbeats (``runtime/heartbeats.py``) against a real Prefect server.

A flow that uses the kit's runtime keeps sending heartbeats, and returns as soon as its body has ended and
its final state is set, instead of waiting for Prefect's heartbeat thread to wake at the next whole second.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness import eventually
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.runtime import bridge, heartbeats

BODY_SECONDS = 0.05


def test_the_bridge_installs_the_prompt_loop() -> None:
    assert bridge.julia_job is not None and heartbeats.installed()
    assert heartbeats.install()  # a second install keeps the one in place


def test_a_flow_returns_when_its_body_ends_and_still_sends_a_heartbeat(on_server: Any) -> None:
    from prefect import flow
    from prefect.events.worker import EventsWorker

    body_ended: list[float] = []

    @flow(name="heartbeat-prompt")
    def short() -> str:
        time.sleep(BODY_SECONDS)
        body_ended.append(time.monotonic())
        return "done"

    waits, run_ids = [], []
    for _ in range(3):
        state = short(return_state=True)
        waits.append(time.monotonic() - body_ended[-1])
        assert state.is_completed() and state.result() == "done"
        run_ids.append(str(state.state_details.flow_run_id))
    # Prefect's own loop sleeps in whole seconds: the flow would return about 0.9 s after this body ended.
    assert min(waits) < 0.6, waits

    EventsWorker.drain_all(timeout=30)
    client = ApiClient(on_server.api_url)
    query = {
        "filter": {
            "event": {"name": ["prefect.flow-run.heartbeat"]},
            "resource": {"id": [f"prefect.flow-run.{run_id}" for run_id in run_ids]},
        },
        "limit": 50,
    }

    def heard() -> set[str]:  # the server persists events in batches
        found = client.request("POST", "/events/filter", query)["events"]
        beats = {event["resource"]["prefect.resource.id"].rsplit(".", 1)[-1] for event in found}
        assert len(beats) >= len(run_ids), beats
        return beats

    beats = eventually(heard, 60, "a heartbeat event from each of the three runs")
    assert beats == set(run_ids)


@pytest.mark.parametrize("missing", ["MINIMUM_HEARTBEAT_INTERVAL", "_send_heartbeats"])
def test_another_engine_shape_is_left_alone(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    from prefect import flow_engine

    monkeypatch.setattr(flow_engine, "_send_heartbeats", lambda *a, **k: None)  # not ours: an "older" loop
    monkeypatch.delattr(flow_engine, missing)
    assert not heartbeats.install()
    assert not heartbeats.installed()
