"""The gate runner on a temporary repository with small real steps (never the project's own full gate)."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitrepos import commit_file, git_env, make_repo
from prefect_julia.core.errors import GateFailed
from prefect_julia.gates import passes
from prefect_julia.gates.gate import STEP_NAMES, Step, default_steps, gate_env, require_passed, run_gate

PY = sys.executable
GIT_ENV = git_env()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    (root / "good.py").write_text('"""Fine."""\n\nVALUE = 1\n')
    (root / "bad.py").write_text('"""Unused import."""\n\nimport os\n')
    (root / "test_sample.py").write_text(
        "def test_ok():\n    assert 1 + 1 == 2\n\n\ndef test_broken():\n    assert 1 + 1 == 3\n"
    )
    return root


def ruff_step(*files: str) -> Step:
    return Step("lint", "ruff on " + " ".join(files), command=[PY, "-m", "ruff", "check", "--no-cache", *files])


def pytest_step(selector: str) -> Step:
    return Step("tests", "pytest " + selector, command=[PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", selector])


def test_all_passing_steps_pass(repo: Path) -> None:
    out = io.StringIO()
    report = run_gate(repo, [ruff_step("good.py"), pytest_step("test_sample.py::test_ok")], out=out)
    assert report.ok and report.failed == []
    assert [r.name for r in report.results] == ["lint", "tests"]
    assert "1 passed" in out.getvalue()  # command output is streamed
    assert report.table().splitlines()[-1] == "gate: passed"


def test_the_first_failure_ends_the_gate(repo: Path) -> None:
    out = io.StringIO()
    report = run_gate(repo, [ruff_step("bad.py"), pytest_step("test_sample.py::test_ok")], out=out)
    assert report.failed == ["lint"] and not report.ok
    tests = report.results[1]
    assert tests.not_run and tests.skipped and not tests.passed
    assert "1 passed" not in out.getvalue() and "==> tests: not run" in out.getvalue()
    assert "not run" in report.table().splitlines()[3]
    assert report.table().splitlines()[-1] == "gate: FAILED (lint)"


def test_keep_going_runs_every_step_after_failures(repo: Path) -> None:
    problems = Step("declarations", "declaration check", check=lambda root: [f"{root.name}: flow 'nope' not found"])
    out = io.StringIO()
    report = run_gate(
        repo,
        [ruff_step("bad.py"), pytest_step("test_sample.py"), ruff_step("good.py"), problems],
        keep_going=True,
        out=out,
    )
    assert not report.ok
    assert report.failed == ["lint", "tests", "declarations"]
    lint_result, test_result, good_result, decl_result = report.results
    assert any("F401" in line for line in lint_result.detail)  # the tail of ruff's output is kept
    assert any("1 failed, 1 passed" in line for line in test_result.detail)
    assert test_result.detail[-1] == "(exit code 1)"
    assert good_result.passed
    assert decl_result.detail == ["repo: flow 'nope' not found"]
    table = report.table()
    assert "FAILED" in table.splitlines()[2] and "passed" in table.splitlines()[4]
    assert table.splitlines()[-1] == "gate: FAILED (lint, tests, declarations)"
    with pytest.raises(GateFailed, match=r"The gate failed on dev: lint, tests, declarations\.") as caught:
        require_passed(report, where="dev")
    assert caught.value.exit_code != 0 and "just gate" in str(caught.value)


def test_skipped_steps_are_listed_but_do_not_run(repo: Path) -> None:
    out = io.StringIO()
    report = run_gate(repo, [ruff_step("good.py"), pytest_step("test_sample.py")], skip=["tests"], out=out)
    assert report.ok
    assert [(r.name, r.skipped) for r in report.results] == [("lint", False), ("tests", True)]
    assert "tests: skipped" in out.getvalue() and "skipped" in report.table()


def test_unknown_step_to_skip_is_refused(repo: Path) -> None:
    with pytest.raises(GateFailed, match="Unknown gate step"):
        run_gate(repo, [ruff_step("good.py")], skip=["lnt"], out=io.StringIO())


def test_missing_program_is_a_failed_step_not_a_crash(repo: Path) -> None:
    step = Step("tool", "a program that is not installed", command=["no-such-program-here"])
    report = run_gate(repo, [step], out=io.StringIO())
    assert report.failed == ["tool"]
    assert "Could not start" in report.results[0].detail[0]


def test_step_needs_exactly_one_action() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Step("both", "x", command=["true"], check=lambda root: [])


def test_default_steps_are_the_gates_cheapest_first() -> None:
    steps = default_steps()
    assert tuple(s.name for s in steps) == STEP_NAMES == ("layers", "declarations", "hooks", "types", "tests")
    assert steps[0].check is not None and steps[1].check is not None
    assert steps[2].command is not None and "--all-files" in steps[2].command and steps[2].changes_files
    assert steps[4].command is not None and steps[4].command[-5:] == [
        "--dist",
        "loadfile",
        "--no-loadscope-reorder",
        "-m",
        "not slow",
    ]


def test_pj_gate_tests_narrows_the_test_selection() -> None:
    tests = default_steps({"PJ_GATE_TESTS": "tests/test_gate.py -k 'first failure'"})[4]
    assert tests.command is not None and tests.command[-3:] == ["tests/test_gate.py", "-k", "first failure"]


def test_files_the_hooks_rewrite_are_named_and_left_as_rewritten(repo: Path) -> None:
    commit_file(repo, "good.py", '"""Fine."""\n\nVALUE = 1\n', "a good module")
    rewrite = "import pathlib, sys; pathlib.Path('good.py').write_text('VALUE = 2\\n'); sys.exit(1)"
    hooks = Step("hooks", "a formatter", command=[PY, "-c", rewrite], changes_files=True)
    out = io.StringIO()
    report = run_gate(repo, [hooks, ruff_step("good.py")], out=out)
    assert report.failed == ["hooks"] and report.changed_files == ["good.py"]
    note = "hooks changed files: good.py; review and commit them"
    assert note in out.getvalue() and note in report.table()
    assert (repo / "good.py").read_text() == "VALUE = 2\n"  # the tree stays as the hooks left it


def test_a_passed_tree_is_gated_once(repo: Path) -> None:
    for name in ("good.py", "bad.py", "test_sample.py"):
        (repo / name).unlink()
    ran: list[str] = []
    counting = Step("count", "counts its runs", check=lambda root: ran.append("ran") or [])

    first = passes.gate_once(repo, [counting], env=GIT_ENV, out=io.StringIO())
    assert first.ok and first.report is not None and first.key is not None and ran == ["ran"]
    record = passes.records_dir(repo, GIT_ENV) / first.key.digest
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and stat.S_IMODE(record.parent.stat().st_mode) == 0o700

    out = io.StringIO()
    second = passes.gate_once(repo, [counting], label="main's tree", env=GIT_ENV, out=out)
    assert second.ok and second.report is None and ran == ["ran"]
    assert f"main's tree {first.key.tree[:10]} passed the gate at " in out.getvalue()
    assert out.getvalue().rstrip().endswith(": not gated again")

    forced = passes.gate_once(repo, [counting], force=True, env=GIT_ENV, out=io.StringIO())
    assert forced.report is not None and ran == ["ran", "ran"]


def test_a_dirty_tree_is_always_gated_and_never_recorded(repo: Path) -> None:
    ran: list[str] = []
    counting = Step("count", "counts its runs", check=lambda root: ran.append("ran") or [])
    out = io.StringIO()
    for _ in range(2):
        verdict = passes.gate_once(repo, [counting], env=GIT_ENV, out=out)
        assert verdict.ok and verdict.key is None
    assert ran == ["ran", "ran"] and "gated, and the result not recorded" in out.getvalue()
    assert not passes.records_dir(repo, GIT_ENV).exists()


def test_the_gate_key_changes_with_the_tree_and_the_tools(repo: Path) -> None:
    for name in ("good.py", "bad.py", "test_sample.py"):
        (repo / name).unlink()
    key = passes.tree_key(repo, GIT_ENV)
    assert key is not None and dict(key.tools).keys() == {"python", "prefect", "julia", "constraints"}
    (repo / "constraints.txt").write_text("prefect==3.8.8\n")
    assert passes.tree_key(repo, GIT_ENV) is None  # untracked file: dirty
    commit_file(repo, "constraints.txt", "prefect==3.8.8\n", "pins")
    moved = passes.tree_key(repo, GIT_ENV)
    assert moved is not None and moved.tree != key.tree and moved.digest != key.digest
    assert dict(moved.tools)["constraints"] != dict(key.tools)["constraints"]


def test_gate_env_drops_git_hook_variables_and_finds_project_tools() -> None:
    env = gate_env({"PATH": "/usr/bin", "GIT_DIR": "/elsewhere/.git", "GIT_INDEX_FILE": "x", "HOME": "/h"})
    assert "GIT_DIR" not in env and "GIT_INDEX_FILE" not in env and env["HOME"] == "/h"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_the_gate_runs_the_small_load_test_and_bench_tests_the_full_size() -> None:
    from prefect_julia.gates.gate import GATE_MARKERS

    repo_root = Path(__file__).resolve().parents[1]

    def collected(marker: str) -> list[str]:
        argv = [PY, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", marker]
        done = subprocess.run([*argv, "tests/test_run_client.py"], cwd=repo_root, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return [line for line in done.stdout.splitlines() if "burst_of_runs" in line]

    assert collected(GATE_MARKERS) == [
        "tests/test_run_client.py::test_a_burst_of_runs_submitted_at_once_all_complete[8]"
    ]
    assert collected("slow") == ["tests/test_run_client.py::test_a_burst_of_runs_submitted_at_once_all_complete[50]"]
