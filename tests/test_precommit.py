"""The project's real pre-commit hooks on sample files in a temporary repository.

The hook environments (from the pinned packages in .pre-commit-config.yaml) are pre-commit's own, in the store
the gate's hooks step and `git commit` use (PRE_COMMIT_HOME, else the user's cache folder): they are built once
per machine, not once per test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from gitrepos import git_env, head, run_git
from prefect_julia.gates.hooks import install_hooks

COPIED = [
    ".pre-commit-config.yaml",
    "pyproject.toml",
    ".github/zizmor.yml",
    ".github/workflows/gate.yml",
    ".github/workflows/deploy.yml",
    "src/prefect_julia/gates/secretscan.py",
    "src/prefect_julia/gates/baseline_scan.py",
    "src/prefect_julia/__init__.py",
    "src/prefect_julia/core/__init__.py",
    "src/prefect_julia/core/secrets.py",
    ".secrets.baseline",
]
SECRET_VALUE = "s3cret-warehouse-pass"
# Built at run time so that this file itself passes the hooks.
FAKE_KEY = "pnu_" + "Q7x" * 12
PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END " + "RSA PRIVATE KEY-----\n"
TASKS = '''"""Sample tasks: the gate fails while a file named gate-fails exists."""

from pathlib import Path

from invoke import task
from invoke.exceptions import Exit


@task
def gate(c):
    """Stand-in gate of the sample repository."""
    if Path("gate-fails").exists():
        raise Exit("sample gate failed", code=1)
    print("sample gate passed")
'''


def test_hook_tools_are_pinned_as_in_pyproject() -> None:
    """Each package a hook installs is required with the same pin in pyproject.toml: one version of each tool."""
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    pinned = {
        dep for repo in config["repos"] for hook in repo["hooks"] for dep in hook.get("additional_dependencies", [])
    }
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    required = set(project["dependencies"]) | {d for deps in project["optional-dependencies"].values() for d in deps}
    assert pinned and pinned <= required, sorted(pinned - required)


@pytest.fixture(scope="session")
def precommit_home() -> Path:
    """pre-commit's own store, found as pre-commit finds it (it locks the store while it builds an environment)."""
    explicit = os.environ.get("PRE_COMMIT_HOME")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pre-commit"


@pytest.fixture
def sample(tmp_path: Path, precommit_home: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A repository on dev holding the project's hook configuration, clean sample files and a local secret."""
    root = tmp_path / "sample"
    root.mkdir()
    for name in COPIED:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / name, root / name)
    (root / ".gitignore").write_text("envs/*.local.env\n__pycache__/\n")
    (root / "envs").mkdir()
    (root / "envs" / "dev.local.env").write_text(f"PREFECT_JULIA_WAREHOUSE_PASSWORD={SECRET_VALUE}\n")
    (root / "flows").mkdir()
    (root / "flows" / "etl.py").write_text('"""A flow."""\n\nVALUE = 1\n')
    (root / "tasks.py").write_text(TASKS)
    env = git_env(PRE_COMMIT_HOME=str(precommit_home))
    run_git(root, "init", "--quiet", "--initial-branch", "dev")
    run_git(root, "config", "commit.gpgsign", "false")
    run_git(root, "add", ".")
    run_git(root, "commit", "--quiet", "--no-verify", "-m", "sample project")
    yield root, env


def precommit(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args, "--color=never"]
        if args[0] == "run"
        else [sys.executable, "-m", "pre_commit", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_clean_sample_files_pass_every_hook(sample: tuple[Path, dict[str, str]]) -> None:
    root, env = sample
    done = precommit(root, env, "run", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    for hook in (
        "ruff lint",
        "ruff format",
        "YAML syntax",
        "TOML syntax",
        "no private keys",
        "no credentials or local secrets",
        "detect-secrets (against .secrets.baseline)",
        "workflow schema",
        "workflow audit (zizmor)",
    ):
        assert any(line.startswith(hook + ".") and line.endswith("Passed") for line in done.stdout.splitlines())


def test_commit_with_a_fake_key_or_a_local_secret_is_refused(sample: tuple[Path, dict[str, str]]) -> None:
    root, env = sample
    installed = precommit(root, env, "install")
    assert installed.returncode == 0, installed.stderr
    (root / "flows" / "settings.py").write_text(f'"""Settings."""\n\nAPI_KEY = "{FAKE_KEY}"\n')
    (root / "notes.md").write_text(f"# Notes\n\nwarehouse password: {SECRET_VALUE}\n")
    before = head(root)
    run_git(root, "add", "flows/settings.py", "notes.md")
    done = subprocess.run(["git", "commit", "-m", "leak"], cwd=root, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert head(root) == before  # nothing was committed
    assert "flows/settings.py:3: looks like a Prefect API key" in output
    assert "notes.md:3: holds the value of PREFECT_JULIA_WAREHOUSE_PASSWORD from envs/dev.local.env" in output
    assert FAKE_KEY not in output and SECRET_VALUE not in output


def test_broken_workflow_lint_error_and_private_key_are_refused(sample: tuple[Path, dict[str, str]]) -> None:
    root, env = sample
    (root / ".github" / "workflows" / "broken.yml").write_text("name: broken\non: [push\njobs:\n  x: {}\n")
    (root / "flows" / "bad.py").write_text('"""Undefined name."""\n\nVALUE = undefined_name\n')
    (root / "deploy_key").write_text(PRIVATE_KEY)
    files = [".github/workflows/broken.yml", "flows/bad.py", "deploy_key"]
    run_git(root, "add", *files)
    done = precommit(root, env, "run", "--files", *files)
    assert done.returncode != 0
    results = {line.split("..")[0]: line.rsplit(".", 1)[-1] for line in done.stdout.splitlines() if "...." in line}
    assert results["YAML syntax"] == "Failed"
    assert results["workflow schema"] == "Failed"
    assert results["ruff lint"] == "Failed"
    assert results["no private keys"] == "Failed"
    assert "F821" in done.stdout and "Private key found: deploy_key" in done.stdout


def test_push_to_main_runs_the_gate_first(sample: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, env = sample
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], env=env, check=True)
    run_git(root, "remote", "add", "origin", str(remote))
    installed = install_hooks(root, python=sys.executable, env=env)
    assert [p.name for p in installed] == ["pre-commit", "pre-push"] and all(p.is_file() for p in installed)

    def push(branch: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "push", "origin", branch], cwd=root, env=env, capture_output=True, text=True)

    (root / "gate-fails").write_text("")  # untracked: the sample gate fails while it exists
    to_dev = push("dev")
    assert to_dev.returncode == 0, to_dev.stderr  # other branches are not gated
    assert "running the gate" not in to_dev.stderr

    run_git(root, "branch", "main")
    # main's commit is already on the remote (through dev): the push is gated all the same. Still on dev,
    # the pushed commit is the checked-out one, so the gate runs, and fails.
    refused = push("main")
    assert refused.returncode != 0
    assert "running the gate first" in refused.stderr and "the gate failed" in refused.stderr
    assert run_git(root, "ls-remote", "origin", "refs/heads/main").stdout == ""

    (root / "notes.md").write_text("more\n")
    run_git(root, "add", "notes.md")
    run_git(root, "commit", "--quiet", "--no-verify", "-m", "dev moves on")
    elsewhere = push("main")  # main is no longer the checked-out commit: the gate could not check it
    assert elsewhere.returncode != 0 and "is not the checked-out commit" in elsewhere.stderr

    run_git(root, "checkout", "--quiet", "main")
    (root / "gate-fails").unlink()
    accepted = push("main")
    assert accepted.returncode == 0, accepted.stderr
    assert "sample gate passed" in accepted.stdout + accepted.stderr
    assert run_git(root, "ls-remote", "origin", "refs/heads/main").stdout.startswith(head(root, "main"))
