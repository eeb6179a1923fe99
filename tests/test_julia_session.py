"""Fresh and warm Julia sessions give the same results, logs and failures; warm sessions are isolated and
replaced after a timeout or crash; no Julia outlives its flow run; large output is batched and capped.

Everything runs a real ``julia`` on the repository's Julia project. One warm session folder is shared by the
module's tests (a session starts in a few seconds here, then each job takes milliseconds).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import REPO_ROOT, eventually, wait_gone
from prefect_julia.core.processes import running
from prefect_julia.runtime import julia_session
from prefect_julia.runtime.bridge import JuliaFailed, JuliaResultError, JuliaTimeout, run_julia
from prefect_julia.runtime.joboutput import OutputSink

pytestmark = [
    pytest.mark.julia,
    pytest.mark.skipif(shutil.which("julia") is None, reason="no julia: bash scripts/install-julia.sh"),
]

PROJECT = REPO_ROOT / "julia"
MODES = ["fresh", "warm"]
Program = Callable[[str, str], Path]


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("sessions")
    yield folder
    julia_session.stop_sessions(folder, grace=2)


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``PREFECT_JULIA_SESSION_PROGRAMS`` for the module's jobs: every test's ``tmp_path`` lies under pytest's
    base folder, so one session serves them all."""
    return str(tmp_path_factory.getbasetemp())


@pytest.fixture
def run(session_dir: Path, programs: str) -> Callable[..., Any]:
    """``run(mode, program, params, timeout=60, **env)``: run_julia with the shared session folder."""

    def call(mode: str, program: Path, params: dict[str, object] | None = None, timeout: float = 60, **env: str) -> Any:
        environ = {k: v for k, v in os.environ.items() if k != "PREFECT_HOME"}
        environ.update(
            {"PREFECT_JULIA_SESSION_DIR": str(session_dir), "PREFECT_JULIA_SESSION_PROGRAMS": programs, **env}
        )
        return run_julia(
            program, params or {}, env=environ, project=PROJECT, timeout=timeout, session=mode, anywhere=True
        )

    return call


@pytest.fixture
def program(tmp_path: Path) -> Program:
    def write(name: str, code: str) -> Path:
        path = tmp_path / f"{name}.jl"
        path.write_text(code)
        return path

    return write


def session_pids(folder: Path) -> list[int]:
    return sorted(info.pid for info in julia_session.sessions(folder))


# --- the same results, logs and failures ---------------------------------------------------------------------

JOB = """
using PrefectInterfaces
args = parseargs()
total = 41 + parse(Int, args["n"])
println("stdout line ", total)
@info "info record" total = total
@warn "warn record"
println(stderr, "plain stderr")
setresult(Dict("total" => total, "args" => ARGS, "cwd" => pwd(), "file" => PROGRAM_FILE,
               "flag" => get(ENV, "MY_FLAG", ""), "api" => get(ENV, "PREFECT_API_URL", "")))
"""


@pytest.mark.parametrize("mode", MODES)
def test_same_results_and_logs(
    mode: str, run: Callable[..., Any], program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    path = program("job", JOB)
    with caplog.at_level(logging.DEBUG, logger="prefect_julia.julia"):
        outcome = run(
            mode,
            path,
            {"n": 1},
            MY_FLAG="on",
            PREFECT_JULIA_PASS_ENV="MY_FLAG",
            PREFECT_API_URL="http://127.0.0.1:9/api",
        )
    assert outcome.result == {
        "total": 42,
        "args": ["--n=1"],
        "cwd": os.getcwd(),
        "file": str(path),
        "flag": "on",
        "api": "http://127.0.0.1:9/api",
    }
    records = {(r.levelno, r.getMessage().split(" (@")[0]) for r in caplog.records}
    assert {
        (logging.INFO, "stdout line 42"),
        (logging.INFO, "info record total=42"),
        (logging.WARNING, "warn record"),
        (logging.INFO, "plain stderr"),
    } <= {(level, line) for level, message in records for line in message.split("\n")}
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning == f"warn record (@ Main {path}:7)"
    assert outcome.stdout_tail == "stdout line 42"


FAILURES = [
    ('println(stderr, "bad input"); exit(3)', JuliaFailed, "exited with code 3", "bad input"),
    # an uncaught error is reported by the job itself: the failure is its file:line and message, no stderr tail
    ('x = 1\nerror("boom in job")', JuliaFailed, r"^fails\.jl:2: boom in job$", ""),
    ('write(ENV["PREFECT_JULIA_RESULT_PATH"], "{oops")', JuliaResultError, "not valid JSON", ""),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("code", "error", "message", "tail"), FAILURES, ids=["exit-3", "error", "bad-result"])
def test_same_failures(
    mode: str,
    run: Callable[..., Any],
    program: Program,
    code: str,
    error: type[Exception],
    message: str,
    tail: str,
) -> None:
    with pytest.raises(error, match=message) as info:
        run(mode, program("fails", code))
    assert tail in (getattr(info.value, "stderr_tail", "") or "")
    if mode == "warm" and error is JuliaFailed:  # the session survives a failing job and runs the next one
        assert run(mode, program("ok", "println(1)")).exit_code == 0


# --- warm sessions -------------------------------------------------------------------------------------------

PID = 'using PrefectInterfaces; setresult(Dict("pid" => getpid()))'


def test_jobs_do_not_see_each_others_globals(run: Callable[..., Any], program: Program, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    first = program("first", f'leaked = 1\nENV["LEAKED"] = "1"\ncd("{tmp_path / "elsewhere"}")\n{PID}')
    second = program(
        "second",
        'using PrefectInterfaces\nsetresult(Dict("pid" => getpid(), "global" => @isdefined(leaked), '
        '"env" => haskey(ENV, "LEAKED"), "cwd" => pwd(), "args" => ARGS))',
    )
    pid = run("warm", first).result["pid"]
    seen = run("warm", second, {"a": 1}).result
    assert seen == {"pid": pid, "global": False, "env": False, "cwd": os.getcwd(), "args": ["--a=1"]}


def test_timeout_replaces_the_session(run: Callable[..., Any], program: Program, session_dir: Path) -> None:
    before = run("warm", program("pid", PID)).result["pid"]
    with pytest.raises(JuliaTimeout, match="timeout of 2 s"):
        run("warm", program("stuck", 'println(stderr, "stuck"); sleep(60)'), timeout=2)
    assert wait_gone(before)
    after = run("warm", program("pid", PID)).result["pid"]
    assert after != before and running(after)


def test_crash_fails_only_its_job(run: Callable[..., Any], program: Program) -> None:
    before = run("warm", program("pid", PID)).result["pid"]
    with pytest.raises(JuliaFailed, match="exited with code 1") as info:
        run("warm", program("crash", 'println(stderr, "going down"); ccall(:abort, Cvoid, ())'))
    assert "ended while running this job" in (info.value.stderr_tail or "")
    after = run("warm", program("pid", PID)).result["pid"]
    assert after != before


def test_changed_job_file_is_picked_up(run: Callable[..., Any], program: Program) -> None:
    path = program("edited", 'using PrefectInterfaces; setresult(Dict("v" => 1, "pid" => getpid()))')
    first = run("warm", path).result
    path.write_text('using PrefectInterfaces; setresult(Dict("v" => 2, "pid" => getpid()))')
    assert run("warm", path).result == {"v": 2, "pid": first["pid"]}


def test_changed_project_restarts_the_session(run: Callable[..., Any], program: Program, session_dir: Path) -> None:
    before = run("warm", program("pid", PID)).result["pid"]
    for state in session_dir.glob("slot-*.json"):  # as if the project's files had changed since it started
        data = json.loads(state.read_text())
        state.write_text(json.dumps({**data, "fingerprint": "stale"}))
    after = run("warm", program("pid", PID)).result["pid"]
    assert after != before and wait_gone(before)


def test_fingerprint_follows_project_files(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "Project.toml").write_text("name = 'X'\n")
    (tmp_path / "src" / "X.jl").write_text("module X end\n")
    first = julia_session.project_fingerprint(tmp_path)
    (tmp_path / "src" / "X.jl").write_text("module X\nf() = 1\nend\n")
    assert julia_session.project_fingerprint(tmp_path) != first


def test_two_concurrent_jobs_never_share_a_process(run: Callable[..., Any], program: Program) -> None:
    path = program("slow", 'using PrefectInterfaces; sleep(1.5); setresult(Dict("pid" => getpid()))')
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(run("warm", path).result)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    assert results[0]["pid"] != results[1]["pid"]


def test_bad_session_setting(program: Program) -> None:
    from prefect_julia.core.errors import ConfigError

    with pytest.raises(ConfigError, match="is not one of: fresh, warm"):
        run_julia(
            program("x", ""), env={**os.environ, "PREFECT_JULIA_SESSION": "tepid"}, project=PROJECT, anywhere=True
        )


def test_the_running_line_quotes_each_argument_on_one_line(
    run: Callable[..., Any], program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    path = program("quoted", "")
    with caplog.at_level(logging.INFO, logger="prefect_julia.julia"):
        run("fresh", path, {"note": "two\nlines", "who": "it's me"})
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running Julia program quoted.jl")]
    assert "\n" not in line
    assert line.endswith(f" {path} $'--note=two\\nlines' '--who=it'\"'\"'s me'"), line


# --- a warm session serves its own user, and programs from its folders only ---------------------------------------

CLIENT = """
import json, socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
    conn.connect(sys.argv[1])
    request = {"program": sys.argv[2], "args": [], "env": {}, "cwd": "/"}
    conn.sendall(json.dumps(request).encode() + b"\\n")
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
print(answer.decode(), end="")
"""


def ask_session(sock: str | Path, program: Path, *, user: str | None = None) -> str:
    """The whole answer of a session to a request for ``program``, sent straight to its socket (as ``user``)."""
    python = "/usr/bin/python3" if user else sys.executable
    command = [python, "-c", CLIENT, str(sock), str(program)]
    command = ["runuser", "-u", user, "--", *command] if user else command
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout


def marker_job(program: Program, marker: Path) -> Path:
    return program("marks", f'write("{marker}", "ran")')


def test_a_program_outside_the_session_folders_runs_in_a_fresh_process(
    run: Callable[..., Any], program: Program, session_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="prefect_julia.julia"):
        pid = run("warm", program("pid", PID), PREFECT_JULIA_SESSION_PROGRAMS="").result["pid"]
    assert pid not in session_pids(session_dir)
    expected = f"A warm Julia session runs only programs under {PROJECT / 'jobs'} (PREFECT_JULIA_SESSION_PROGRAMS"
    assert any(r.getMessage().startswith(expected) for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_session_refuses_a_program_outside_its_folders(
    run: Callable[..., Any], program: Program, session_dir: Path, tmp_path: Path
) -> None:
    run("warm", program("pid", PID))
    info = julia_session.sessions(session_dir)[0]
    elsewhere = Path(tempfile.mkdtemp(prefix="pj-outside-"))  # not under pytest's folder, which the module allows
    outside = Path(shutil.copy(marker_job(program, tmp_path / "marker"), elsewhere))
    try:
        answer = ask_session(info.socket, outside)
    finally:
        shutil.rmtree(elsewhere)
    assert answer.startswith(f"2 session refused: the program {outside} is outside the folders this session runs"), (
        answer
    )
    assert "PREFECT_JULIA_SESSION_PROGRAMS" in answer and answer.endswith("x 1\n")
    assert not (tmp_path / "marker").exists()
    assert ask_session(info.socket, marker_job(program, tmp_path / "marker")).endswith("x 0\n")  # inside: it runs
    assert (tmp_path / "marker").read_text() == "ran"


@pytest.fixture
def python_user(other_user: str) -> str:
    """The second local user (conftest's ``other_user``), who connects with the system's python3."""
    if not Path("/usr/bin/python3").is_file():
        pytest.skip("the second user needs a python3 of the system (/usr/bin/python3) to connect with")
    return other_user


def test_a_session_refuses_another_user(
    run: Callable[..., Any], program: Program, session_dir: Path, tmp_path: Path, python_user: str
) -> None:
    """As if the session's socket had been left open to everyone: another user reaches it, and is refused."""
    run("warm", program("pid", PID))
    info = julia_session.sessions(session_dir)[0]
    marker = tmp_path / "marker"
    job = marker_job(program, marker)
    opened = Path(tempfile.mkdtemp(prefix="pj-peer-", dir="/tmp"))
    link = opened / "session.sock"
    mode = os.stat(info.socket).st_mode & 0o777
    try:
        opened.chmod(0o711)
        os.link(info.socket, link)  # the same socket, in a folder the other user may enter
        os.chmod(link, 0o666)
        answer = ask_session(link, job, user=python_user)
        assert (
            answer.startswith("2 session refused: uid ")
            and f"is not this session's user (uid {os.geteuid()})" in answer
        ), answer
        assert answer.endswith("x 1\n") and not marker.exists()
        assert ask_session(link, job).endswith("x 0\n") and marker.read_text() == "ran"  # its own user: it runs
    finally:
        os.chmod(info.socket, mode)
        shutil.rmtree(opened)


# --- no Julia outlives its flow run ----------------------------------------------------------------------------

CHILD = """
using PrefectInterfaces
p = run(pipeline(`setsid sleep 300`), wait=false)
open(io -> print(io, getpid(), " ", getpid(p)), ENV["PIDS_FILE"], "w")
sleep(parse(Int, parseargs()["sleep"]))
"""

RUNNER = """
import os, sys
from pathlib import Path
from prefect_julia.runtime.bridge import run_julia
run_julia(Path(sys.argv[1]), {"sleep": 60}, project=Path(sys.argv[2]), session=sys.argv[3], timeout=120, anywhere=True)
"""


def read_pids(path: Path, seconds: float = 120) -> tuple[int, int]:

    def written() -> list[str]:
        text = path.read_text() if path.exists() else ""
        return text.split() if len(text.split()) == 2 else []

    julia, child = eventually(written, seconds, f"the job to write two pids to {path}")
    return int(julia), int(child)


@pytest.mark.parametrize("mode", MODES)
def test_no_julia_survives_a_killed_flow_run(
    mode: str, program: Program, session_dir: Path, programs: str, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    path = program("child", CHILD)
    env = {**os.environ, "PIDS_FILE": str(pids_file), "PREFECT_JULIA_PASS_ENV": "PIDS_FILE"}
    env.update(PREFECT_JULIA_SESSION_DIR=str(session_dir), PREFECT_JULIA_SESSION_PROGRAMS=programs)
    env.pop("PREFECT_HOME", None)
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(path), str(PROJECT), mode], env=env)
    julia = child = 0
    try:
        julia, child = read_pids(pids_file)
        time.sleep(1.0)  # a sweep sees the child that left the process group
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        assert wait_gone(julia), f"julia {julia} outlived its killed flow-run process"
    finally:
        runner.kill()
        runner.wait()
        for pid in (julia, child):
            if pid and running(pid):
                os.kill(pid, signal.SIGKILL)
    assert julia not in session_pids(session_dir)


def test_children_that_left_the_group_are_swept(run: Callable[..., Any], program: Program, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    run("fresh", program("child", CHILD), {"sleep": 2}, PIDS_FILE=str(pids_file), PREFECT_JULIA_PASS_ENV="PIDS_FILE")
    _julia, child = read_pids(pids_file, 1)
    assert wait_gone(child, 5), f"the setsid child {child} outlived its job"


# --- large output ---------------------------------------------------------------------------------------------


def test_large_output_is_batched_capped_and_kept(
    run: Callable[..., Any], program: Program, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = program("loud", 'for i in 1:50_000\n    println("line ", i, " ", "x"^40)\nend\n@warn "done"')
    with caplog.at_level(logging.INFO, logger="prefect_julia.julia"):
        run("fresh", path, PREFECT_JULIA_LOG_CAP_BYTES="200000", PREFECT_HOME=str(tmp_path / "home"))
    records = [r for r in caplog.records if r.name == "prefect_julia.julia"]
    assert len(records) < 40, f"{len(records)} log records for 50,000 lines"
    sent = sum(len(r.getMessage()) for r in records if r.getMessage().startswith("line "))
    assert 0 < sent <= 200_000
    kept = next(r.getMessage() for r in records if "The full output is in" in r.getMessage())
    full = Path(kept.rsplit(" ", 1)[1])
    assert full.parent == tmp_path / "home" / "julia-output"
    lines = full.read_text().splitlines()
    assert len(lines) == 50_001 and lines[-2].startswith("line 50000 ")


def test_a_log_record_is_never_batched_with_plain_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.sink.records")
    with caplog.at_level(logging.INFO, logger=log.name), OutputSink(log, tmp_path / "out.log") as sink:
        sink.line("plain 1")
        sink.line("i1", stderr=True, record=True)  # an @info record of the job
        sink.line("plain 2")  # printed right after it, read before the batch was sent
        sink.line("plain 3")
    assert [r.getMessage() for r in caplog.records] == ["plain 1", "i1", "plain 2\nplain 3"]


def test_small_output_leaves_no_file(tmp_path: Path) -> None:
    log = logging.getLogger("test.sink")
    with OutputSink(log, tmp_path / "out.log") as sink:
        sink.line("one")
    assert not (tmp_path / "out.log").exists()


# --- the kit owns its sessions --------------------------------------------------------------------------------


def test_worker_status_lists_and_worker_down_stops_sessions(kit_repo: Any, program: Program) -> None:
    from prefect_julia.kit.julia import sessions

    env = kit_repo.environment("dev")
    environ = {**env.process_env(os.environ), "PREFECT_JULIA_SESSION_PROGRAMS": str(program("pid", PID).parent)}
    pid = run_julia(
        program("pid", PID), env=environ, project=PROJECT, session="warm", timeout=120, anywhere=True
    ).result["pid"]
    assert sessions.running(env) == [pid]
    assert sessions.folder(env) == env.home / "julia-sessions"
    status = kit_repo.invoke("worker-status", timeout=120)
    assert status.returncode == 0 and str(pid) in status.stdout, status.stdout + status.stderr
    down = kit_repo.invoke("worker-down", "--env", "dev", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert wait_gone(pid) and sessions.running(env) == []


def test_a_session_folder_too_deep_for_a_socket_still_serves(program: Program, tmp_path: Path) -> None:
    """A checkout deep enough that ``<folder>/slot-0.sock`` passes the Unix socket limit (about 107 bytes): the
    session listens on a short stand-in in a private folder of this user, and jobs still reach it."""
    from prefect_julia.core.files import MAX_SOCKET_PATH, socket_path

    deep = tmp_path / ("d" * 60) / ("e" * 60) / "sessions"
    wanted = deep / "slot-0.sock"
    assert len(str(wanted)) > MAX_SOCKET_PATH
    stand_in = socket_path(wanted)
    assert len(str(stand_in)) <= MAX_SOCKET_PATH and stand_in == socket_path(wanted)
    assert os.stat(stand_in.parent).st_mode & 0o077 == 0
    environ = {k: v for k, v in os.environ.items() if k != "PREFECT_HOME"}
    environ.update(PREFECT_JULIA_SESSION_DIR=str(deep), PREFECT_JULIA_SESSION_PROGRAMS=str(tmp_path))
    try:
        first = run_julia(
            program("deep", PID), env=environ, project=PROJECT, session="warm", timeout=120, anywhere=True
        )
        again = run_julia(
            program("deep", PID), env=environ, project=PROJECT, session="warm", timeout=120, anywhere=True
        )
        assert first.result["pid"] == again.result["pid"] == session_pids(deep)[0]  # one session, reached twice
        assert [info.socket for info in julia_session.sessions(deep)] == [str(stand_in)]
        assert stand_in.exists()
    finally:
        julia_session.stop_sessions(deep, grace=2)
    assert not stand_in.exists()  # stopping the session removes its stand-in socket too
