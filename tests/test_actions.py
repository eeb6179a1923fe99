"""GitHub Actions show the plan: the gate's step table and the declarations' plan as Markdown on the run's
summary page, and the workflows themselves run by ``act`` on this host.

Fast (in the gate): the Markdown of a gate report and of an offline plan (``invoke plan --against REV``) of a
real change between two commits of a kit repository. Slow (``invoke bench``): gate.yml and deploy.yml run by
``act`` against a bare repository as origin and a local prod server with auth.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import KitRepo, make_kit_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.gates import summary
from prefect_julia.gates.gate import GateReport, StepResult
from prefect_julia.kit.declarations import plan

SECRET = "sk-live-7f3c9a1be04d4c55a9e2"  # in a local settings file only: never read, never shown

DECLARATIONS = """
deployments:
  - name: daily
    entrypoint: flows/demo.py:demo_pipeline
    tags: [demo]
    parameters: {dataset_name: sensor_readings}
    schedules:
      - cron: "0 6 * * *"
    work_pool: {name: "{{ $PREFECT_JULIA_WORK_POOL }}"}
    environments: [dev, prod]
  - name: weekly
    entrypoint: flows/demo.py:demo_pipeline
    work_pool: {name: "{{ $PREFECT_JULIA_WORK_POOL }}"}
    environments: [prod]
"""
CHANGED = """
deployments:
  - name: daily
    entrypoint: flows/demo.py:demo_pipeline
    tags: [demo, nightly]
    parameters: {dataset_name: sensor_readings, min_rows: 5}
    schedules:
      - cron: "30 7 * * *"
        timezone: Europe/Berlin
    work_pool: {name: "{{ $PREFECT_JULIA_WORK_POOL }}"}
    environments: [dev, prod]
  - name: hourly
    entrypoint: flows/demo.py:demo_pipeline
    schedules:
      - cron: "0 * * * *"
    work_pool: {name: "{{ $PREFECT_JULIA_WORK_POOL }}"}
    environments: [prod]
"""


def _commit(repo: KitRepo, message: str) -> str:
    repo.git("add", "-A")
    repo.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", message)
    return repo.git("rev-parse", "HEAD").strip()


@pytest.fixture
def changed_repo(tmp_path: Path) -> KitRepo:
    """A kit repository with two commits: the second changes deployments, a block and a variable of prod."""
    repo = make_kit_repo(tmp_path / "repo", branch="main", project=True, seed=False)
    (repo.root / ".gitignore").write_text("envs/*.local.env\n.prefect/\ndata/\n")
    (repo.root / "prefect.yaml").write_text(DECLARATIONS)
    _commit(repo, "declarations")
    blocks_file = repo.root / "envs" / "prod.blocks.toml"
    text = blocks_file.read_text()
    text = text.replace('secret_from = "DEMO_API_TOKEN"', 'secret_from = "DEMO_API_TOKEN_V2"')
    blocks_file.write_text(text.replace("demo_min_rows = 10", "demo_min_rows = 25"))
    (repo.root / "prefect.yaml").write_text(CHANGED)
    with (repo.root / "envs" / "prod.local.env").open("a") as local:
        local.write(f"DEMO_API_TOKEN={SECRET}\nDEMO_API_TOKEN_V2={SECRET}\nPREFECT_JULIA_WORK_POOL=my-own-pool\n")
    _commit(repo, "nightly, hourly; a rotated token")
    return repo


def test_the_gate_table_as_markdown_names_each_step_and_shows_a_failed_steps_tail_without_secrets() -> None:
    report = GateReport(
        root=Path("."),
        results=[
            StepResult("layers", "imports respect the package's layers", True, 0.21),
            StepResult("hooks", "pre-commit hooks | all files", True, 3.0, skipped=True),
            StepResult("types", "mypy (strict)", False, 12.34, detail=["a.py:1: error", f"PREFECT_API_KEY={SECRET}"]),
            StepResult("tests", "pytest suite", False, 0.0, skipped=True, not_run=True),
        ],
    )
    text = summary.gate_markdown(report)
    assert text.startswith("### Gate: FAILED (types)\n")
    assert "| layers | passed | 0.2 s | imports respect the package's layers |" in text
    assert "| hooks | skipped | - | pre-commit hooks \\| all files |" in text  # a pipe does not split the cell
    assert "| types | **FAILED** | 12.3 s | mypy (strict) |" in text
    assert "| tests | not run | - | pytest suite |" in text
    assert "<details><summary>types: the last lines</summary>" in text and "a.py:1: error" in text
    assert SECRET not in text


def test_the_summary_is_written_only_where_github_actions_names_a_file(tmp_path: Path) -> None:
    page = tmp_path / "SUMMARY.md"
    assert summary.write("### one\n", {}) is False
    assert not page.exists()
    assert summary.write("### one\n", {summary.SUMMARY_VARIABLE: str(page)}) is True
    summary.write("### two\n", {summary.SUMMARY_VARIABLE: str(page)})
    assert page.read_text() == "### one\n\n### two\n\n"  # appended: every step adds its part


def test_the_offline_plan_shows_what_a_commit_changes_in_the_declarations(changed_repo: KitRepo) -> None:
    compared = plan.compare_revision(changed_repo.root, "HEAD~1")
    by_env = {p.env: p for p in compared.plans}
    assert set(by_env) == {"dev", "prod"}
    prod = {(c.action, c.subject): c.details for c in by_env["prod"].changes}
    daily = prod[("change", "deployment daily")]
    assert "schedules: 0 6 * * * UTC -> 30 7 * * * Europe/Berlin" in daily
    assert "tags: demo, prefect-julia -> demo, nightly, prefect-julia" in daily
    assert "parameter min_rows: (none) -> 5" in daily
    assert ("schedules: 0 * * * * UTC") in prod[("create", "deployment hourly")]
    assert prod[("remove", "deployment weekly")] == ("no longer declared",)
    assert prod[("change", "variable demo_min_rows")] == ("value: 10 -> 25",)
    assert prod[("change", "block secret/demo-api-token")] == (
        "value from setting: DEMO_API_TOKEN -> DEMO_API_TOKEN_V2",
    )
    assert len(prod) == 5  # the work pool, the other blocks and variables are unchanged
    dev = {(c.action, c.subject) for c in by_env["dev"].changes}
    assert dev == {("change", "deployment daily")}
    text = plan.render_comparison(compared)
    markdown = summary.comparison_markdown(compared)
    assert text.endswith("1 to create, 4 to change, 1 to remove.")
    assert (
        "| ~ | change | deployments | deployment daily | `schedules: 0 6 * * * UTC -> 30 7 * * * Europe/Berlin`"
        in markdown
    )
    assert "#### dev" in markdown and "#### prod" in markdown
    assert SECRET not in text + markdown
    assert "my-own-pool" not in text  # local settings are not declarations: neither side reads them


def test_the_offline_plan_of_a_revision_against_itself_has_no_changes(changed_repo: KitRepo) -> None:
    compared = plan.compare_revision(changed_repo.root, "HEAD", "prod")
    assert [p.env for p in compared.plans] == ["prod"] and compared.in_step
    assert "no changes to the declarations." in summary.comparison_markdown(compared)


def test_a_revision_that_does_not_exist_is_refused_with_a_fix(changed_repo: KitRepo) -> None:
    with pytest.raises(ConfigError) as refused:
        plan.compare_revision(changed_repo.root, "no-such-branch")
    assert "no-such-branch" in refused.value.message and refused.value.hint
    done = changed_repo.invoke("plan", "--against", "no-such-branch")
    assert done.returncode == ConfigError.exit_code == 2, done.stdout + done.stderr
    assert "fix: " in done.stderr and "Traceback" not in done.stderr
    shown = changed_repo.invoke("plan", "--against", "HEAD~1", "--markdown", "--exit-code")
    assert shown.returncode == plan.EXIT_DIFFERENT, shown.stdout + shown.stderr
    assert shown.stdout.startswith("### Plan: this tree against `HEAD~1`")
