"""Refuse files (or commits) that hold a credential.

Used as a pre-commit hook (``python src/prefect_julia/gates/secretscan.py FILE...``), as the console script
``prefect-julia-secretscan``, and in CI on the pushed commits (``--commits BASE..HEAD`` scans the lines each
commit adds, so a commit made with ``--no-verify`` is caught too). It looks for

* Prefect API keys: ``pnu_`` (user) or ``pnb_`` (bot/service account) followed by 36 letters and digits;
* AWS access key pairs (an ``AKIA``/``ASIA`` key id and a 40-character secret on the same or the next line);
* private keys (``-----BEGIN ... PRIVATE KEY-----``);
* URLs with a password (``postgresql://user:PASSWORD@host/db``), unless the password is a placeholder;
* every value of a secret setting (the one name rule of ``prefect_julia.core.secrets``) or URL password in
  the git-ignored local settings files ``envs/*.local.env``, in any letter case.

It prints ``file:line`` and which rule matched, never the secret itself. This module needs only the standard
library and python-dotenv, so the hook runs in pre-commit's own environment.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

if __package__ in (None, ""):  # run as a plain script by pre-commit: import the package from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prefect_julia.core.secrets import is_secret_name, url_passwords

__all__ = ["Finding", "LocalSecret", "load_local_secrets", "main", "scan_file", "scan_text"]

API_KEY = re.compile(r"(?<![A-Za-z0-9])pn[ub]_[A-Za-z0-9]{36}(?![A-Za-z0-9])")
AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z ]* PRIVATE KEY( BLOCK)?-----")
#: Passwords in URLs that are examples, not secrets.
PLACEHOLDERS = re.compile(
    r"^(\*+|x+|\.+|<[^>]*>|\{[^}]*\}|\$\{?[A-Za-z_]+\}?|password|passwd|secret|pass|pw|changeme|change-me|example)$",
    re.IGNORECASE,
)
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
            if not value:
                continue
            found = [value.strip()] if is_secret_name(name) else []
            found += url_passwords(value)
            for secret in found:
                if len(secret) >= MIN_SECRET_LENGTH:
                    secrets.append(LocalSecret(name, path.relative_to(root).as_posix(), secret))
    return secrets


def scan_text(text: str, secrets: Iterable[LocalSecret], path: str = "<text>") -> list[Finding]:
    """Every line of ``text`` that holds a credential (see the module's list) or one of ``secrets``' values."""
    known = [(secret, secret.value.lower()) for secret in secrets]
    findings: list[Finding] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if API_KEY.search(line):
            findings.append(Finding(path, number, "looks like a Prefect API key (pnu_/pnb_ + 36 characters)"))
        if AWS_KEY_ID.search(line) and any(AWS_SECRET.search(near) for near in lines[max(0, number - 2) : number + 1]):
            findings.append(Finding(path, number, "looks like an AWS access key pair"))
        if PRIVATE_KEY.search(line):
            findings.append(Finding(path, number, "holds a private key"))
        if any(not PLACEHOLDERS.match(password) for password in url_passwords(line)):
            findings.append(Finding(path, number, "holds a URL with a password"))
        lowered = line.lower()
        for secret, value in known:
            if value in lowered:
                reason = f"holds the value of {secret.name} from {secret.source}"
                findings.append(Finding(path, number, reason))
    return findings


def added_lines(root: Path, revisions: str) -> dict[str, str]:
    """``{"COMMIT:path": added text}`` for every commit of ``revisions`` (e.g. ``BASE..HEAD``)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "rev-list", "--no-merges", revisions], capture_output=True, text=True, check=True
    )
    added: dict[str, str] = {}
    for commit in listed.stdout.split():
        diff = subprocess.run(
            ["git", "-C", str(root), "show", "--format=", "--unified=0", "--no-color", "--no-ext-diff", commit],
            capture_output=True,
            text=True,
            errors="replace",
            check=True,
        ).stdout
        current = ""
        for line in diff.splitlines():
            if line.startswith("+++ "):
                current = f"{commit[:10]}:{line[6:] if line.startswith('+++ b/') else line[4:]}"
            elif line.startswith("+") and current:
                added[current] = added.get(current, "") + line[1:] + "\n"
    return added


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
    """Scan the files named in ``argv`` (relative to the current directory), or with ``--commits RANGE`` the
    lines each commit of that range adds; 1 when any is refused."""
    names = list(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    secrets = load_local_secrets(root)
    if names[:1] == ["--commits"] and len(names) == 2:
        findings = [f for where, text in added_lines(root, names[1]).items() for f in scan_text(text, secrets, where)]
    else:
        findings = [f for name in names for f in scan_file(root / name, secrets, shown_as=name)]
    for finding in findings:
        print(finding)
    if findings:
        print(
            f"Refused: {len(findings)} line(s) hold a credential or a local secret. Remove the value, "
            "read it from the environment or a Prefect Secret block instead, and keep it in envs/*.local.env "
            "(git-ignored).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
