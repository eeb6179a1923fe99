"""The kit's server process (``kit/server/server_process.py``): sqlite's busy timeout and garbage collection off the loop.

The stall these prevent (a collection on the event loop waiting on a sqlite connection's mutex) needs a burst of
runs to show: ``test_run_client`` submits 20 at once to a server `invoke server-up` started this way (and checks
that it was), ``invoke bench`` 50.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.server.database.configurations import AioSqliteConfiguration

from prefect_julia.kit.server import server_process


def _busy_timeout_ms(path: Path, timeout: float) -> int:
    """``PRAGMA busy_timeout`` on a connection Prefect's own sqlite configuration opens."""

    async def read() -> int:
        config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}", timeout=timeout)
        engine = await config.engine()
        try:
            async with engine.connect() as connection:
                return int((await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_busy_timeout_is_the_database_timeout_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the patch replaces a class attribute; monkeypatch puts Prefect's own back after the test
    monkeypatch.setattr(AioSqliteConfiguration, "setup_sqlite", AioSqliteConfiguration.setup_sqlite)
    assert _busy_timeout_ms(tmp_path / "before.db", 3) == 60_000  # Prefect's fixed wait, whatever the setting
    server_process.honour_database_timeout()
    assert _busy_timeout_ms(tmp_path / "after.db", 3) == 3_000
    assert _busy_timeout_ms(tmp_path / "kit.db", 15) == 15_000


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def small_thresholds() -> Iterator[None]:
    """Thresholds of 50/2/2, and no automatic collection, for the test; the interpreter's own put back after."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_threshold(50, 2, 2)
    yield
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()


@pytest.mark.usefixtures("small_thresholds")
def test_collector_collects_cycles_with_the_interpreters_thresholds() -> None:
    collector = server_process.CollectorThread()
    gc.collect()  # a clean count
    assert collector.step() is None  # under the first threshold: nothing is due

    generations = []
    for _ in range(8):
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        kept = [Node() for _ in range(60)]  # allocations past the first threshold
        assert gone() is not None  # a cycle: only a collection frees it
        before = [stats["collections"] for stats in gc.get_stats()]
        said = collector.step()
        ran = [i for i, stats in enumerate(gc.get_stats()) if stats["collections"] > before[i]]
        assert ran == [said], (ran, said)  # the collection it says it ran is the one the interpreter counted
        generations.append(said)
        assert gone() is None
        del kept
    # every 2nd collection is of generation 1, every 2nd of those of generation 2
    assert generations == [0, 1, 0, 2, 0, 1, 0, 2]


def test_a_sqlite_server_process_collects_in_its_own_thread_with_the_loaded_modules_frozen() -> None:
    # a process of its own: the changes are to the whole interpreter
    probe = (
        "import gc, threading\n"
        "from prefect_julia.kit.server import server_process\n"
        "assert server_process.uses_sqlite()\n"
        "server_process.steady_sqlite_server()\n"
        "threads = [t.name for t in threading.enumerate()]\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 100_000, 'kit-garbage-collector' in threads)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"], done.stdout


@pytest.mark.parametrize(
    ("database_url", "collector_thread"),
    [("", True), ("postgresql+asyncpg://prefect@127.0.0.1:9/prefect", False)],
)
def test_no_collection_runs_while_the_server_loads_and_postgresql_gets_them_back(
    database_url: str, collector_thread: bool
) -> None:
    # Prefect's CLI stands in for the server: it reports how collections run when the server would start
    probe = (
        "import gc, threading\n"
        "import prefect.cli\n"
        "prefect.cli.app = lambda: print(gc.isenabled(), 'kit-garbage-collector' in "
        "[t.name for t in threading.enumerate()])\n"
        "from prefect_julia.kit.server import server_process\n"
        "server_process.main([])\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if database_url:
        environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=environ)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(not collector_thread), str(collector_thread)], done.stdout
