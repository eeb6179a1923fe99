"""README's "Add a flow that runs a Julia job", run as written in a kit copy: real server, worker, julia, run.

Each block of the section is found by the invisible marker before it (``<!-- readme-test: NAME -->``): the
files are written where their names say, the shell blocks run as they are, in bash in the kit copy, in order.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from conftest import REPO_ROOT, KitRepo, make_kit_repo

SECTION = "## Add a flow that runs a Julia job"
RUNDATE = "2026-11-21"
#: The blocks the section shows, by marker, in the order a reader meets them.
BLOCKS = ("input", "julia/jobs/clean_sales.jl", "try-job", "flows/sales.py", "prefect.yaml", "run")

_MARKED_BLOCK = re.compile(r"^( *)<!-- readme-test: (\S+) -->\n\1```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)


def section_blocks(readme: str) -> dict[str, tuple[str, str]]:
    """The marked blocks of the section: marker -> (language, text without the list item's indentation)."""
    section = readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, tuple[str, str]] = {}
    for indent, name, language, body in _MARKED_BLOCK.findall(section):
        assert name not in blocks, f"two blocks are marked {name!r}"
        lines = body.splitlines(keepends=True)
        assert all(not line.strip() or line.startswith(indent) for line in lines), name
        blocks[name] = (language, "".join(line[len(indent) :] if line.strip() else line for line in lines))
    return blocks


def heredoc_python(script: str) -> str:
    """The Python a shell block feeds to `python - <<'EOF'`."""
    return script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0] + "\n"


def run_bash(repo: KitRepo, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``script`` in bash in the kit copy, with the virtualenv's programs first on PATH (as after `activate`)."""
    env = repo.environ()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def blocks() -> dict[str, tuple[str, str]]:
    return section_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_section_marks_every_block(blocks: dict[str, tuple[str, str]]) -> None:
    assert tuple(blocks) == BLOCKS
    assert {name: language for name, (language, _) in blocks.items()} == {
        "input": "bash",
        "julia/jobs/clean_sales.jl": "julia",
        "try-job": "bash",
        "flows/sales.py": "python",
        "prefect.yaml": "yaml",
        "run": "bash",
    }


@pytest.mark.parametrize("name", ["flows/sales.py", "input"])
def test_the_python_is_as_the_hooks_leave_it(blocks: dict[str, tuple[str, str]], name: str) -> None:
    """ruff format and ruff check (the pre-commit hooks, with the project's settings) change nothing."""
    language, text = blocks[name]
    code = text if language == "python" else heredoc_python(text)
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in ([ruff, "format", "--stdin-filename", "flows/sales.py", "-"],
                    [ruff, "check", "--stdin-filename", "flows/sales.py", "-"]):  # fmt: skip
        done = subprocess.run(command, input=code, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        if command[1] == "format":
            assert done.stdout == code, f"ruff format rewrites the {name} block"


@pytest.mark.server
@pytest.mark.julia
def test_the_section_runs_as_written(tmp_path: Path, blocks: dict[str, tuple[str, str]]) -> None:
    repo = make_kit_repo(tmp_path / "repo", project=True)
    data = repo.environment("dev").data_root
    # Where the quick start leaves a reader: the dev server up, the dev blocks on it.
    repo.invoke("server-up", "--env", "dev", timeout=300, check=True)
    try:
        repo.invoke("blocks", "--env", "dev", timeout=300, check=True, DEMO_API_TOKEN="readme-test-token")

        written = run_bash(repo, blocks["input"][1])
        assert written.returncode == 0, written.stdout + written.stderr
        input_file = data / f"extracts/csv/dataset=sales/rundate={RUNDATE}/data.csv"
        assert written.stdout.strip() == str(input_file)

        for name in ("julia/jobs/clean_sales.jl", "flows/sales.py"):
            (repo.root / name).write_text(blocks[name][1], encoding="utf-8")
        with (repo.root / "prefect.yaml").open("a", encoding="utf-8") as declarations:  # deployments: is last
            declarations.write(blocks["prefect.yaml"][1])

        output = data / f"reports/csv/dataset=sales_clean/rundate={RUNDATE}/data.csv"
        alone = run_bash(repo, blocks["try-job"][1])
        assert alone.returncode == 0, alone.stdout + alone.stderr
        assert output.is_file()
        output.unlink()  # the run below writes it again

        ran = run_bash(repo, blocks["run"][1], timeout=900)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "sales/sales-daily" in ran.stdout, ran.stdout
        assert re.search(r"flow run \S+: Completed", ran.stdout), ran.stdout
        assert "wrote 3 rows" in ran.stdout, ran.stdout  # the job's @info, in the run's log
        with output.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert [(r["store"], r["product"], r["units"]) for r in rows] == [
            ("north", "tea", "12"),
            ("south", "tea", "7"),
            ("south", "coffee", "21"),
        ]
        if date.today().isoformat() != RUNDATE:  # under the run's rundate, never today's
            assert not (output.parent.parent / f"rundate={date.today().isoformat()}").exists()
            assert not (data / "reports/csv/latest/dataset=sales_clean").exists()
    finally:
        down = repo.invoke("server-down", "--env", "dev", "--cancel", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr


def test_heredoc_python_reads_the_fed_lines() -> None:
    script = textwrap.dedent("""\
        python - <<'EOF'
        print(1)
        EOF
        """)
    assert heredoc_python(script) == "print(1)\n"
