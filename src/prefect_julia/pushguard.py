"""The pre-push hook: run the gate before any push to the main branch.

pre-commit runs it as ``python src/prefect_julia/pushguard.py`` at the pre-push stage, with
``PRE_COMMIT_REMOTE_BRANCH`` (the ref being pushed to) and ``PRE_COMMIT_TO_REF`` (the commit being pushed).
Pushes to other branches pass at once. For a push to main the pushed commit must be the checked-out one
(the gate checks the working tree), and then ``invoke gate`` runs with the project's Python.

Only the standard library is used, so the hook runs in pre-commit's own environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["branch_names", "main", "project_python"]

BRANCHES_FILE = Path("envs") / "branches.toml"


def branch_names(root: Path) -> tuple[str, str]:
    """``(dev, main)`` from ``envs/branches.toml`` (branch -> environment); ``("dev", "main")`` by default.

    The main branch is the one mapped to ``"prod"``, the dev branch one mapped to ``"dev"``. Raises
    ``ValueError`` when the file exists but is not valid TOML.
    """
    path = root / BRANCHES_FILE
    if not path.is_file():
        return "dev", "main"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    table = data.get("branches", data)
    pairs = {str(k): v for k, v in table.items() if isinstance(v, str)} if isinstance(table, dict) else {}
    pairs.pop("default", None)
    mains = sorted(b for b, env in pairs.items() if env == "prod")
    devs = sorted(b for b, env in pairs.items() if env == "dev")
    return (devs[0] if devs else "dev"), (mains[0] if mains else "main")


def project_python(root: Path, environ: Mapping[str, str]) -> str:
    """The interpreter that has the kit installed: ``PREFECT_JULIA_PYTHON``, the active virtual environment,
    ``root/.venv``, else ``python3``."""
    explicit = environ.get("PREFECT_JULIA_PYTHON")
    if explicit:
        return explicit
    candidates = []
    if environ.get("VIRTUAL_ENV"):
        candidates.append(Path(environ["VIRTUAL_ENV"]) / "bin" / "python")
    candidates.append(root / ".venv" / "bin" / "python")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return "python3"


def _head(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Return 0 to let the push through, non-zero to refuse it."""
    env = os.environ if environ is None else environ
    root = Path.cwd()
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH", "")
    try:
        _, main_branch = branch_names(root)
    except ValueError as error:
        print(f"Push refused: {error}. Fix the file and push again.", file=sys.stderr)
        return 2
    if remote_ref not in (main_branch, f"refs/heads/{main_branch}"):
        return 0
    pushed = env.get("PRE_COMMIT_TO_REF", "")
    if pushed and pushed != _head(root):
        print(
            f"Push to {main_branch} refused: the pushed commit {pushed[:10]} is not the checked-out commit, "
            f"so the gate cannot check it. Run `git switch {main_branch}` and push again.",
            file=sys.stderr,
        )
        return 1
    python = project_python(root, env)
    print(f"Pushing to {main_branch}: running the gate first ({python} -m invoke gate).", file=sys.stderr)
    # Git sets variables such as GIT_DIR for its hooks; the gate's tests build repositories of their own.
    clean = {k: v for k, v in env.items() if not k.startswith("GIT_") or k in ("GIT_EXEC_PATH", "GIT_SSH")}
    try:
        code = subprocess.run([python, "-m", "invoke", "gate"], cwd=root, env=clean, check=False).returncode
    except OSError as error:
        print(
            f"Push to {main_branch} refused: could not run the gate with {python} ({error}). "
            "Set PREFECT_JULIA_PYTHON to the project's interpreter (e.g. .venv/bin/python).",
            file=sys.stderr,
        )
        return 1
    if code != 0:
        print(
            f"Push to {main_branch} refused: the gate failed (exit code {code}). Fix what the table above "
            "shows, commit, and push again.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
