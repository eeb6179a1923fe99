"""The Julia bridge: parsing, command and environment, real julia runs inside and outside Prefect flows."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import REPO_ROOT, wait_gone
from prefect_julia.core.errors import CommandFailed, ConfigError, PrefectJuliaError
from prefect_julia.core.processes import ExitWatch
from prefect_julia.runtime.bridge import julia_job, run_julia
from prefect_julia.runtime.julia_log import JuliaLog, StderrParser
from prefect_julia.runtime.julia_process import (
    ENTRY_POINT,
    CommandParts,
    JuliaFailed,
    JuliaNotFound,
    JuliaProgramMissing,
    JuliaProgramOutside,
    JuliaResultError,
    JuliaTimeout,
    build_command,
    find_julia,
    julia_env,
    read_result,
    resolve_program,
    shell_line,
)

Program = Callable[[str, str], Path]


@pytest.fixture
def program(tmp_path: Path) -> Program:
    """Write a small Julia program into a temporary jobs folder and return its path."""

    def write(name: str, code: str) -> Path:
        path = tmp_path / "jobs" / f"{name}.jl"
        path.parent.mkdir(exist_ok=True)
        path.write_text(code)
        return path

    return write


def feed_all(lines: list[str]) -> list[JuliaLog | str]:
    parser = StderrParser()
    events = [event for line in lines for event in parser.feed(line)]
    return [*events, *parser.flush()]


# --- stderr parsing -----------------------------------------------------------------------------------------

W, E, INFO = logging.WARNING, logging.ERROR, logging.INFO


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["[ Info: hello"], [JuliaLog(INFO, "hello")]),
        (["┌ Warning: careful", "└ @ Main /j/x.jl:3"], [JuliaLog(W, "careful", "Main", "/j/x.jl", 3)]),
        (
            ["┌ Error: bad", "│   y = 2", "└ @ Main /j/x.jl:4"],
            [JuliaLog(E, "bad\n  y = 2", "Main", "/j/x.jl", 4)],
        ),
        (["┌ Info: multi", "│ line", "└   x = 1"], [JuliaLog(INFO, "multi\nline\n  x = 1")]),
        (["[ Debug: d"], [JuliaLog(logging.DEBUG, "d")]),
        (["plain", "ERROR: LoadError: boom"], ["plain", "ERROR: LoadError: boom"]),
        (["┌ Warning: cut short"], [JuliaLog(W, "cut short")]),
        (["┌ Warning: cut", "ERROR: died"], [JuliaLog(W, "cut"), "ERROR: died"]),
        (
            ['::prefect-log::{"level": "WARNING", "message": "m", "module": "Jobs", "file": "f.jl", "line": 7}'],
            [JuliaLog(W, "m", "Jobs", "f.jl", 7)],
        ),
        (['::prefect-log::{"level": "ERROR", "message": "a\\nb"}'], [JuliaLog(E, "a\nb")]),
        (['::prefect-log::{"level": "DEBUG", "message": "d"}'], [JuliaLog(logging.DEBUG, "d")]),
        (['::prefect-log::{"level": "LOUD", "message": "x"}'], [JuliaLog(INFO, "x")]),
        (["::prefect-log::{not json"], ["::prefect-log::{not json"]),
        (['::prefect-log::["no", "message"]'], ['::prefect-log::["no", "message"]']),
    ],
)
def test_stderr_parser(lines: list[str], expected: list[JuliaLog | str]) -> None:
    assert feed_all(lines) == expected


def test_render_adds_location_from_warning_up() -> None:
    assert JuliaLog(W, "m", "Main", "x.jl", 3).render() == "m (@ Main x.jl:3)"
    assert JuliaLog(INFO, "m", "Main", "x.jl", 3).render() == "m"


# --- command, environment, program, result ------------------------------------------------------------------


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_exit_watch_tells_running_from_exited(monkeypatch: pytest.MonkeyPatch, pidfd: bool) -> None:
    import subprocess

    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)  # as on a kernel or OS without pid descriptors
    proc = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 7"])
    watch = ExitWatch(proc)
    try:
        assert (watch.fd is not None) == pidfd
        assert not watch.within(0.05) and proc.returncode is None
        assert watch.within(10) and proc.returncode == 7
    finally:
        watch.close()
        proc.wait()


def test_build_command(tmp_path: Path) -> None:
    command = build_command("julia", tmp_path, tmp_path / "jobs/a.jl", {"n": 3, "name": "a b", "dry": True})
    assert command == [
        "julia",
        f"--project={tmp_path}",
        "--startup-file=no",
        "-e",
        ENTRY_POINT,
        str(tmp_path / "jobs/a.jl"),
        "--n=3",
        "--name=a b",
        "--dry=true",
    ]


def test_command_parts_find_the_program_after_the_entry_point(tmp_path: Path) -> None:
    command = build_command("julia", tmp_path, tmp_path / "jobs/a.jl", {"n": 3}, tmp_path / "img.so")
    parts = CommandParts.of(command)
    assert (parts.program, parts.args, parts.image, parts.project) == (
        str(tmp_path / "jobs/a.jl"),
        ["--n=3"],
        tmp_path / "img.so",
        tmp_path,
    )


def test_shell_line_quotes_each_argument_on_one_line() -> None:
    import shlex

    command = ["julia", "-e", "import X; X.f(a)", "/j/a b.jl", "--note=it's", "--text=two\nlines\tand\x01"]
    line = shell_line(command)
    assert "\n" not in line
    assert line == ("julia -e 'import X; X.f(a)' '/j/a b.jl' '--note=it'\"'\"'s' $'--text=two\\nlines\\tand\\x01'")
    assert shlex.split(line.rsplit(" ", 1)[0]) == command[:-1]  # what a shell would read back


# --- the job's own account of the error that ended it ----------------------------------------------------------

UNCAUGHT = {
    "level": "ERROR",
    "message": "bad data",
    "module": "Main",
    "file": "/repo/julia/jobs/clean_sales.jl",
    "line": 10,
    "stacktrace": "Stacktrace:\n [1] check(::Int64) at clean_sales.jl:10\n [2] top-level scope at clean_sales.jl:12",
    "uncaught": True,
}


def test_uncaught_error_record_is_parsed_and_rendered_once_with_its_trace() -> None:
    (record,) = feed_all(["::prefect-log::" + json.dumps(UNCAUGHT)])
    assert isinstance(record, JuliaLog)
    assert record.uncaught and record.level == E
    assert record.summary() == "clean_sales.jl:10: bad data"
    assert record.render() == (
        "bad data (@ Main /repo/julia/jobs/clean_sales.jl:10)\nStacktrace:\n [1] check(::Int64) at clean_sales.jl:10"
        "\n [2] top-level scope at clean_sales.jl:12"
    )
    (plain,) = feed_all(["::prefect-log::" + json.dumps({**UNCAUGHT, "uncaught": "yes"})])
    assert isinstance(plain, JuliaLog) and not plain.uncaught


def _sink(tmp_path: Path) -> Any:
    from prefect_julia.runtime.joboutput import OutputSink

    return OutputSink(logging.getLogger("test-bridge"), tmp_path / "out.log")


def test_the_error_record_is_the_failure_message_without_the_stderr_tail(tmp_path: Path) -> None:
    from prefect_julia.runtime.julia_process import emit_events, failure

    sink = _sink(tmp_path)
    with sink:
        emit_events(sink, feed_all(["plain line", "::prefect-log::" + json.dumps(UNCAUGHT)]))
    assert sink.failure == "clean_sales.jl:10: bad data"
    error = failure(Path("clean_sales.jl"), ["julia"], 1, "\n".join(sink.stderr_tail), sink.failure)
    assert str(error) == "clean_sales.jl:10: bad data"
    assert error.return_code == 1 and error.stderr_tail == ""
    # Without the record (a plain exit code), the tail is still what the failure shows.
    bare = failure(Path("clean_sales.jl"), ["julia"], 3, "no rows", None)
    assert "exited with code 3" in str(bare) and "no rows" in str(bare)
    # A record of an error that did not end the job changes nothing.
    other = _sink(tmp_path)
    with other:
        emit_events(other, feed_all(["::prefect-log::" + json.dumps({**UNCAUGHT, "uncaught": False})]))
    assert other.failure is None


def test_bad_parameter_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="parameter name"):
        build_command("julia", tmp_path, tmp_path / "a.jl", {"no spaces": 1})


def test_julia_env(tmp_path: Path) -> None:
    base = {
        "PATH": "/bin",
        "PREFECT_DATA_BLOCK_LOCAL": "local-file-system/willowdata",
        "PREFECT_DATASTORE_DEFAULT_TYPE": "local",
    }
    env = julia_env(base, tmp_path / "r.json", "http://127.0.0.1:1/api")
    assert env == {
        **base,
        "PREFECT_API_URL": "http://127.0.0.1:1/api",
        "PREFECT_JULIA_RESULT_PATH": str(tmp_path / "r.json"),
        "PREFECT_JULIA_LOG_FORMAT": "prefect",
    }
    assert julia_env({"PREFECT_API_URL": "http://env/api"}, tmp_path, "http://x/api")["PREFECT_API_URL"] == (
        "http://env/api"
    )
    assert "PREFECT_API_URL" not in julia_env({}, tmp_path, None)


def test_julia_not_installed(tmp_path: Path) -> None:
    with pytest.raises(JuliaNotFound, match=r"bash scripts/install-julia\.sh") as info:
        find_julia({"PATH": str(tmp_path)})
    assert isinstance(info.value, PrefectJuliaError)
    with pytest.raises(JuliaNotFound, match="PREFECT_JULIA_BIN"):
        find_julia({"PREFECT_JULIA_BIN": str(tmp_path / "nope"), "PATH": os.defpath})
    with pytest.raises(JuliaNotFound, match="install-julia"):
        run_julia("anything", env={"PATH": str(tmp_path)}, project=tmp_path)


def test_julia_bin_wins(tmp_path: Path) -> None:
    fake = tmp_path / "myjulia"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_julia({"PREFECT_JULIA_BIN": str(fake), "PATH": ""}) == str(fake)


def test_program_missing_lists_jobs(tmp_path: Path, program: Program) -> None:
    program("clean_iris", "")
    assert resolve_program("clean_iris", tmp_path) == tmp_path / "jobs/clean_iris.jl"
    assert resolve_program("clean_iris.jl", tmp_path) == tmp_path / "jobs/clean_iris.jl"
    with pytest.raises(JuliaProgramMissing, match=r"nope\.jl does not exist.*clean_iris"):
        resolve_program("nope", tmp_path)
    with pytest.raises(JuliaProgramMissing):
        resolve_program(tmp_path / "elsewhere.jl", tmp_path, anywhere=True)


def test_only_jobs_under_the_project_run_unless_the_caller_opts_in(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "inside.jl").write_text("1")
    (tmp_path / "outside.jl").write_text("1")
    assert resolve_program(tmp_path / "jobs" / "inside.jl", tmp_path) == tmp_path / "jobs" / "inside.jl"
    for program in (tmp_path / "outside.jl", "../outside.jl", str(tmp_path / "outside.jl")):
        with pytest.raises(JuliaProgramOutside, match="outside the project's jobs folder"):
            resolve_program(program, tmp_path)
    assert resolve_program(tmp_path / "outside.jl", tmp_path, anywhere=True) == tmp_path / "outside.jl"
    with pytest.raises(JuliaProgramOutside):
        run_julia(tmp_path / "outside.jl", env={"PATH": os.environ["PATH"]}, project=tmp_path)


def test_read_result(tmp_path: Path) -> None:
    assert read_result(tmp_path / "absent.json") is None
    (tmp_path / "ok.json").write_text('{"rows": 3, "names": ["a"]}')
    assert read_result(tmp_path / "ok.json") == {"rows": 3, "names": ["a"]}
    (tmp_path / "bad.json").write_text('{"rows": ')
    with pytest.raises(JuliaResultError, match="not valid JSON"):
        read_result(tmp_path / "bad.json")


# --- real julia ---------------------------------------------------------------------------------------------

RESULT = """
open(ENV["PREFECT_JULIA_RESULT_PATH"], "w") do io
    write(io, "{\\"args\\": [" * join(["\\"$a\\"" for a in ARGS], ", ") * "], " *
              "\\"api\\": \\"$(get(ENV, "PREFECT_API_URL", ""))\\", " *
              "\\"block\\": \\"$(get(ENV, "PREFECT_DATA_BLOCK_LOCAL", ""))\\", " *
              "\\"format\\": \\"$(ENV["PREFECT_JULIA_LOG_FORMAT"])\\"}")
end
println("done")
"""


@pytest.mark.julia
class TestRealJulia:
    def test_result_parameters_and_env(self, tmp_path: Path, program: Program) -> None:
        path = program("ok", RESULT)
        env = {"PATH": os.environ["PATH"], "PREFECT_API_URL": "http://127.0.0.1:9/api"}
        env["PREFECT_DATA_BLOCK_LOCAL"] = "local-file-system/willowdata"
        outcome = run_julia("ok", {"dataset_name": "iris", "n": 2}, env=env, project=tmp_path, timeout=60)
        assert outcome.exit_code == 0
        assert outcome.result == {
            "args": ["--dataset_name=iris", "--n=2"],
            "api": "http://127.0.0.1:9/api",
            "block": "local-file-system/willowdata",
            "format": "prefect",
        }
        assert outcome.stdout_tail == "done"
        assert CommandParts.of(outcome.command).program == str(path)
        assert 0 < outcome.duration < 60

    def test_no_result_document_is_none(self, tmp_path: Path, program: Program) -> None:
        program("quiet", 'println("hi")')
        assert run_julia("quiet", project=tmp_path, timeout=60).result is None

    def test_failure_carries_exit_code_and_stderr_tail(self, tmp_path: Path, program: Program) -> None:
        program("fail", 'println(stderr, "reading input"); println(stderr, "no rows in iris"); exit(3)')
        with pytest.raises(JuliaFailed) as info:
            run_julia("fail", project=tmp_path, timeout=60)
        error = info.value
        assert isinstance(error, CommandFailed)
        assert error.return_code == 3
        assert error.stderr_tail.splitlines()[-1] == "no rows in iris"
        assert "exited with code 3" in str(error)
        assert "no rows in iris" in str(error)

    @pytest.mark.parametrize("session", ["fresh", "warm"])
    def test_uncaught_exception_fails_with_its_message(
        self, tmp_path: Path, program: Program, session: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = program("boom", '@warn "first"\ncheck(n) = n > 0 || error("the input is empty")\ncheck(0)\n')
        env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_JULIA_SESSION_PROGRAMS": str(tmp_path)}
        project = REPO_ROOT / "julia"  # the package's own project: its entry point runs the job
        with caplog.at_level(logging.DEBUG, logger="prefect_julia.julia"), pytest.raises(JuliaFailed) as info:
            run_julia(str(path), project=project, timeout=120, env=env, session=session, anywhere=True)
        assert str(info.value) == "boom.jl:2: the input is empty"
        assert info.value.return_code == 1
        if session == "warm":
            from prefect_julia.runtime.julia_session import session_folder, stop_sessions

            stop_sessions(session_folder(env))
        records = [(r.levelno, r.getMessage()) for r in caplog.records if "the input is empty" in r.getMessage()]
        assert len(records) == 1, records
        level, message = records[0]
        assert level == E and message.startswith(f"the input is empty (@ Main {tmp_path / 'jobs' / 'boom.jl'}:2)")
        assert "check(::Int64) at boom.jl:2" in message and "LoadError" not in message
        assert (W, "first") in {(r.levelno, r.getMessage().split(" (@")[0]) for r in caplog.records}

    def test_exit_code_of_the_job_stays(self, tmp_path: Path, program: Program) -> None:
        program("leave", 'println(stderr, "leaving")\nexit(5)\n')
        with pytest.raises(JuliaFailed, match="exited with code 5") as info:
            run_julia("leave", project=tmp_path, timeout=60)
        assert info.value.return_code == 5 and "leaving" in str(info.value)

    def test_malformed_result(self, tmp_path: Path, program: Program) -> None:
        program("bad", 'write(ENV["PREFECT_JULIA_RESULT_PATH"], "{\\"rows\\": ")')
        with pytest.raises(JuliaResultError, match="not valid JSON"):
            run_julia("bad", project=tmp_path, timeout=60)

    def test_timeout_kills_the_whole_tree(self, tmp_path: Path, program: Program) -> None:
        # The child ignores SIGTERM (ignored dispositions survive exec), so only the SIGKILL stage stops it.
        program(
            "hang",
            """
            child = run(`sh -c "trap '' TERM; exec sleep 120"`, wait=false)
            write(ARGS[1][length("--pidfile=")+1:end], string(getpid(child)))
            println(stderr, "waiting forever")
            sleep(120)
            """,
        )
        pidfile = tmp_path / "child.pid"
        started = time.monotonic()
        with pytest.raises(JuliaTimeout) as info:
            run_julia("hang", {"pidfile": pidfile}, project=tmp_path, timeout=2, grace=1)
        assert time.monotonic() - started < 10
        assert "timeout of 2 s" in str(info.value)
        assert "waiting forever" in info.value.stderr_tail
        assert wait_gone(int(pidfile.read_text()), 5)

    def test_timeout_setting_is_honoured(self, tmp_path: Path, program: Program) -> None:
        program("sleepy", "sleep(60)")
        env = {**os.environ, "PREFECT_JULIA_JULIA_TIMEOUT": "2"}
        with pytest.raises(JuliaTimeout, match="timeout of 2 s") as info:
            run_julia("sleepy", env=env, project=tmp_path, grace=1)
        assert info.value.timeout == 2
        with pytest.raises(ConfigError, match="PREFECT_JULIA_JULIA_TIMEOUT='soon' is not a positive number"):
            run_julia("sleepy", env={**env, "PREFECT_JULIA_JULIA_TIMEOUT": "soon"}, project=tmp_path)

    def test_stragglers_are_killed_after_exit(self, tmp_path: Path, program: Program) -> None:
        program(
            "leaky",
            """
            child = run(`sleep 120`, wait=false)
            write(ARGS[1][length("--pidfile=")+1:end], string(getpid(child)))
            """,
        )
        pidfile = tmp_path / "child.pid"
        run_julia("leaky", {"pidfile": pidfile}, project=tmp_path, timeout=60, grace=1)
        assert wait_gone(int(pidfile.read_text()), 5)

    def test_levels_outside_a_run(self, tmp_path: Path, program: Program, caplog: pytest.LogCaptureFixture) -> None:
        program("levels", '@info "i1"\n@warn "w1"\n@error "e1"\nprintln("out1")')
        with caplog.at_level(logging.DEBUG, logger="prefect_julia.julia"):
            run_julia("levels", project=tmp_path, timeout=60)
        seen = {(r.levelno, r.getMessage().split(" (@")[0]) for r in caplog.records}
        assert {(INFO, "i1"), (W, "w1"), (E, "e1"), (INFO, "out1")} <= seen


# --- inside Prefect flows, against the real server ----------------------------------------------------------

LEVELS = """
@info "console info"
@warn "console warning"
@error "console error"
println(stderr, "::prefect-log::{\\"level\\": \\"WARNING\\", \\"message\\": \\"structured warning\\", " *
                "\\"module\\": \\"Jobs\\", \\"file\\": \\"levels.jl\\", \\"line\\": 5}")
println(stderr, "::prefect-log::{\\"level\\": \\"ERROR\\", \\"message\\": \\"structured error\\"}")
write(ENV["PREFECT_JULIA_RESULT_PATH"], "{\\"ok\\": true}")
"""


def _flow_logs(flow_run_id: Any) -> list[tuple[int, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [(log.level, log.message) for log in logs]


@pytest.mark.server
@pytest.mark.julia
class TestInFlows:
    def test_log_levels_reach_the_run_log(self, on_server: Any, program: Program) -> None:
        from prefect import flow

        path = program("levels", LEVELS)

        @flow(name="julia-levels")
        def levels() -> Any:
            return julia_job(str(path), {}, timeout=60, anywhere=True)

        state = levels(return_state=True)
        assert state.is_completed()
        assert state.result() == {"ok": True}
        logs = _flow_logs(state.state_details.flow_run_id)
        messages = {(level, message.split(" (@")[0]) for level, message in logs}
        expected = {
            (INFO, "console info"),
            (W, "console warning"),
            (E, "console error"),
            (W, "structured warning"),
            (E, "structured error"),
        }
        assert expected <= messages
        assert (W, "structured warning (@ Jobs levels.jl:5)") in logs

    @pytest.mark.parametrize(
        ("code", "timeout", "error", "message"),
        [
            ('println(stderr, "bad input"); exit(3)', 60, JuliaFailed, "exited with code 3"),
            ('println(stderr, "stuck"); sleep(60)', 2, JuliaTimeout, "timeout of 2 s"),
            ('write(ENV["PREFECT_JULIA_RESULT_PATH"], "{oops")', 60, JuliaResultError, "not valid JSON"),
            (None, 60, JuliaProgramMissing, "does not exist"),
        ],
        ids=["exit-3", "timeout", "bad-result", "missing"],
    )
    def test_failing_job_fails_the_flow_run(
        self,
        on_server: Any,
        program: Program,
        tmp_path: Path,
        code: str | None,
        timeout: float,
        error: type[Exception],
        message: str,
    ) -> None:
        from prefect import flow

        path = program("job", code) if code is not None else tmp_path / "jobs" / "absent.jl"

        @flow(name="julia-fails")
        def fails() -> Any:
            return julia_job(str(path), {}, timeout=timeout, anywhere=True)

        state = fails(return_state=True)
        assert state.is_failed()
        assert message in (state.message or "")
        with pytest.raises(error, match=message):
            state.result()

    def test_default_api_url_is_the_running_server(self, on_server: Any, program: Program) -> None:
        program("api", 'write(ENV["PREFECT_JULIA_RESULT_PATH"], "\\"" * ENV["PREFECT_API_URL"] * "\\"")')
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        assert run_julia("api", env=env, project=program("x", "").parents[1], timeout=60).result == (on_server.api_url)


def test_result_document_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect_julia.runtime.julia_process as julia_process

    monkeypatch.setattr(julia_process, "MAX_RESULT_BYTES", 10)
    (tmp_path / "big.json").write_text(json.dumps({"rows": list(range(10))}))
    with pytest.raises(JuliaResultError, match="limit"):
        read_result(tmp_path / "big.json")


# --- Python and Julia datasets through real blocks ----------------------------------------------------------

SUMMARIZE = """
using PrefectInterfaces
args = parseargs()
data, header = readcsv(Dataset(args["source"]))
species, x = findfirst(==("species"), header), findfirst(==("x"), header)
totals = Dict{String,Float64}()
for r in 1:size(data, 1)
    totals[string(data[r, species])] = get(totals, string(data[r, species]), 0.0) + Float64(data[r, x])
end
names = sort(collect(keys(totals)))
@warn "summarised" nspecies = length(names)
writecsv(Dataset(args["target"]; dataset_type="reports"), hcat(names, [totals[n] for n in names]);
         header=["species", "total"])
setresult(Dict("rows" => size(data, 1), "species" => length(names)))
"""


@pytest.mark.server
@pytest.mark.julia
def test_python_and_julia_share_datasets(
    on_server: Any, program: Program, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.filesystems import LocalFileSystem

    from prefect_julia.runtime.dataset import Dataset

    block = f"store-{uuid.uuid4().hex[:8]}"
    LocalFileSystem(basepath=str(tmp_path / "store")).save(block, overwrite=True)
    monkeypatch.setenv("PREFECT_DATA_BLOCK_LOCAL", f"local-file-system/{block}")
    monkeypatch.setenv("PREFECT_API_URL", on_server.api_url)
    monkeypatch.delenv("PREFECT_DATASTORE_DEFAULT_TYPE", raising=False)
    path = program("summarize", SUMMARIZE)

    @flow(name="julia-datasets")
    def pipeline() -> tuple[Any, list[dict[str, str]]]:
        rows = [{"species": s, "x": x} for s, x in [("setosa", 1), ("virginica", 2.5), ("setosa", 3)]]
        Dataset("readings").write_csv(rows, ["species", "x"])
        result = julia_job(str(path), {"source": "readings", "target": "totals"}, timeout=120, anywhere=True)
        return result, Dataset("totals", dataset_type="reports").read_csv()

    result, totals = pipeline()
    assert result == {"rows": 3, "species": 2}
    assert [(row["species"], float(row["total"])) for row in totals] == [("setosa", 4.0), ("virginica", 2.5)]
    today = Dataset("totals", dataset_type="reports")
    assert (tmp_path / "store" / today.dated_path).read_text() == (tmp_path / "store" / today.latest_path).read_text()
