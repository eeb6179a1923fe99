"""Dataset: the shared path vectors, env resolution, atomic writes, CSV, the base's data, and blocks on a real
server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from prefect_julia.core.errors import ConfigError
from prefect_julia.runtime.dataset import Dataset, DatasetError, DatasetMissing, block_reference
from prefect_julia.runtime.julia_process import julia_env

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


# --- the base's data (PREFECT_DATA_FALLBACK_ROOT) ------------------------------------------------------------

FALLBACK = VECTORS["fallback"]


def stores(tmp_path: Path, case: dict[str, Any]) -> tuple[Path, Path, dict[str, str]]:
    """The own and the base store of a fallback vector, filled, and the environment that names the base."""
    own, base = tmp_path / "own", tmp_path / "base"
    for root, word in ((own, "own"), (base, "base")):
        root.mkdir()
        for relative in case[word]:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(word)
    env = {"PREFECT_DATA_FALLBACK_ROOT": str(base), "PREFECT_DATA_FALLBACK_NAME": FALLBACK["name"]}
    return own, base, env if case["fallback"] else {}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (hidden ones too) with its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def fallback_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if FALLBACK["log"] in r.getMessage()]


@pytest.mark.parametrize("case", FALLBACK["cases"], ids=lambda c: c["label"])
def test_vector_fallback(case: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    own, base, env = stores(tmp_path, case)
    ds = make(case["input"], env, basepath=own)
    expect = case["expect"]
    before = snapshot(base)
    with caplog.at_level(logging.INFO, logger="prefect_julia.dataset"):
        if expect["reads"] == "missing":
            with pytest.raises(DatasetMissing) as info:
                ds.read_text()
            assert info.value.rundates == expect["rundates"]
        else:
            assert ds.read_text() == expect["reads"]
    lines = fallback_lines(caplog)
    assert len(lines) == (1 if expect["log"] else 0), lines
    if expect["log"]:
        assert str(base / ds.read_path) in lines[0] and '"iris"' in lines[0]
    assert ds.rundates() == expect["rundates"]
    assert ds.rundates(fallback=False) == expect["own_rundates"]
    assert snapshot(base) == before


def test_path_and_location_point_at_the_base_file_only_when_the_own_store_lacks_it(tmp_path: Path) -> None:
    case = FALLBACK["cases"][1]  # only the base has it
    own, base, env = stores(tmp_path, case)
    ds = make(case["input"], env, basepath=own)
    assert ds.path() == base / ds.read_path
    assert ds.location() == str(base / ds.read_path)
    ds.write_text("own\n")
    assert ds.path() == own / ds.read_path
    assert ds.read_text() == "own\n"


def test_write_with_a_fallback_goes_to_the_own_store_only(tmp_path: Path) -> None:
    case = FALLBACK["cases"][1]  # the base has latest and a dated file
    own, base, env = stores(tmp_path, case)
    before = snapshot(base)
    for rundate in (None, "2026-11-20"):
        written = make({**case["input"], "rundate": rundate}, env, basepath=own).write_text("new\n")
        assert all(Path(p).is_relative_to(own) for p in written), written
    assert snapshot(base) == before
    assert sorted(snapshot(own)) == sorted(
        str(p)
        for p in (
            make(case["input"]).latest_path,
            *[make({**case["input"], "rundate": day}).dated_path for day in ("2026-11-20", "2026-11-21")],
        )
    )


def test_a_read_from_the_base_leaves_its_stale_temporary_files(tmp_path: Path) -> None:
    case = FALLBACK["cases"][1]
    own, base, env = stores(tmp_path, case)
    ds = make(case["input"], env, basepath=own)
    dead = subprocess.Popen(["true"])  # its pid runs no more once it has been waited for
    dead.wait()
    stale = base / ds.read_path.parent / f".{ds.read_path.name}.tmp-{dead.pid}-1"
    stale.write_text("half")
    own_stale = own / ds.read_path.parent / f".{ds.read_path.name}.tmp-{dead.pid}-1"
    own_stale.parent.mkdir(parents=True)
    own_stale.write_text("half")
    assert ds.read_text() == "base"
    assert stale.exists()  # the base's store is never written, not even swept
    assert not own_stale.exists()  # the own store is swept as always


def test_missing_names_both_stores(tmp_path: Path) -> None:
    case = FALLBACK["cases"][2]  # neither has it
    own, base, env = stores(tmp_path, case)
    ds = make(case["input"], env, basepath=own)
    with pytest.raises(DatasetMissing) as info:
        ds.read_bytes()
    message = str(info.value)
    assert str(own / ds.read_path) in message
    assert f"nor in dev's data at {base / ds.read_path}" in message
    assert "2026-11-01, 2026-11-02" in message


def test_fallback_to_the_own_store_is_no_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"PREFECT_DATA_FALLBACK_ROOT": str(tmp_path), "PREFECT_DATA_FALLBACK_NAME": "dev"}
    ds = make({"dataset_name": "iris"}, env, basepath=tmp_path)
    assert ds.fallback() is None
    assert make({"dataset_name": "iris"}, env, basepath=tmp_path / "own").fallback() is not None
    with caplog.at_level(logging.INFO, logger="prefect_julia.dataset"), pytest.raises(DatasetMissing):
        ds.read_bytes()
    assert fallback_lines(caplog) == []


@pytest.mark.parametrize("root", ["relative/folder", "./data"])
def test_relative_fallback_root_is_refused(tmp_path: Path, root: str) -> None:
    ds = make({"dataset_name": "iris"}, {"PREFECT_DATA_FALLBACK_ROOT": root}, basepath=tmp_path)
    with pytest.raises(ConfigError, match="PREFECT_DATA_FALLBACK_ROOT") as info:
        ds.read_bytes()
    assert info.value.hint and "absolute" in str(info.value)


def test_empty_fallback_root_means_no_fallback(tmp_path: Path) -> None:
    env = {"PREFECT_DATA_FALLBACK_ROOT": "  ", "PREFECT_DATA_FALLBACK_NAME": "dev"}
    assert make({"dataset_name": "iris"}, env, basepath=tmp_path).fallback() is None


def test_julia_jobs_get_both_fallback_variables(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "PREFECT_DATA_FALLBACK_ROOT": "/data/dev", "PREFECT_DATA_FALLBACK_NAME": "dev"}
    env = julia_env(base, tmp_path / "result.json", None)
    assert env["PREFECT_DATA_FALLBACK_ROOT"] == "/data/dev"
    assert env["PREFECT_DATA_FALLBACK_NAME"] == "dev"
    assert "PREFECT_DATA_FALLBACK_ROOT" not in julia_env({"PATH": "/usr/bin"}, tmp_path / "result.json", None)


FALLBACK_JOB = """using PrefectInterfaces
args = parseargs()
block = LocalFSBlock("local-file-system/own", args["own"])
ds = Dataset("iris"; today=args["today"])
text = read(ds, String; block=block)
out = Dataset("iris_out"; today=args["today"])
written = write(out, uppercase(text); block=block)
setresult(Dict("text" => text, "path" => datasetpath(ds; block=block), "rundates" => rundates(ds; block=block),
               "written" => written))
"""


@pytest.mark.julia
@pytest.mark.parametrize("session", ["fresh", "warm"])
def test_a_julia_job_reads_the_base_data_and_writes_its_own(
    tmp_path: Path, session: str, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import REPO_ROOT
    from prefect_julia.runtime.bridge import JuliaFailed, run_julia

    case = FALLBACK["cases"][1]  # only the base has it
    own, base, fallback_env = stores(tmp_path, case)
    before = snapshot(base)
    job = tmp_path / "jobs" / "fallback.jl"
    job.parent.mkdir()
    job.write_text(FALLBACK_JOB)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), **fallback_env}
    env["PREFECT_JULIA_SESSION_PROGRAMS"] = str(job.parent)  # a warm session runs it too
    params = {"own": str(own), "today": VECTORS["today"]}
    project = REPO_ROOT / "julia"
    try:
        with caplog.at_level(logging.INFO, logger="prefect_julia.julia"):
            result = run_julia(job, params, project=project, timeout=300, env=env, session=session, anywhere=True)
        assert result.result["text"] == "base"
        assert result.result["path"] == str(base / make(case["input"]).read_path)
        assert result.result["rundates"] == case["expect"]["rundates"]
        assert all(p.startswith(str(own) + "/") for p in result.result["written"]), result.result["written"]
        assert snapshot(base) == before
        assert any(FALLBACK["log"] in line for line in fallback_lines(caplog))
        # The same job without the variables (in the same warm session, when warm) finds nothing.
        bare = {k: v for k, v in env.items() if not k.startswith("PREFECT_DATA_FALLBACK_")}
        with pytest.raises(JuliaFailed, match="No such file"):
            run_julia(job, params, project=project, timeout=300, env=bare, session=session, anywhere=True)
    finally:
        if session == "warm":
            from prefect_julia.runtime.julia_session import session_folder, stop_sessions

            stop_sessions(session_folder(env))


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
    with pytest.raises(ConfigError, match="no-such-block") as info:
        ds.read_bytes()
    assert info.value.hint == "Declare it in envs/ENV.blocks.toml and create it with `invoke blocks ENV`."


@pytest.mark.parametrize(("marker", "word"), [({}, "ENV"), ({"PREFECT_JULIA_ENV": "dev"}, "dev")])
def test_a_dataset_outside_a_flow_says_how_to_get_the_settings(marker: dict[str, str], word: str) -> None:
    with pytest.raises(ConfigError, match="PREFECT_DATA_BLOCK_LOCAL is not set") as info:
        make({"dataset_name": "iris"}, marker).basepath()
    assert f'eval "$(invoke env --shell {word})"' in (info.value.hint or ""), info.value.hint


def test_unused_block_variable_not_required() -> None:
    ds = make({"dataset_name": "iris", "datastore_type": "remote"}, {"PREFECT_DATA_BLOCK_LOCAL": ""})
    with pytest.raises(ConfigError, match="PREFECT_DATA_BLOCK_REMOTE"):
        ds.basepath()
