"""detect-secrets against the committed baseline ``.secrets.baseline``, which this check never rewrites.

``detect-secrets-hook`` rewrites the baseline whenever a known finding moves to another line and then fails,
so every unrelated edit would fail the gate. This runs it against a temporary copy instead: a finding the
baseline does not hold fails (exit 1); moved known findings pass. Used as a pre-commit hook and in CI
(``python src/prefect_julia/gates/baseline_scan.py FILE...``); needs only detect-secrets.
To accept a finding that is not a secret, run ``detect-secrets scan --baseline .secrets.baseline`` and commit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BASELINE = Path(".secrets.baseline")
UPDATED_ONLY = 3  # detect-secrets-hook: the baseline's line numbers were refreshed, nothing new found


def main(argv: Sequence[str] | None = None) -> int:
    files = list(sys.argv[1:] if argv is None else argv)
    if not files:
        return 0
    with tempfile.TemporaryDirectory(prefix="baseline-") as scratch:
        copy = Path(scratch) / "baseline.json"
        if BASELINE.exists():
            shutil.copyfile(BASELINE, copy)
        args = ["--baseline", str(copy)] if BASELINE.exists() else []
        done = subprocess.run(
            [sys.executable, "-m", "detect_secrets.pre_commit_hook", *args, *files],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode in (0, UPDATED_ONLY):
        return 0
    print(done.stdout.replace(str(copy), str(BASELINE)), end="")
    print(done.stderr, end="", file=sys.stderr)
    print(
        "Refused by detect-secrets: move the value to envs/*.local.env or a Prefect Secret block. If it is not a "
        f"secret, add it to the baseline: detect-secrets scan --baseline {BASELINE}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
