"""The front door: every invoke task has a just recipe that delegates to it, and errors exit non-zero."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, KitRepo


def _invoke_tasks() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "--list", "--list-format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {t["name"] for t in json.loads(out)["tasks"]}


def test_every_invoke_task_has_a_documented_just_recipe() -> None:
    just = shutil.which("just") or str(Path(sys.executable).parent / "just")  # rust-just, beside this Python
    listing = subprocess.run([just, "--list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    recipes = {line.split()[0]: line for line in listing.splitlines()[1:]}
    tasks = _invoke_tasks()
    assert {"server-up", "server-down", "server-status", "server-logs", "deploy", "run", "demo", "gate"} <= tasks
    missing = tasks - set(recipes)
    assert not missing, f"invoke tasks without a just recipe: {missing}"
    for name in tasks:
        assert "#" in recipes[name], f"recipe {name} has no comment"


def test_every_task_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for name in _invoke_tasks():
        assert f"invoke {name}" in readme or f"/ `{name}`" in readme or f"`{name}`" in readme, name


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["server-up", "--env", "staging"], 2, "Unknown environment 'staging'"),
        (["env", "--env", "prod", "--shell"], 0, "export PREFECT_API_URL="),
        (["run", "daily", "--env", "dev", "--param", "novalue"], 2, "is not key=value"),
    ],
)
def test_cli_exit_codes(kit_repo: KitRepo, args: list[str], code: int, message: str) -> None:
    run = kit_repo.invoke(*args)
    assert run.returncode == code, run.stderr
    assert message in (run.stdout + run.stderr)


def test_malformed_env_file_via_cli(kit_repo: KitRepo) -> None:
    (kit_repo.root / "envs" / "dev.env").write_text("PREFECT_JULIA_PORT\n")
    run = kit_repo.invoke("env", "--env", "dev")
    assert run.returncode == 2 and "dev.env:1" in run.stderr and "NAME=value" in run.stderr
