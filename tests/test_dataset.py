"""Dataset: the shared path vectors, env resolution, atomic writes, CSV, and blocks on a real server."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from prefect_julia.core.errors import ConfigError
from prefect_julia.runtime.dataset import Dataset, DatasetError, DatasetMissing, block_reference

VECTORS = json.loads((Path(__file__).parent / "vectors" / "dataset_paths.json").read_text())
TODAY = date.fromisoformat(VECTORS["today"])
NO_ENV: dict[str, str] = {}


def make(inputs: dict[str, Any], env: dict[str, str] | None = None, **extra: Any) -> Dataset:
    return Dataset(**inputs, today=TODAY, env=NO_ENV if env is None else env, **extra)


@pytest.mark.parametrize("case", [c for c in VECTORS["cases"] if "expect" in c], ids=lambda c: c["label"])
def test_vector_paths(case: dict[str, Any]) -> None:
    ds = make(case["input"])
    expect = case["expect"]
    assert ds.rundate_type == expect["rundate_type"]
    assert str(ds.dated_path) == expect["dated_path"]
    assert str(ds.latest_path) == expect["latest_path"]
    assert str(ds.read_path) == expect["read_path"]
    assert [str(p) for p in ds.write_paths] == expect["write_paths"]


@pytest.mark.parametrize("case", [c for c in VECTORS["cases"] if "error" in c], ids=lambda c: c["label"])
def test_vector_errors(case: dict[str, Any]) -> None:
    with pytest.raises(DatasetError) as info:
        make(case["input"])
    assert info.value.field == case["error"]
    assert case["error"] in str(info.value)


@pytest.mark.parametrize("name", ["tab\tname", "new\nline", "nul\x00"])
def test_control_characters_in_name(name: str) -> None:
    with pytest.raises(DatasetError, match="dataset_name"):
        make({"dataset_name": name})


@pytest.mark.parametrize(("file_format", "ok"), [("csv.gz", True), ("PNG", True), ("c_sv", False), (".csv", False)])
def test_file_format_is_an_extension(file_format: str, ok: bool) -> None:
    if ok:
        assert make({"dataset_name": "iris", "file_format": file_format}).extension == file_format
    else:
        with pytest.raises(DatasetError, match="file_format"):
            make({"dataset_name": "iris", "file_format": file_format})


def test_defaults() -> None:
    ds = make({"dataset_name": "iris"})
    assert (ds.datastore_type, ds.dataset_type, ds.file_format) == ("local", "extracts", "csv")
    assert (ds.rundate, ds.rundate_type) == (TODAY, "latest")


def test_rundate_accepts_a_date_object() -> None:
    assert make({"dataset_name": "iris", "rundate": date(2026, 11, 1)}).rundate_type == "specific"


def test_today_defaults_to_the_real_date() -> None:
    assert Dataset("iris", env=NO_ENV).rundate == date.today()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "local"),
        ({"PREFECT_DATASTORE_DEFAULT_TYPE": "remote"}, "remote"),
        ({"PREFECT_DATASTORE_DEFAULT_TYPE": ""}, "local"),
    ],
)
def test_datastore_type_default_from_env(env: dict[str, str], expected: str) -> None:
    assert make({"dataset_name": "iris"}, env).datastore_type == expected


def test_explicit_datastore_type_beats_env() -> None:
    ds = make({"dataset_name": "iris", "datastore_type": "local"}, {"PREFECT_DATASTORE_DEFAULT_TYPE": "remote"})
    assert ds.datastore_type == "local"


def test_bad_default_datastore_type_names_the_variable() -> None:
    with pytest.raises(DatasetError, match="PREFECT_DATASTORE_DEFAULT_TYPE") as info:
        make({"dataset_name": "iris"}, {"PREFECT_DATASTORE_DEFAULT_TYPE": "cloud"})
    assert info.value.field == "datastore_type"


@pytest.mark.parametrize(
    ("datastore_type", "env", "expected"),
    [
        (
            "local",
            {"PREFECT_DATA_BLOCK_LOCAL": "local-file-system/willowdata"},
            ("local-file-system", "willowdata"),
        ),
        ("remote", {"PREFECT_DATA_BLOCK_REMOTE": "local-file-system/far"}, ("local-file-system", "far")),
        # only the block in use is required
        (
            "local",
            {"PREFECT_DATA_BLOCK_LOCAL": "local-file-system/a", "PREFECT_DATA_BLOCK_REMOTE": ""},
            ("local-file-system", "a"),
        ),
    ],
)
def test_block_reference(datastore_type: str, env: dict[str, str], expected: tuple[str, str]) -> None:
    assert block_reference(datastore_type, env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "PREFECT_DATA_BLOCK_REMOTE is not set"),
        ({"PREFECT_DATA_BLOCK_LOCAL": "local-file-system/a"}, "PREFECT_DATA_BLOCK_REMOTE is not set"),
        ({"PREFECT_DATA_BLOCK_REMOTE": "willowdata"}, "malformed"),
        ({"PREFECT_DATA_BLOCK_REMOTE": "gcs-bucket/willowdata"}, "gcs-bucket"),
    ],
)
def test_block_reference_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        block_reference("remote", env)


# --- files, with an explicit basepath -----------------------------------------------------------------------


def test_write_latest_today_writes_dated_then_latest(tmp_path: Path) -> None:
    ds = make({"dataset_name": "iris"}, basepath=tmp_path)
    written = ds.write_text("a,b\n1,2\n")
    assert written == [tmp_path / ds.dated_path, tmp_path / ds.latest_path]
    assert all(p.read_text() == "a,b\n1,2\n" for p in written)
    assert ds.read_text() == "a,b\n1,2\n"
    assert ds.path() == tmp_path / "extracts/csv/latest/dataset=iris/data.csv"
    assert not list(tmp_path.rglob(".*.tmp-*"))


def test_specific_reads_its_own_rundate(tmp_path: Path) -> None:
    make({"dataset_name": "iris", "rundate": "2026-11-01"}, basepath=tmp_path).write_text("old\n")
    make({"dataset_name": "iris"}, basepath=tmp_path).write_text("new\n")
    assert make({"dataset_name": "iris", "rundate": "2026-11-01"}, basepath=tmp_path).read_text() == "old\n"
    assert make({"dataset_name": "iris"}, basepath=tmp_path).read_text() == "new\n"


def test_csv_round_trip(tmp_path: Path) -> None:
    ds = make({"dataset_name": "iris"}, basepath=tmp_path)
    rows = [{"species": "setosa", "note": 'has, comma and "quotes"'}, {"species": "virginica", "note": ""}]
    ds.write_csv(rows, ["species", "note"])
    assert ds.read_csv() == rows


def test_missing_dataset_names_path_and_existing_rundates(tmp_path: Path) -> None:
    for day in ("2026-11-02", "2026-11-01"):
        make({"dataset_name": "iris", "rundate": day}, basepath=tmp_path).write_text("x\n")
    ds = make({"dataset_name": "iris", "rundate": "2026-11-03"}, basepath=tmp_path)
    with pytest.raises(DatasetMissing) as info:
        ds.read_bytes()
    message = str(info.value)
    assert str(tmp_path / ds.dated_path) in message
    assert "2026-11-01, 2026-11-02" in message
    assert info.value.rundates == ["2026-11-01", "2026-11-02"]


def test_missing_dataset_with_no_rundates(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing, match="Rundates stored for it: none"):
        make({"dataset_name": "iris"}, basepath=tmp_path).read_text()


def test_failed_write_keeps_previous_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = make({"dataset_name": "iris", "rundate": "2026-11-01", "rundate_type": "latest"}, basepath=tmp_path)
    ds.write_text("v1\n")

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ds.write_text("v2\n")
    monkeypatch.undo()
    assert ds.read_text() == "v1\n"
    assert sorted(p.name for p in (tmp_path / ds.latest_path).parent.iterdir()) == ["data.csv"]


# --- blocks on the real server ------------------------------------------------------------------------------


@pytest.mark.server
def test_block_basepath_from_server(on_server: Any, tmp_path: Path) -> None:
    from prefect.filesystems import LocalFileSystem

    name = f"data-{uuid.uuid4().hex[:8]}"
    LocalFileSystem(basepath=str(tmp_path / "store")).save(name, overwrite=True)
    env = {"PREFECT_DATA_BLOCK_LOCAL": f"local-file-system/{name}"}
    ds = make({"dataset_name": "iris"}, env)
    ds.write_csv([{"a": "1"}], ["a"])
    assert ds.basepath() == (tmp_path / "store").resolve()
    assert (tmp_path / "store" / "extracts/csv/latest/dataset=iris/data.csv").read_text() == "a\n1\n"
    assert make({"dataset_name": "iris"}, env).read_csv() == [{"a": "1"}]


@pytest.mark.server
def test_missing_block_on_server(on_server: Any) -> None:
    ds = make({"dataset_name": "iris"}, {"PREFECT_DATA_BLOCK_LOCAL": "local-file-system/no-such-block"})
    with pytest.raises(ConfigError, match="no-such-block"):
        ds.read_bytes()


def test_unused_block_variable_not_required() -> None:
    ds = make({"dataset_name": "iris", "datastore_type": "remote"}, {"PREFECT_DATA_BLOCK_LOCAL": ""})
    with pytest.raises(ConfigError, match="PREFECT_DATA_BLOCK_REMOTE"):
        ds.basepath()
