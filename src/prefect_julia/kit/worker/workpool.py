"""The environment's work pool: a process pool whose runs cannot choose their own command or environment.

Prefect's process pool lets whoever may create a flow run override the command the worker runs and the
environment it runs with (``job_variables: {"command": "sh -c ..."}``): code execution as the worker's user. The
kit's pools are locked in two places:

- the pool's base job template (Prefect's public place for it) has no ``command``: every run starts the way
  the worker starts runs, whatever a deployment or a run asks;
- the kit's worker (``kit/worker/worker_process.py``) refuses a flow run that carries job variables of its own beyond
  :data:`RUN_VARIABLES` (``env``, ``working_dir``, ...). A deployment's declared job variables (``prefect.yaml``
  ``work_pool.job_variables``, and the code folder's ``env`` the kit adds) still apply: Prefect keeps those on
  the deployment, apart from a run's own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Job variables a single flow run may set for itself: none of them changes what runs or with which environment.
RUN_VARIABLES = frozenset({"name", "labels", "stream_output"})
#: The job variables no run and no deployment of a kit pool may set.
LOCKED_VARIABLES = frozenset({"command"})
POOL_TYPE = "process"


def locked_template() -> dict[str, Any]:
    """Prefect's process base job template without ``command``."""
    from prefect.workers.process import ProcessWorker

    template = copy.deepcopy(ProcessWorker.get_default_base_job_template())
    for name in LOCKED_VARIABLES:
        template["job_configuration"].pop(name, None)
        template["variables"]["properties"].pop(name, None)
        required = template["variables"].get("required")
        if isinstance(required, list) and name in required:
            required.remove(name)
    return template


def refused_run_variables(job_variables: Mapping[str, Any] | None) -> list[str]:
    """The job variables a flow run set for itself that a kit pool refuses, sorted."""
    return sorted(set(job_variables or {}) - RUN_VARIABLES)


def refusal(pool: str, refused: list[str]) -> str:
    """Why a run with its own job variables ``refused`` does not start, and what to do instead."""
    return (
        f"This flow run sets job variables of its own ({', '.join(refused)}), which the work pool {pool} of "
        "prefect-julia refuses: a run may not choose its command or environment. Declare them on the deployment "
        "(prefect.yaml, `work_pool: job_variables:`) and run `invoke deploy`."
    )


def ensure_pool(client: Any, pool: str) -> str:
    """Create ``pool`` with the locked template, or lock an existing one: ``created``, ``locked`` or ``""``."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    template = locked_template()
    try:
        existing = client.read_work_pool(pool)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=pool, type=POOL_TYPE, base_job_template=template))
        return "created"
    if existing.base_job_template != template:
        client.update_work_pool(pool, WorkPoolUpdate(base_job_template=template))
        return "locked"
    return ""
