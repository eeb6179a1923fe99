"""The worker process `invoke worker-up` starts: Prefect's process worker, with flow runs started warm.

``python -m prefect_julia.kit.worker.worker_process --flow-start fork|spawn -- ARGS`` runs ``prefect worker start
ARGS`` in this process. With ``fork`` (``PREFECT_JULIA_FLOW_START``, dev's default) it first starts a fork
server (``runtime/forkserver.py``) as its own child, names its socket in the environment its flow runs
inherit, and starts each flow run as that server's client: the run's process begins with Prefect already
loaded (about 2-3 s less per run here). With ``spawn``, each flow run is Prefect's usual fresh process. In both,
a flow run that sets job variables of its own (``command``, ``env``, ...) is refused (``kit/worker/workpool.py``).

The fork server is stopped with the worker (it is in the worker's process tree, and it also exits when the
worker is gone).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from prefect_julia.core.patches import signature_is
from prefect_julia.kit.environment.settings import FLOW_START
from prefect_julia.kit.worker import workpool
from prefect_julia.runtime.forkserver import CLIENT_MODULE, SOCKET_ENV

MODULE = "prefect_julia.kit.worker.worker_process"


def command(flow_start: str, worker_args: Sequence[str]) -> list[str]:
    """The worker's command line: this module, how it starts flow runs, and ``prefect worker start``'s arguments."""
    return [sys.executable, "-m", MODULE, "--flow-start", flow_start, "--", *worker_args]


def _install_worker(fork: bool) -> bool:
    """Make ``--type process`` resolve to the kit's process worker; whether runs start forked (False: spawned).

    It refuses a flow run that sets job variables of its own beyond ``workpool.RUN_VARIABLES`` (the run is set
    Failed with the reason, nothing starts), and with ``fork`` starts each flow run as the fork server's client.
    Starting forked sets the run's command on its job configuration, a private part of Prefect's: checked first
    (:func:`fork_start_possible`); a Prefect that differs starts runs the usual way.
    """
    from prefect.states import Failed
    from prefect.workers.process import ProcessWorker, ProcessWorkerResult

    fork = fork and fork_start_possible()

    client = shlex.join([sys.executable, "-m", CLIENT_MODULE])

    with warnings.catch_warnings():  # replacing the "process" type in this process is the point
        warnings.simplefilter("ignore")

        class KitProcessWorker(ProcessWorker):
            async def run(self, flow_run: Any, configuration: Any, task_status: Any = None) -> Any:
                refused = workpool.refused_run_variables(getattr(flow_run, "job_variables", None))
                if refused:
                    message = workpool.refusal(self.work_pool.name, refused)
                    self.get_flow_run_logger(flow_run).error(message)
                    await self.client.set_flow_run_state(flow_run.id, Failed(message=message), force=True)
                    if task_status is not None:
                        task_status.started(0)
                    return ProcessWorkerResult(identifier="refused", status_code=0)
                if fork and not configuration._command_configured:  # a deployment's own command is kept
                    configuration.command = client
                    configuration._command_configured = True
                return await super().run(flow_run, configuration, task_status)

    KitProcessWorker.__name__ = "ProcessWorker"
    return fork


def fork_start_possible() -> bool:
    """Whether Prefect's process worker is the one fork start was tested on: ``run``'s signature, and the job
    configuration's private ``_command_configured`` (no public way exists to give one worker's runs a command
    of that worker's own interpreter; a pool's job template is shared by every machine's workers)."""
    from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

    private = getattr(ProcessJobConfiguration, "__private_attributes__", {})
    return signature_is(ProcessWorker.run, ["self", "flow_run", "configuration", "task_status"]) and (
        "_command_configured" in private
    )


@contextlib.contextmanager
def fork_server() -> Iterator[subprocess.Popen[bytes] | None]:
    """A fork server beside this worker, its socket named in ``os.environ`` for the flow runs."""
    folder = Path(tempfile.mkdtemp(prefix="pj-fork-"))  # 0700, and short: a socket path has at most 107 bytes
    path = folder / "socket"
    server = subprocess.Popen([sys.executable, "-m", CLIENT_MODULE, "--serve", str(path)], stdin=subprocess.DEVNULL)
    os.environ[SOCKET_ENV] = str(path)
    try:
        yield server
    finally:
        os.environ.pop(SOCKET_ENV, None)
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=5)
        if server.poll() is None:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if len(args) < 3 or args[0] != "--flow-start" or args[1] not in FLOW_START.choices or args[2] != "--":
        print(f"usage: python -m {MODULE} --flow-start fork|spawn -- PREFECT-WORKER-START-ARGS", file=sys.stderr)
        return 2
    from prefect.cli import app

    sys.argv = ["prefect", "worker", "start", *args[3:]]
    if not _install_worker(fork=args[1] == "fork"):
        if args[1] == "fork":
            print("note: this Prefect's process worker is not the one fork start was tested on: runs spawn.")
        app()
        return 0
    with fork_server():
        app()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
