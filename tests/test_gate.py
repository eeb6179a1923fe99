"""The gate runner on a temporary repository with small real steps (never the project's own full gate)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from gitrepos import make_repo
from prefect_julia.core.errors import GateFailed
from prefect_julia.gates.gate import STEP_NAMES, Step, default_steps, gate_env, require_passed, run_gate

PY = sys.executable


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


def test_failing_lint_and_test_fail_the_gate_and_every_step_still_runs(repo: Path) -> None:
    problems = Step("declarations", "declaration check", check=lambda root: [f"{root.name}: flow 'nope' not found"])
    out = io.StringIO()
    report = run_gate(
        repo, [ruff_step("bad.py"), pytest_step("test_sample.py"), ruff_step("good.py"), problems], out=out
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


def test_default_steps_are_the_gates_in_order() -> None:
    steps = default_steps()
    assert tuple(s.name for s in steps) == STEP_NAMES == ("hooks", "types", "layers", "tests", "declarations")
    assert steps[0].command is not None and "--all-files" in steps[0].command
    assert steps[2].check is not None and steps[4].check is not None


def test_gate_env_drops_git_hook_variables_and_finds_project_tools() -> None:
    env = gate_env({"PATH": "/usr/bin", "GIT_DIR": "/elsewhere/.git", "GIT_INDEX_FILE": "x", "HOME": "/h"})
    assert "GIT_DIR" not in env and "GIT_INDEX_FILE" not in env and env["HOME"] == "/h"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
