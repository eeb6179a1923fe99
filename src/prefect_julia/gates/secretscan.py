"""Refuse files that hold a Prefect API key or a secret value from the local settings.

Used as a pre-commit hook (``python src/prefect_julia/gates/secretscan.py FILE...``) and as the console script
``prefect-julia-secretscan``. It looks for

* Prefect API keys: ``pnu_`` (user) or ``pnb_`` (bot/service account) followed by 36 letters and digits;
* every value of a secret-like setting (its name contains SECRET, TOKEN, PASSWORD, KEY or AUTH) found in the
  git-ignored local settings files ``envs/*.local.env``.

It prints ``file:line`` and which rule matched, never the secret itself. This module needs only the standard
library and python-dotenv, so the hook runs in pre-commit's own environment.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

__all__ = ["Finding", "LocalSecret", "load_local_secrets", "main", "scan_file", "scan_text"]

API_KEY = re.compile(r"(?<![A-Za-z0-9])pn[ub]_[A-Za-z0-9]{36}(?![A-Za-z0-9])")
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY|AUTH", re.IGNORECASE)
LOCAL_SETTINGS_GLOB = "envs/*.local.env"
# Shorter values ("1", "true", "dev") would match all over the code base without being secrets.
MIN_SECRET_LENGTH = 6


@dataclass(frozen=True)
class LocalSecret:
    """A secret-like setting from a local settings file: where it comes from and its value."""

    name: str
    source: str
    value: str


@dataclass(frozen=True)
class Finding:
    """One refused line: the file, the 1-based line number and what matched (never the value)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def load_local_secrets(root: Path) -> list[LocalSecret]:
    """Values of secret-like settings in ``root/envs/*.local.env``; empty and very short ones are left out."""
    secrets: list[LocalSecret] = []
    for path in sorted(root.glob(LOCAL_SETTINGS_GLOB)):
        for name, value in dotenv_values(path).items():
            if value and SECRET_NAME.search(name) and len(value.strip()) >= MIN_SECRET_LENGTH:
                secrets.append(LocalSecret(name, path.relative_to(root).as_posix(), value.strip()))
    return secrets


def scan_text(text: str, secrets: Iterable[LocalSecret], path: str = "<text>") -> list[Finding]:
    """Every line of ``text`` that holds a Prefect API key or one of ``secrets``' values."""
    known = list(secrets)
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if API_KEY.search(line):
            findings.append(Finding(path, number, "looks like a Prefect API key (pnu_/pnb_ + 36 characters)"))
        for secret in known:
            if secret.value in line:
                reason = f"holds the value of {secret.name} from {secret.source}"
                findings.append(Finding(path, number, reason))
    return findings


def scan_file(path: Path, secrets: Iterable[LocalSecret], shown_as: str | None = None) -> list[Finding]:
    """Scan one file; binary files (a NUL byte in the first 8 KiB) and missing files are skipped."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return []
    if b"\0" in data[:8192]:
        return []
    return scan_text(data.decode("utf-8", errors="replace"), secrets, shown_as or str(path))


def main(argv: Sequence[str] | None = None) -> int:
    """Scan the files named in ``argv`` (relative to the current directory); 1 when any is refused."""
    names = list(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    secrets = load_local_secrets(root)
    findings = [f for name in names for f in scan_file(root / name, secrets, shown_as=name)]
    for finding in findings:
        print(finding)
    if findings:
        print(
            f"Refused: {len(findings)} line(s) hold a Prefect API key or a local secret. Remove the value, "
            "read it from the environment or a Prefect Secret block instead, and keep it in envs/*.local.env "
            "(git-ignored).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
