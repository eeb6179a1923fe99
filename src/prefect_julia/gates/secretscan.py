"""Refuse files (or commits) that hold a credential.

Used as a pre-commit hook (``python src/prefect_julia/gates/secretscan.py FILE...``), as the console script
``prefect-julia-secretscan``, and in CI on the pushed commits (``--commits BASE..HEAD`` scans the lines each
commit adds, so a commit made with ``--no-verify`` is caught too). It looks for

* Prefect API keys: ``pnu_`` (user) or ``pnb_`` (bot/service account) followed by 36 letters and digits;
* AWS access key pairs (an ``AKIA``/``ASIA`` key id and a 40-character secret on the same or the next line);
* private keys (``-----BEGIN ... PRIVATE KEY-----``), and a PEM key's body without those lines (three or more
  lines in a row of 60 to 80 base64 characters mixing capitals, small letters and digits, all of one length but
  the last);
* URLs with a password (``postgresql://user:PASSWORD@host/db``), unless the password is a placeholder;
* every value of a secret setting (the one name rule of ``prefect_julia.core.secrets``) or URL password in
  the git-ignored local settings files ``envs/*.local.env``, in any letter case.

Files in UTF-16 or UTF-32 are read by their byte-order mark; in ``--commits``, a binary file's blob is scanned
through its printable runs (as ``strings`` would show them). It prints ``file:line`` and which rule matched,
never the secret itself. This module needs only the standard
library and python-dotenv, so the hook runs in pre-commit's own environment.
"""

from __future__ import annotations

import codecs
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

__all__ = ["Finding", "LocalSecret", "decode", "load_local_secrets", "main", "pem_bodies", "scan_file", "scan_text"]

API_KEY = re.compile(r"(?<![A-Za-z0-9])pn[ub]_[A-Za-z0-9]{36}(?![A-Za-z0-9])")
AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z ]* PRIVATE KEY( BLOCK)?-----")
#: Passwords in URLs that are examples, not secrets.
PLACEHOLDERS = re.compile(
    r"^(\*+|x+|\.+|<[^>]*>|\{[^}]*\}|\$\{?[A-Za-z_]+\}?|password|passwd|secret|pass|pw|changeme|change-me|example)$",
    re.IGNORECASE,
)
PEM_BODY_LINE = re.compile(r"\s*([A-Za-z0-9+/]{60,80})\s*")
PEM_BODY_TAIL = re.compile(r"\s*[A-Za-z0-9+/]{4,80}={0,2}\s*")
PEM_BODY_LINES = 3
#: Byte-order marks, longest first (UTF-32-LE's begins with UTF-16-LE's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
PRINTABLE_RUN = re.compile(rb"[\t\n\r\x20-\x7e]{8,}")
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


def _mixed_base64(line: str) -> bool:
    return any(c.isupper() for c in line) and any(c.islower() for c in line) and any(c.isdigit() for c in line)


def pem_bodies(lines: Sequence[str]) -> list[int]:
    """1-based numbers of the first lines of runs that look like a PEM key's body (without BEGIN/END)."""
    starts: list[int] = []
    number = 0
    while number < len(lines):
        first = PEM_BODY_LINE.fullmatch(lines[number])
        if not first or not _mixed_base64(first[1]):
            number += 1
            continue
        width, end = len(first[1]), number + 1
        while end < len(lines):
            match = PEM_BODY_LINE.fullmatch(lines[end])
            if not match or len(match[1]) != width or not _mixed_base64(match[1]):
                break
            end += 1
        run = end - number + (1 if end < len(lines) and PEM_BODY_TAIL.fullmatch(lines[end]) else 0)
        if run >= PEM_BODY_LINES:
            starts.append(number + 1)
        number = end
    return starts


def scan_text(text: str, secrets: Iterable[LocalSecret], path: str = "<text>") -> list[Finding]:
    """Every line of ``text`` that holds a credential (see the module's list) or one of ``secrets``' values."""
    known = [(secret, secret.value.lower()) for secret in secrets]
    findings: list[Finding] = []
    lines = text.splitlines()
    has_armour = bool(PRIVATE_KEY.search(text))
    for number in [] if has_armour else pem_bodies(lines):
        findings.append(Finding(path, number, "looks like the body of a private key (PEM lines without BEGIN/END)"))
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


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True).stdout


def added_lines(root: Path, revisions: str) -> dict[str, str]:
    """``{"COMMIT:path": added text}`` for every commit of ``revisions`` (e.g. ``BASE..HEAD``); a binary file
    added or changed by a commit is given whole, as the printable runs of its blob."""
    added: dict[str, str] = {}
    for commit in _git(root, "rev-list", "--no-merges", revisions).decode().split():
        diff = _git(root, "show", "--format=", "--unified=0", "--no-color", "--no-ext-diff", commit)
        current = ""
        for line in diff.decode("utf-8", errors="replace").splitlines():
            if line.startswith("+++ "):
                current = f"{commit[:10]}:{line[6:] if line.startswith('+++ b/') else line[4:]}"
            elif line.startswith("+") and current:
                added[current] = added.get(current, "") + line[1:] + "\n"
        for path in _binary_changes(root, commit):
            added[f"{commit[:10]}:{path}"] = decode(_git(root, "show", f"{commit}:{path}"))
    return added


def _binary_changes(root: Path, commit: str) -> list[str]:
    """Paths of the binary files ``commit`` adds or changes (``-`` counts in ``--numstat``)."""
    stats = _git(root, "show", "--format=", "--numstat", "-z", "--no-renames", "--diff-filter=AM", commit)
    return [
        entry.split(b"\t", 2)[2].decode("utf-8", errors="replace")
        for entry in stats.split(b"\0")
        if entry.startswith(b"-\t-\t")
    ]


def decode(data: bytes) -> str:
    """The text of a file: by its byte-order mark (UTF-8, UTF-16, UTF-32), as UTF-8 when it has no NUL byte
    in its first 8 KiB, else (binary) its printable runs of 8 characters or more, one a line."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\0" not in data[:8192]:
        return data.decode("utf-8", errors="replace")
    return "\n".join(run.decode("ascii") for run in PRINTABLE_RUN.findall(data))


def scan_file(path: Path, secrets: Iterable[LocalSecret], shown_as: str | None = None) -> list[Finding]:
    """Scan one file (UTF-16 and UTF-32 by their byte-order mark); binary files (a NUL byte in the first
    8 KiB, no byte-order mark) and missing files are skipped."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return []
    if b"\0" in data[:8192] and not any(data.startswith(bom) for bom, _ in BOMS):
        return []
    return scan_text(decode(data), secrets, shown_as or str(path))


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
