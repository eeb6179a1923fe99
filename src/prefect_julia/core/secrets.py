"""What counts as a secret: the one name rule, passwords inside URLs, masking, and safe local settings files.

The same rule decides what ``invoke env`` masks, what the Julia bridge scrubs from its output and what the
secret scan refuses to commit. Standard library only: the secret scan runs in pre-commit's own environment.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: A name holding one of these words (any case) names a secret.
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PWD", "CREDENTIAL", "AUTH", "PRIVATE", "WEBHOOK")
SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
#: Names the rule would catch that hold no secret (paths and switches).
NOT_SECRET = frozenset({"PWD", "OLDPWD", "PREFECT_JULIA_AUTH"})
MASK = "********"
#: Shorter values ("1", "dev", "true") would be scrubbed all over ordinary output without being secrets.
MIN_SECRET_LENGTH = 4

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def is_secret_name(name: str) -> bool:
    """True when ``name`` names a secret by the rule (KEY, TOKEN, SECRET, PASSWORD, ... anywhere in it)."""
    return name.upper() not in NOT_SECRET and bool(SECRET_NAME.search(name))


def mask(value: str) -> str:
    """``********`` for a set value, ``''`` for an empty one."""
    return MASK if value else ""


def url_passwords(text: str) -> list[str]:
    """The password part of every URL in ``text`` (``postgresql://user:PASSWORD@host/db``)."""
    found: list[str] = []
    for match in _URL.finditer(text):
        try:
            password = urlsplit(match.group(0)).password
        except ValueError:
            continue
        if password:
            found.extend({password, unquote(password)})
    return found


def secret_values(environ: Mapping[str, str]) -> set[str]:
    """The values ``environ`` holds that are secret: those of secret names, and passwords inside URLs."""
    values: set[str] = set()
    for name, value in environ.items():
        if is_secret_name(name) and value:
            values.add(value)
            user, sep, password = value.partition(":")  # a basic-auth string "user:password"
            if sep and user and password and "/" not in value:
                values.add(password)
        values.update(url_passwords(value))
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with every one of ``values`` replaced by ``********`` (longest first)."""
    for value in sorted(set(values), key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def group_or_world_readable(path: Path) -> bool:
    """True when ``path`` exists and its mode lets the group or others read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)


__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_NAME",
    "create_private",
    "group_or_world_readable",
    "is_secret_name",
    "mask",
    "redact",
    "secret_values",
    "url_passwords",
]
