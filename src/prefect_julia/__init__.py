"""prefect-julia: Prefect flows that run Julia jobs on shared, dated datasets.

A flow needs three names, all importable from here::

    from prefect_julia import Dataset, julia_job, run_julia

``julia_job(program, parameters=None, timeout=None, retries=0, retry_delay=0.0, retry_timeouts=False)``
    A Prefect task: run ``julia/jobs/<program>.jl`` with each parameter as ``--key=value`` and return the
    result the job handed back with ``setresult`` (JSON, so dicts, lists, strings, numbers). The job's
    ``@info``/``@warn``/``@error`` lines reach the run log at their level; a non-zero exit, a timeout or a
    malformed result fails the task with the exit code and the tail of stderr. ``retries`` runs a failed
    job again, ``retry_delay`` seconds apart.

``run_julia(program, parameters=None, *, timeout=None, env=None, project=None, session=None, ...)``
    The same run without a Prefect task (inside a task of your own, or outside any flow): returns a
    ``JuliaResult`` whose ``result`` is the job's result document; raises ``JuliaFailed`` or ``JuliaTimeout``.

``Dataset(dataset_name, *, datastore_type=None, dataset_type="extracts", file_format="csv", rundate=None, ...)``
    A named data file partitioned by rundate under the datastore block of ``PREFECT_DATA_BLOCK_LOCAL`` (or
    ``..._REMOTE``): ``{dataset_type}/{file_format}/dataset={name}/rundate={yyyy-mm-dd}/data.{ext}``, the same
    layout the Julia ``Dataset`` reads and writes. ``write_csv(rows, fieldnames)``, ``read_csv()``,
    ``write_bytes``/``read_bytes``, ``path()``, ``rundates()``.

The names load on first use (PEP 562 ``__getattr__``), so importing ``prefect_julia.kit`` or
``prefect_julia.cli`` never imports Prefect. Their homes, ``prefect_julia.runtime.bridge`` and
``prefect_julia.runtime.dataset``, hold them too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_julia.runtime.bridge import julia_job, run_julia
    from prefect_julia.runtime.dataset import Dataset

__all__ = ["Dataset", "julia_job", "run_julia"]

#: Where each public name lives.
_HOMES = {
    "Dataset": "prefect_julia.runtime.dataset",
    "julia_job": "prefect_julia.runtime.bridge",
    "run_julia": "prefect_julia.runtime.bridge",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and a misspelt name stays an error for them

    def __getattr__(name: str) -> Any:
        """Import a public name from its home on first use, and keep it."""
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
