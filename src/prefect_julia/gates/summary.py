"""What a GitHub Actions run shows on its summary page: the gate's step table and a plan, as Markdown.

A job appends Markdown to the file ``$GITHUB_STEP_SUMMARY`` names; ``write`` does it when the variable is set
(elsewhere it does nothing). Everything written passes through ``scrub``: a secret never reaches the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prefect_julia.core.redact import scrub
from prefect_julia.gates.gate import GateReport
from prefect_julia.kit.declarations.plan import MARKS, Plan, count_line
from prefect_julia.kit.declarations.revision import Comparison

__all__ = ["SUMMARY_VARIABLE", "comparison_markdown", "gate_markdown", "plan_markdown", "write"]

#: The file GitHub Actions shows on the run's summary page.
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
_TAIL_SHOWN = 25


def _cell(text: str) -> str:
    """``text`` safe in a table cell: no line breaks, pipes escaped."""
    return text.replace("\n", " ").replace("|", "\\|")


def _code(text: str) -> str:
    """``text`` as inline code in a table cell (cron strings keep their ``*``)."""
    return f"`{_cell(text.replace('`', chr(39)))}`"


def _fence(lines: Iterable[str]) -> list[str]:
    return ["```text", *(line.replace("```", "'''") for line in lines), "```"]


def gate_markdown(report: GateReport) -> str:
    """The gate's step table, its verdict, pytest's closing line and the output tail of each failed step."""
    lines = ["### Gate: " + ("passed" if report.ok else f"FAILED ({', '.join(report.failed)})"), ""]
    lines += ["| step | result | time | what |", "|---|---|---|---|"]
    for r in report.results:
        result = "not run" if r.not_run else "skipped" if r.skipped else ("passed" if r.passed else "**FAILED**")
        seconds = "-" if r.skipped else f"{r.seconds:.1f} s"
        lines.append(f"| {r.name} | {result} | {seconds} | {_cell(r.description)} |")
    tests = report.test_summary()
    if tests:
        lines += ["", f"tests: {_code(tests)}"]
    if report.changed_files:
        lines += ["", f"files the hooks rewrote: {', '.join(_code(p) for p in report.changed_files)}"]
    for r in report.results:
        if not (r.passed or r.skipped) and r.detail:
            lines += ["", f"<details><summary>{r.name}: the last lines</summary>", ""]
            lines += [*_fence(r.detail[-_TAIL_SHOWN:]), "", "</details>"]
    return scrub("\n".join(lines)) + "\n"


def _changes_table(plan: Plan) -> list[str]:
    lines = ["| | change | section | what | details |", "|---|---|---|---|---|"]
    for change in plan.changes:
        details = "<br>".join(_code(detail) for detail in change.details)
        lines.append(
            f"| {MARKS[change.action]} | {change.action} | {change.section} | {_cell(change.subject)} | {details} |"
        )
    return lines


def _plan_section(plan: Plan, heading: str) -> list[str]:
    lines = [heading, ""]
    lines += _changes_table(plan) if plan.changes else ["no changes"]
    lines += [""] + [f"- note: {_cell(note)}" for note in plan.notes] if plan.notes else []
    return [*lines, ""]


def plan_markdown(plan: Plan, *, title: str = "") -> str:
    """A server plan (``plan.compute``): what a deploy to ``plan.env`` changes, one table row per change."""
    heading = title or f"### Plan for {plan.env}"
    in_step = f"no changes: the {plan.env} server holds what the repository declares."
    verdict = in_step if plan.in_step else count_line(plan.count)
    return scrub("\n".join([*_plan_section(plan, heading), verdict])) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """An offline plan (``revision.compare_revision``): per environment, what this tree changes in the declarations."""
    short = comparison.commit[:10]
    lines = [
        f"### Plan: this tree against `{_cell(comparison.against)}` (`{short}`)",
        "",
        "The declarations only (prefect.yaml, envs/): compared without a server; secret values are never in them,"
        " a field not shown is compared by digest.",
        "",
    ]
    for plan in comparison.plans:
        lines += _plan_section(plan, f"#### {plan.env}")
    lines.append("no changes to the declarations." if comparison.in_step else f"{count_line(comparison.count)}.")
    return scrub("\n".join(lines)) + "\n"


def write(markdown: str, environ: Mapping[str, str]) -> bool:
    """Append ``markdown`` to the step summary when ``$GITHUB_STEP_SUMMARY`` is set; True when written."""
    path = environ.get(SUMMARY_VARIABLE, "")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(scrub(markdown, environ) + "\n")
    return True
