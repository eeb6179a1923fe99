"""The justfile passes every argument to invoke as one word, from a checkout whose path holds a space."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import make_kit_repo


def test_arguments_stay_whole_and_are_never_run_in_a_path_with_a_space(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "a checkout with space")
    venv_bin = repo.root / ".venv" / "bin"  # the justfile prefers the checkout's own invoke: a path with a space
    venv_bin.mkdir(parents=True)
    (venv_bin / "invoke").symlink_to(Path(sys.executable).parent / "invoke")
    just = shutil.which("just") or str(Path(sys.executable).parent / "just")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [just, *args], cwd=repo.root, env=repo.environ(), capture_output=True, text=True, timeout=120
        )

    listed = run()
    assert listed.returncode == 0 and "server-up" in listed.stdout, listed.stderr
    shown = run("env", "dev")
    assert shown.returncode == 0 and "PREFECT_JULIA_PORT" in shown.stdout, shown.stderr

    injected = run("env", "dev; touch injected")
    assert injected.returncode == 2, injected.stdout + injected.stderr
    assert "Unknown environment 'dev; touch injected'" in injected.stderr
    assert not (repo.root / "injected").exists()

    spaced = run("run", "daily", "--env", "dev", "--param", "note hello world")
    assert spaced.returncode == 2, spaced.stdout + spaced.stderr
    assert "--param 'note hello world' is not key=value" in spaced.stderr


def test_every_recipe_passes_arguments_as_positional_parameters() -> None:
    """No recipe pastes an argument into its shell line: only quoted values, and "$@"."""
    text = (Path(__file__).resolve().parents[1] / "justfile").read_text()
    assert "set positional-arguments := true" in text
    pasted = [line for line in text.splitlines() if line.startswith("    ") and re.search(r"\{\{(?!quote\()", line)]
    assert not pasted, pasted
