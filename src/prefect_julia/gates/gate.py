"""The one gate: ordered steps (layers, declarations, hooks, types, tests), a runner, and one summary table.

A step is a name plus either a command (run in the repository root, its output streamed and its tail kept)
or a callable that takes the root and returns a list of problems (empty = passed). Steps run cheapest first
and the first failure ends the gate (a lint error is reported in seconds, not after the test suite);
``keep_going`` runs them all. ``GateReport.ok`` says whether all that ran passed. A step that may rewrite
files (the hooks) is watched: the files it changed are named and left as it left them.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from prefect_julia.core import gitrepo
from prefect_julia.core.console import table
from prefect_julia.core.errors import GateFailed, PrefectJuliaError
from prefect_julia.core.gitrepo import clean_env
from prefect_julia.core.processes import owned, spawn
from prefect_julia.gates import runmark

__all__ = [
    "GATE_MARKERS",
    "STEP_NAMES",
    "TESTS_VARIABLE",
    "GateReport",
    "Step",
    "StepResult",
    "changed_files_note",
    "check_declarations",
    "check_layers",
    "default_steps",
    "gate_env",
    "pytest_command",
    "require_passed",
    "run_gate",
    "run_slow_tests",
]

STEP_NAMES = ("layers", "declarations", "hooks", "types", "tests")
_TAIL_LINES = 25
#: Shell words that replace pytest's selection in the tests step (``PJ_GATE_TESTS="tests/test_gate.py"``).
TESTS_VARIABLE = "PJ_GATE_TESTS"
#: Seconds an interrupted step's processes get to finish (pytest's teardowns stop the servers they started)
#: before everything carrying the run's mark is stopped.
INTERRUPT_GRACE = 10.0
#: pytest's selection of the gate: every test but the full-size load and fault tests (``invoke bench-tests``).
GATE_MARKERS = "not slow"

#: pytest processes of the gate's tests step (pytest-xdist, one test module per process at a time): most tests
#: wait on servers, workers and julia, so two share two cores well; more than four would only add servers.
TEST_WORKERS = max(2, min(4, os.cpu_count() or 2))


@dataclass(frozen=True)
class Step:
    """One gate step: a ``command`` (argv run in the root) or a ``check`` (root -> problems).

    ``changes_files``: the step may rewrite files (formatters); the files it changed are reported.
    """

    name: str
    description: str
    command: Sequence[str] | None = None
    check: Callable[[Path], list[str]] | None = None
    changes_files: bool = False

    def __post_init__(self) -> None:
        if (self.command is None) == (self.check is None):
            raise ValueError(f"Gate step {self.name!r} needs exactly one of command= or check=.")


@dataclass(frozen=True)
class StepResult:
    """What one step did: passed or not, how long it took, and the tail of its output or its problems.

    ``skipped``: it did not run, because it was asked to be skipped or (``not_run``) an earlier step failed.
    ``changed``: the files it rewrote.
    """

    name: str
    description: str
    passed: bool
    seconds: float
    detail: list[str] = field(default_factory=list)
    skipped: bool = False
    not_run: bool = False
    changed: list[str] = field(default_factory=list)


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

    @property
    def changed_files(self) -> list[str]:
        """Files the steps rewrote (the hooks' formatters), left as they left them."""
        return sorted({path for r in self.results for path in r.changed})

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
            verdict = "not run" if r.not_run else "skipped" if r.skipped else ("passed" if r.passed else "FAILED")
            rows.append((r.name, verdict, "-" if r.skipped else f"{r.seconds:.1f}s", r.description))
        verdict = "gate: passed" if self.ok else f"gate: FAILED ({', '.join(self.failed)})"
        notes = [changed_files_note(r.name, r.changed) for r in self.results if r.changed]
        return "\n".join([table(["step", "result", "time", "what"], rows), *notes, verdict])


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


def pytest_command(workers: int = TEST_WORKERS) -> list[str]:
    """pytest as the gate runs it: quiet, the slowest tests named, one test module per process at a time, in the
    order tests/conftest.py gives (the slowest modules first; xdist would otherwise start the ones with most tests)."""
    return [
        *(sys.executable, "-m", "pytest", "-q", "--durations=15"),
        *("-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"),
    ]


def default_steps(environ: Mapping[str, str] | None = None) -> list[Step]:
    """The full gate, cheapest step first: layers, declarations, pre-commit hooks, mypy, pytest (Julia suite too).

    ``PJ_GATE_TESTS`` in ``environ`` (shell words) replaces pytest's selection, e.g. ``tests/test_gate.py -n 0``.
    """
    python = sys.executable
    selection = shlex.split((environ or {}).get(TESTS_VARIABLE, ""))
    pytest = [*pytest_command(), "-m", GATE_MARKERS]
    return [
        Step("layers", "imports respect the package's layers", check=check_layers),
        Step(
            "declarations", "deployments, limits, blocks and notifications declared validly", check=check_declarations
        ),
        Step(
            "hooks",
            "pre-commit hooks on all files",
            command=[python, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"],
            changes_files=True,
        ),
        Step("types", "mypy (strict) on the package", command=[python, "-m", "mypy"]),
        Step(
            "tests",
            "pytest suite, Julia suite included",
            command=[*pytest, *selection],
        ),
    ]


def _drain(stream: IO[str], out: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            out.write(line)


def _run_command(step: Step, root: Path, env: Mapping[str, str], out: TextIO) -> tuple[bool, list[str]]:
    assert step.command is not None
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = spawn(step.command, env=env, cwd=root, stderr=subprocess.STDOUT, text=True)
    except OSError as error:
        return False, [f"Could not start {step.command[0]!r}: {error}. Is it installed in this environment?"]
    assert proc.stdout is not None
    with owned(proc), proc.stdout:  # an error or an interrupt: the step's whole process tree stops too
        try:
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip("\n"))
            code = proc.wait()
        except KeyboardInterrupt:
            _interrupt(step, proc, out)
            raise
    if code != 0:
        tail.append(f"(exit code {code})")
    return code == 0, list(tail)


def _interrupt(step: Step, proc: subprocess.Popen[str], out: TextIO) -> None:
    """Ctrl-C the step's process group (pytest then runs its teardowns) and wait up to the grace period."""
    out.write(f"\ninterrupted: stopping {step.name} (Ctrl-C to its processes, {INTERRUPT_GRACE:.0f} s to finish)\n")
    out.flush()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGINT)
    assert proc.stdout is not None
    threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True).start()  # a full pipe would block it
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=INTERRUPT_GRACE)


def _run_check(step: Step, root: Path, out: TextIO) -> tuple[bool, list[str]]:
    assert step.check is not None
    try:
        problems = list(step.check(root))
    except PrefectJuliaError as error:
        problems = [str(error)]
    for problem in problems:
        out.write(f"  - {problem}\n")
    return not problems, problems


def _snapshot(root: Path, env: Mapping[str, str]) -> dict[str, str] | None:
    """Changed and untracked paths with a hash of their content; None outside a git checkout."""
    try:
        listing = gitrepo.git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--no-renames", env=env)
    except PrefectJuliaError:
        return None
    found = {}
    for entry in filter(None, listing.split("\0")):
        path = root / entry[3:]
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"
        found[entry[3:]] = digest
    return found


def _run_step(step: Step, root: Path, env: Mapping[str, str], out: TextIO) -> StepResult:
    out.write(f"==> {step.name}: {step.description}\n")
    out.flush()
    before = _snapshot(root, env) if step.changes_files else None
    started = time.monotonic()
    if step.command is not None:
        passed, detail = _run_command(step, root, env, out)
    else:
        passed, detail = _run_check(step, root, out)
    seconds = time.monotonic() - started
    changed: list[str] = []
    after = _snapshot(root, env) if before is not None else None
    if before is not None and after is not None:
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        detail.append(changed_files_note(step.name, changed))
        out.write(detail[-1] + "\n")
    out.write(f"<== {step.name}: {'passed' if passed else 'FAILED'} ({seconds:.1f}s)\n")
    out.flush()
    return StepResult(step.name, step.description, passed, seconds, detail, changed=changed)


def changed_files_note(step: str, changed: Sequence[str]) -> str:
    """What a person reads when a step rewrote files: they are left as the step left them."""
    shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
    return f"{step} changed files: {shown}; review and commit them"


def run_gate(
    root: Path,
    steps: Sequence[Step] | None = None,
    *,
    skip: Sequence[str] = (),
    keep_going: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> GateReport:
    """Run ``steps`` (default: ``default_steps()``) in ``root``, in order, and return the report.

    The first failing step ends the gate; the steps after it are listed as not run (``keep_going`` runs them
    all). Steps named in ``skip`` are listed as skipped. Command output is streamed to ``out`` (default:
    stdout); nothing is raised for a failing step. Every process the steps start carries this run's mark
    (``gates/runmark.py``): whatever is left of them when the gate ends, or is interrupted (Ctrl-C, SIGTERM:
    ``KeyboardInterrupt`` is raised on), is stopped.
    """
    stream = sys.stdout if out is None else out
    base_env = os.environ if env is None else env
    chosen = default_steps(base_env) if steps is None else list(steps)
    known = {s.name for s in chosen}
    unknown = sorted(set(skip) - known)
    if unknown:
        raise GateFailed(
            f"Unknown gate step(s) to skip: {', '.join(unknown)}.",
            hint=f"Choose among: {', '.join(s.name for s in chosen)}.",
        )
    mark = runmark.new_mark(base_env)
    run_env = mark.env(gate_env(base_env))
    results: list[StepResult] = []
    with runmark.interruptible(), _swept(mark, stream):
        stopped = False
        for step in chosen:
            if step.name in skip or stopped:
                results.append(StepResult(step.name, step.description, False, 0.0, skipped=True, not_run=stopped))
                stream.write(f"==> {step.name}: {'not run' if stopped else 'skipped'}\n")
                continue
            results.append(_run_step(step, root, run_env, stream))
            stopped = not results[-1].passed and not keep_going
    return GateReport(root=root, results=results)


@contextlib.contextmanager
def _swept(mark: runmark.RunMark, out: TextIO) -> Iterator[None]:
    """Stop what the run's steps left running, at its end and when it is interrupted."""
    try:
        yield
    except KeyboardInterrupt:
        stopped = mark.stop_all(grace=INTERRUPT_GRACE)
        out.write(f"interrupted: stopped {len(stopped)} process(es) the gate had started\n")
        out.flush()
        raise
    stopped = mark.stop_all(grace=INTERRUPT_GRACE)
    if stopped:
        out.write(f"note: stopped {len(stopped)} process(es) the gate's steps left running: pids {stopped}\n")


def run_slow_tests(root: Path, environ: Mapping[str, str], out: TextIO = sys.stdout) -> None:
    """The full-size load and fault tests (``-m slow``), which the gate runs in their small version."""
    step = Step("slow tests", "full-size load and fault tests", command=[*pytest_command(), "-m", "slow"])
    result = _run_step(step, root, gate_env(environ), out)
    if not result.passed:
        raise GateFailed(
            "The full-size load and fault tests failed.",
            hint="Read pytest's output above; run one alone with `.venv/bin/pytest -m slow tests/FILE.py`.",
        )


def require_passed(report: GateReport, *, where: str = "") -> None:
    """Raise ``GateFailed`` naming the failed steps when ``report`` did not pass."""
    if report.ok:
        return
    place = f" on {where}" if where else ""
    raise GateFailed(
        f"The gate failed{place}: {', '.join(report.failed)}.",
        hint="Read the output of the failed steps above, fix them, and run `just gate` again.",
    )
