"""Flows a test adds to a kit repository: the flow file, the Julia jobs it runs, and its deployment in
prefect.yaml, declared the same way everywhere (tests that add a flow to the shared live kit, and the live kit's
own extra flows)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def julia_flow(name: str, job: str, *, timeout: float = 300) -> str:
    """The text of a flow ``name`` (function and flow name alike) that runs the Julia job ``job`` with no
    parameters."""
    return f"""\
from prefect import flow

from prefect_julia.runtime.bridge import julia_job


@flow(name="{name}")
def {name}() -> None:
    julia_job("{job}", {{}}, timeout={timeout})
"""


def add_flow(
    root: Path,
    name: str,
    flow: str,
    *,
    jobs: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> None:
    """Write ``flows/<name>.py`` (its function is ``name``) and each of ``jobs`` as ``julia/jobs/<job>.jl``, and
    declare the deployment ``name`` on the environment's work pool in prefect.yaml, once: a flow added again (a
    test run twice against one session's kit) only rewrites its files. Deploy it with ``invoke deploy``."""
    (root / "flows" / f"{name}.py").write_text(flow)
    for job, text in (jobs or {}).items():
        (root / "julia" / "jobs" / f"{job}.jl").write_text(text)
    declaration = root / "prefect.yaml"
    entrypoint = f"flows/{name}.py:{name}"
    if entrypoint in declaration.read_text():
        return
    lines = [f"  - name: {name}", f"    entrypoint: {entrypoint}"]
    if parameters:
        lines += ["    parameters:", *(f"      {key}: {value}" for key, value in parameters.items())]
    lines.append("    work_pool: *work_pool")
    with declaration.open("a") as decl:  # deployments: is prefect.yaml's last key
        decl.write("\n" + "\n".join(lines) + "\n")
