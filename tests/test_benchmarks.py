"""The benchmarks' reporting (benchmarks/bench_report.py): medians, kit / raw ratios against a target, the load
line, and the newest passed gate's time as `invoke bench` prints it. No server is started here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = _load("bench_report")


@pytest.mark.parametrize(
    ("kit", "raw", "target", "shown"),
    [
        (6.2, 5.7, 1.10, "1.088   (target <= 1.1: met)"),
        (7.3, 5.7, 1.10, "1.281   (target <= 1.1: MISSED)"),
        (3.0, 0.0, None, "inf"),
    ],
)
def test_a_ratio_line_shows_kit_over_raw_and_the_targets_verdict(
    kit: float, raw: float, target: float | None, shown: str
) -> None:
    line = report.ratio_line("ratio kit / raw", kit, raw, target)
    assert line.startswith("  ratio kit / raw")
    assert line.endswith(shown)


def test_medians_verdicts_and_rounds_read_as_printed() -> None:
    assert report.median([5.0, 9.0, 6.0]) == 6.0
    assert report.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert report.verdict(31.4, 30.0, at_most=False) == "met"
    assert report.verdict(29.0, 30.0, at_most=False) == "MISSED"
    assert report.each([1.234, 5.0]) == "1.2, 5.0"


def test_the_load_line_names_the_load_and_the_cores() -> None:
    assert report.load_line(lambda: (1.5, 2.25, 3.0), cores=2) == "load average 1.50 2.25 3.00 on 2 cores"


def _record(folder: Path, name: str, body: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(body))


def test_bench_prints_the_newest_gates_time_per_step(tmp_path: Path) -> None:
    _record(tmp_path, "a", {"tree": "1" * 40, "at": 100.0, "tests": "800 passed in 500.0s"})
    _record(
        tmp_path, "b", {"tree": "2" * 40, "at": 200.0, "tests": "873 passed", "steps": {"lint": 2.0, "tests": 400.5}}
    )
    (tmp_path / "c").write_text("not json")  # a damaged record is passed over
    lines = report.gate_lines(report.newest_gate(tmp_path), lambda at: f"t={at:.0f}")
    assert lines[0] == "  newest passed gate: tree 2222222222 at t=200"
    assert any(line.startswith("  lint") and line.endswith("2.0 s") for line in lines)
    assert lines[-1].startswith("  whole gate") and lines[-1].endswith("402.5 s")


def test_an_older_record_without_steps_shows_the_tests_closing_line(tmp_path: Path) -> None:
    _record(tmp_path, "a", {"tree": "1" * 40, "at": 100.0, "tests": "800 passed in 500.0s"})
    lines = report.gate_lines(report.newest_gate(tmp_path), str)
    assert "800 passed in 500.0s" in lines[-1]


def test_without_a_record_bench_says_which_command_records_one(tmp_path: Path) -> None:
    assert report.newest_gate(tmp_path / "missing") is None
    (line,) = report.gate_lines(None, str)
    assert "no passed gate is recorded" in line and "`invoke gate`" in line


def test_a_passed_gate_records_each_steps_time_and_bench_reads_it(tmp_path: Path) -> None:
    import io
    import subprocess

    from prefect_julia.gates import passes
    from prefect_julia.gates.gate import Step

    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    (root / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "a"], cwd=root, check=True)
    steps = [
        Step("first", "a check that passes", check=lambda _root: []),
        Step("second", "another", check=lambda _r: []),
    ]

    verdict = passes.gate_once(root, steps, out=io.StringIO())

    assert verdict.ok and verdict.report is not None
    record = report.newest_gate(passes.records_dir(root))
    assert record is not None and set(record["steps"]) == {"first", "second"}
    lines = report.gate_lines(record, str)
    assert any(line.startswith("  first") for line in lines) and lines[-1].startswith("  whole gate")
