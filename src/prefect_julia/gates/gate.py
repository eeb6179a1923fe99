"""The one gate: ordered steps (hooks, types, layers, tests, declarations), a runner, and one summary table.

A step is a name plus either a command (run in the repository root, its output streamed and its tail kept)
or a callable that takes the root and returns a list of problems (empty = passed). The runner runs every
step, even after a failure, so the table shows the whole picture; ``GateReport.ok`` says whether all passed.
"""

from __future__ import annotations

import collections
import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from prefect_julia.core.console import table
from prefect_julia.core.errors import GateFailed, PrefectJuliaError
from prefect_julia.core.gitrepo import clean_env
from prefect_julia.core.processes import owned, spawn

__all__ = [
    "STEP_NAMES",
    "GateReport",
    "Step",
    "StepResult",
    "check_declarations",
    "check_layers",
    "default_steps",
    "gate_env",
    "require_passed",
    "run_gate",
]

STEP_NAMES = ("hooks", "types", "layers", "tests", "declarations")
_TAIL_LINES = 25
#: pytest processes of the gate's tests step (pytest-xdist, one test module per process at a time): most tests
#: wait on servers, workers and julia, so two share two cores well; more than four would only add servers.
TEST_WORKERS = max(2, min(4, os.cpu_count() or 2))


@dataclass(frozen=True)
class Step:
    """One gate step: a ``command`` (argv run in the root) or a ``check`` (root -> problems)."""

    name: str
    description: str
    command: Sequence[str] | None = None
    check: Callable[[Path], list[str]] | None = None

    def __post_init__(self) -> None:
        if (self.command is None) == (self.check is None):
            raise ValueError(f"Gate step {self.name!r} needs exactly one of command= or check=.")


@dataclass(frozen=True)
class StepResult:
    """What one step did: passed or not, how long it took, and the tail of its output or its problems."""

    name: str
    description: str
    passed: bool
    seconds: float
    detail: list[str] = field(default_factory=list)
    skipped: bool = False


@dataclass(frozen=True)
class GateReport:
    """The results of one gate run, in step order."""

    root: Path
    results: list[StepResult]

    @property
    def ok(self) -> bool:
        """True when no step failed (skipped steps do not fail the gate)."""
        return all(r.passed or r.skipped for r in self.results)

    @property
    def failed(self) -> list[str]:
        """Names of the steps that failed."""
        return [r.name for r in self.results if not (r.passed or r.skipped)]

    def test_summary(self) -> str | None:
        """pytest's closing line (e.g. ``250 passed in 300.0s``) when the tests step ran, else None."""
        for result in self.results:
            if result.name == "tests" and not result.skipped:
                for line in reversed(result.detail):
                    if re.search(r"\d+ (passed|failed|errors?)\b.* in [\d.]+s", line):
                        return line.strip()
        return None

    def table(self) -> str:
        """A plain-text summary table: one row per step, then the verdict."""
        rows = []
        for r in self.results:
            verdict = "skipped" if r.skipped else ("passed" if r.passed else "FAILED")
            rows.append((r.name, verdict, "-" if r.skipped else f"{r.seconds:.1f}s", r.description))
        verdict = "gate: passed" if self.ok else f"gate: FAILED ({', '.join(self.failed)})"
        return table(["step", "result", "time", "what"], rows) + "\n" + verdict


def gate_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the gate's commands run in.

    Git's hook variables are removed (so tests that build their own repositories are not redirected), and
    the running interpreter's ``bin`` folder comes first on PATH so the project's tools are found even when
    the virtual environment was not activated.
    """
    env = clean_env(environ)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join([bindir, path]) if path else bindir
    return env


def check_declarations(root: Path) -> list[str]:
    """Problems in the deployment, limit, block and notification declarations, found without a server (empty = valid)."""
    try:
        check: Callable[[Path], list[str]] = importlib.import_module("prefect_julia.gates.declarations").check
    except ModuleNotFoundError as error:
        return [f"The declaration checker prefect_julia.gates.declarations is missing ({error}); restore the module."]
    except (ImportError, AttributeError) as error:
        return [f"The declaration checker could not be loaded ({error}); fix prefect_julia/gates/declarations.py."]
    try:
        return list(check(root))
    except PrefectJuliaError as error:
        return [str(error)]


def check_layers(root: Path) -> list[str]:
    """Imports that cross the package's layers the wrong way (empty = none)."""
    from prefect_julia.gates import layers

    return layers.check(root)


def default_steps() -> list[Step]:
    """The full gate, in order: pre-commit hooks, type check, pytest (with the Julia suite), declarations."""
    python = sys.executable
    return [
        Step(
            "hooks",
            "pre-commit hooks on all files",
            command=[python, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"],
        ),
        Step("types", "mypy (strict) on the package", command=[python, "-m", "mypy"]),
        Step("layers", "imports respect the package's layers", check=check_layers),
        Step(
            "tests",
            "pytest suite, Julia suite included",
            command=[python, "-m", "pytest", "-q", "--durations=15", "-n", str(TEST_WORKERS), "--dist", "loadfile"],
        ),
        Step(
            "declarations", "deployments, limits, blocks and notifications declared validly", check=check_declarations
        ),
    ]


def _run_command(step: Step, root: Path, env: Mapping[str, str], out: TextIO) -> tuple[bool, list[str]]:
    assert step.command is not None
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = spawn(step.command, env=env, cwd=root, stderr=subprocess.STDOUT, text=True)
    except OSError as error:
        return False, [f"Could not start {step.command[0]!r}: {error}. Is it installed in this environment?"]
    assert proc.stdout is not None
    with owned(proc), proc.stdout:  # Ctrl-C or an error: the step's whole process tree stops too
        for line in proc.stdout:
            out.write(line)
            tail.append(line.rstrip("\n"))
        code = proc.wait()
    if code != 0:
        tail.append(f"(exit code {code})")
    return code == 0, list(tail)


def _run_check(step: Step, root: Path, out: TextIO) -> tuple[bool, list[str]]:
    assert step.check is not None
    try:
        problems = list(step.check(root))
    except PrefectJuliaError as error:
        problems = [str(error)]
    for problem in problems:
        out.write(f"  - {problem}\n")
    return not problems, problems


def run_gate(
    root: Path,
    steps: Sequence[Step] | None = None,
    *,
    skip: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> GateReport:
    """Run ``steps`` (default: ``default_steps()``) in ``root``, in order, and return the report.

    Every step runs even when an earlier one failed. Steps named in ``skip`` are listed as skipped. Command
    output is streamed to ``out`` (default: stdout); nothing is raised for a failing step.
    """
    stream = sys.stdout if out is None else out
    chosen = default_steps() if steps is None else list(steps)
    known = {s.name for s in chosen}
    unknown = sorted(set(skip) - known)
    if unknown:
        raise GateFailed(
            f"Unknown gate step(s) to skip: {', '.join(unknown)}.",
            hint=f"Choose among: {', '.join(s.name for s in chosen)}.",
        )
    run_env = gate_env(os.environ if env is None else env)
    results: list[StepResult] = []
    for step in chosen:
        if step.name in skip:
            results.append(StepResult(step.name, step.description, False, 0.0, skipped=True))
            stream.write(f"==> {step.name}: skipped\n")
            continue
        stream.write(f"==> {step.name}: {step.description}\n")
        stream.flush()
        started = time.monotonic()
        if step.command is not None:
            passed, detail = _run_command(step, root, run_env, stream)
        else:
            passed, detail = _run_check(step, root, stream)
        seconds = time.monotonic() - started
        results.append(StepResult(step.name, step.description, passed, seconds, detail))
        stream.write(f"<== {step.name}: {'passed' if passed else 'FAILED'} ({seconds:.1f}s)\n")
        stream.flush()
    return GateReport(root=root, results=results)


def require_passed(report: GateReport, *, where: str = "") -> None:
    """Raise ``GateFailed`` naming the failed steps when ``report`` did not pass."""
    if report.ok:
        return
    place = f" on {where}" if where else ""
    raise GateFailed(
        f"The gate failed{place}: {', '.join(report.failed)}.",
        hint="Read the output of the failed steps above, fix them, and run `just gate` again.",
    )
