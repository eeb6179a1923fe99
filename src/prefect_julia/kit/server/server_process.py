"""The server process `invoke server-up` starts: Prefect's server, kept answering on sqlite under load.

``python -m prefect_julia.kit.server.server_process ARGS`` runs ``prefect server start ARGS`` in this process. On a
sqlite database it first changes two things (a PostgreSQL server runs unchanged):

- **Python's garbage collector runs in a thread of its own**, not on the server's event loop. Each sqlite
  connection has its own thread, and a statement that waits on a locked database holds that connection's mutex.
  A collection on the event loop that frees a cursor of such a connection blocks on the mutex, while the lock's
  holder needs the event loop to commit: the whole server answered nothing until sqlite gave up (Prefect waits
  60 s). Ten deployment runs submitted at once stalled it that way in 2 of 5 bursts (147 s and 86 s to the last
  final state, against 10-15 s otherwise); off the loop, a collection that waits blocks only its own thread.
  Collections follow the interpreter's own thresholds, so they are as frequent and as cheap as before.
- **What the server loaded at start is left out of collections** (``gc.freeze``): it is never garbage, and a full
  collection no longer spends 195 ms walking it. While it loads, no collection runs at all (one runs before the
  freeze): the server is healthy sooner than Prefect's own start.
- **sqlite's busy timeout is** ``PREFECT_SERVER_DATABASE_TIMEOUT`` (the kit's default: 15 s) instead of
  Prefect's fixed 60 s: a request still waiting on a lock after that is answered 503, which clients retry.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from prefect_julia.core.patches import signature_is

MODULE = "prefect_julia.kit.server.server_process"
#: How often the collector thread looks at the allocation count (a collection starts at most this late).
COLLECT_POLL_SECONDS = 0.05


PREFECT_START = ("prefect", "server", "start")


def start_args(host: str, port: int) -> list[str]:
    """The arguments of ``prefect server start`` for a server on ``host:port``."""
    return ["--host", host, "--port", str(port)]


def command(host: str, port: int) -> list[str]:
    """The kit's server command line: this module with ``prefect server start``'s arguments."""
    return [sys.executable, "-m", MODULE, *start_args(host, port)]


def raw_command(host: str, port: int) -> list[str]:
    """Prefect's own ``prefect server start`` for the same server (what the kit's benchmarks compare with)."""
    return [sys.executable, "-m", *PREFECT_START, *start_args(host, port)]


class CollectorThread(threading.Thread):
    """Runs the garbage collections the interpreter would run, with its thresholds, in this thread.

    Generation 0 is collected once the allocation count passes the first threshold; every ``threshold1``-th
    collection is of generation 1, every ``threshold2``-th of those of generation 2, as the interpreter does.
    """

    def __init__(self, poll: float = COLLECT_POLL_SECONDS) -> None:
        super().__init__(name="kit-garbage-collector", daemon=True)
        self.poll = poll
        self.young, self.middle, self.old = gc.get_threshold()
        self.collections = [0, 0, 0]

    def step(self) -> int | None:
        """One look at the count: the generation collected, or None when none is due."""
        if self.young <= 0 or gc.get_count()[0] < self.young:
            return None
        generation = 0
        self.collections[0] += 1
        if self.collections[0] % max(self.middle, 1) == 0:
            generation = 1
            self.collections[1] += 1
            if self.collections[1] % max(self.old, 1) == 0:
                generation = 2
                self.collections[2] += 1
        gc.collect(generation)
        return generation

    def run(self) -> None:
        while True:
            time.sleep(self.poll)
            self.step()


def collect_off_the_loop() -> CollectorThread:
    """Turn off the collections that run wherever an allocation passes the threshold; run them in a thread."""
    collector = CollectorThread()
    gc.disable()
    collector.start()
    return collector


def honour_database_timeout() -> bool:
    """Make sqlite's busy timeout the server's database timeout setting, not Prefect's fixed 60 s; False (and
    Prefect's own setup left as it is) when ``setup_sqlite`` is not the method this was tested on."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    prefect_setup = AioSqliteConfiguration.setup_sqlite
    if not signature_is(prefect_setup, ["self", "conn", "record"]):
        return False

    def setup_sqlite(self: AioSqliteConfiguration, conn: Any, record: Any) -> None:
        prefect_setup(self, conn, record)
        if self.timeout:
            cursor = conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)};")
            cursor.close()

    AioSqliteConfiguration.setup_sqlite = setup_sqlite  # type: ignore[method-assign]
    return True


def uses_sqlite() -> bool:
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    return url is None or url.get_secret_value().startswith("sqlite")


def freeze_loaded_modules() -> None:
    """Load the server's modules, then exclude everything loaded so far from garbage collection (``gc.freeze``).

    Modules, classes and their tables live as long as the process and are never garbage; a full collection walked
    them all the same (about 280,000 objects, 195 ms here, holding the interpreter lock the server's event loop
    needs). Only what the server creates afterwards is collected.
    """
    import prefect.server.api.server  # noqa: F401 - the server's routes, models and database layer

    gc.collect()
    gc.freeze()


def steady_sqlite_server() -> None:
    """Everything this module changes for a sqlite server, in the order it needs."""
    honour_database_timeout()
    freeze_loaded_modules()
    collect_off_the_loop()


def main(argv: Sequence[str]) -> int:
    gc.disable()  # no collections while Prefect's modules load (12% of their import time here): nothing is garbage
    from prefect.cli import app

    if uses_sqlite():
        steady_sqlite_server()  # collects once, freezes what was loaded, then collects in a thread of its own
    else:
        gc.enable()
    sys.argv = [*PREFECT_START, *argv]
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
