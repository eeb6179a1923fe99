"""The package's public names: `from prefect_julia import Dataset, julia_job, run_julia`, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import prefect_julia
from prefect_julia.runtime import bridge, dataset

PUBLIC = {"Dataset": dataset.Dataset, "julia_job": bridge.julia_job, "run_julia": bridge.run_julia}


def test_the_public_names_are_the_runtime_objects() -> None:
    from prefect_julia import Dataset, julia_job, run_julia

    assert (Dataset, julia_job, run_julia) == (dataset.Dataset, bridge.julia_job, bridge.run_julia)
    for name, target in PUBLIC.items():
        assert getattr(prefect_julia, name) is target
        assert name in dir(prefect_julia)


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(prefect_julia.__all__) == sorted(PUBLIC)
    namespace: dict[str, object] = {}
    exec("from prefect_julia import *", namespace)
    assert {k for k in namespace if k != "__builtins__"} == set(PUBLIC)


def test_the_docstring_documents_each_name() -> None:
    doc = prefect_julia.__doc__ or ""
    for name in PUBLIC:
        assert f"``{name}(" in doc, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'julia_jobs'"):
        _ = prefect_julia.julia_jobs  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "module", ["prefect_julia.kit.environment.settings", "prefect_julia.cli.edge", "prefect_julia"]
)
def test_the_kit_and_the_cli_do_not_import_prefect(module: str) -> None:
    """Every `invoke` call imports these; Prefect would add about 1.5 s to each."""
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_public_names_import_prefect_when_used() -> None:
    """The probe above can see Prefect: the same probe through a public name finds it."""
    probe = "import sys; from prefect_julia import julia_job; print('prefect' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "True"
