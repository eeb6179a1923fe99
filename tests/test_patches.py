"""The private parts of dependencies the kit touches are the ones it was tested on (docs/architecture.md).

When an upgrade of invoke or Prefect changes one of them, these fail, and the kit's start checks fall back to the
plain behaviour; each check is also shown to refuse a part that differs.
"""

from __future__ import annotations

from typing import Any

from prefect_julia.core.patches import signature_is


def test_signature_is_compares_names_in_order() -> None:
    def f(a: int, b: int = 1) -> None: ...

    assert signature_is(f, ["a", "b"])
    assert not signature_is(f, ["b", "a"]) and not signature_is(f, ["a"]) and not signature_is(42, [])


def test_invokes_parser_is_the_one_the_arguments_were_built_on() -> None:
    from prefect_julia.cli import arguments

    assert arguments._contract_holds()


def test_prefects_process_worker_still_allows_fork_start() -> None:
    from prefect_julia.kit.worker import worker_process

    assert worker_process.fork_start_possible()


def test_prefects_sqlite_setup_is_the_one_the_timeout_wraps(monkeypatch: Any) -> None:
    from prefect.server.database.configurations import AioSqliteConfiguration

    from prefect_julia.kit.server import server_process

    original = AioSqliteConfiguration.setup_sqlite
    monkeypatch.setattr(AioSqliteConfiguration, "setup_sqlite", original)  # restored after the test
    assert server_process.honour_database_timeout() is True
    monkeypatch.setattr(AioSqliteConfiguration, "setup_sqlite", lambda self, conn: None)
    assert server_process.honour_database_timeout() is False  # a different method is left alone


def test_prefects_flow_engine_still_takes_the_prompt_heartbeats(monkeypatch: Any) -> None:
    from prefect import flow_engine

    from prefect_julia.runtime import heartbeats

    assert heartbeats.install() and heartbeats.installed()
    monkeypatch.setattr(flow_engine, "_send_heartbeats", lambda engine: None)  # a Prefect whose loop differs
    assert heartbeats.install() is False
