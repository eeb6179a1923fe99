"""Flow run heartbeats that stop when the flow stops, not at the next whole second.

Prefect's synchronous flow engine sends heartbeats from a thread that sleeps in one-second steps, and joins
that thread when the flow's body returns. Every flow run therefore ends on a whole second counted from its
start: a body of 0.9 s costs 1 s, one of 1.05 s costs 2 s. :func:`install` swaps in the same heartbeat loop
waiting on its stop event instead, so the thread ends as soon as the body does. The heartbeats themselves
are unchanged: one when the body starts, then one every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (at
least 30), none once the run is final.

It is installed when the kit's runtime is imported (flows that use the bridge) and in the worker's fork
server. If Prefect's engine does not have the parts it relies on (another Prefect version), nothing is
changed and flows keep Prefect's own loop.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from prefect_julia.core.patches import signature_is

#: The attribute that marks the kit's loop.
_MARK = "prefect_julia"
#: What the loop uses of Prefect's flow run engine.
_ENGINE_PARTS = ("heartbeat_seconds", "_build_heartbeat_event_template", "_emit_flow_run_heartbeat")


def _prompt_heartbeats(minimum: int) -> Callable[..., AbstractContextManager[None]]:
    @contextmanager
    def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Generator[None, None, None]:
        seconds = engine.heartbeat_seconds
        if seconds is None:
            yield
            return
        seconds = max(seconds, minimum)
        resource, related = engine._build_heartbeat_event_template()
        stop = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                run = engine.flow_run
                if run is not None and run.state is not None and run.state.is_final():
                    return
                try:
                    engine._emit_flow_run_heartbeat(resource, related)
                except Exception:
                    engine.logger.debug("Failed to emit heartbeat", exc_info=True)
                stop.wait(seconds)

        # The thread runs in a copy of this context, so it sees the run's settings (its PREFECT_API_URL).
        thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            if join_on_exit:
                thread.join(timeout=2)

    setattr(send_heartbeats, _MARK, True)
    return send_heartbeats


def install() -> bool:
    """Use the prompt heartbeat loop in Prefect's flow engine; True if it is (now or already) in place."""
    from prefect import flow_engine

    if installed():
        return True
    current = getattr(flow_engine, "_send_heartbeats", None)
    minimum = getattr(flow_engine, "MINIMUM_HEARTBEAT_INTERVAL", None)
    engine = getattr(flow_engine, "BaseFlowRunEngine", None)
    if current is None or not isinstance(minimum, int) or engine is None:
        return False
    if not all(hasattr(engine, part) for part in _ENGINE_PARTS):
        return False
    if not (
        signature_is(current, ["engine", "join_on_exit"])
        and signature_is(engine._build_heartbeat_event_template, ["self"])
        and signature_is(engine._emit_flow_run_heartbeat, ["self", "resource", "related"])
    ):
        return False  # a Prefect whose engine differs: its own heartbeats, unchanged
    setattr(flow_engine, "_send_heartbeats", _prompt_heartbeats(minimum))  # noqa: B010 (a private name)
    return True


def installed() -> bool:
    """True when Prefect's flow engine uses the prompt heartbeat loop."""
    from prefect import flow_engine

    return bool(getattr(getattr(flow_engine, "_send_heartbeats", None), _MARK, False))
