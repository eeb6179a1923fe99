"""Secrets out of text that leaves the process: error messages, stderr tails, notifications.

``scrub`` replaces the values of secret-like variables of the environment (the one name rule of
``core.secrets``, as the secret scanner reads them) and credentials written in well-known shapes:
passwords in URLs, ``Authorization``/``Bearer`` values, Prefect API keys and ``name=value`` pairs whose
name is secret-like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from prefect_julia.core.secrets import is_secret_name

__all__ = ["MASK", "scrub", "secret_values"]

MASK = "********"
MIN_SECRET_LENGTH = 6  # shorter values ("1", "true", "dev") are settings, not secrets
_SHAPES = (
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # scheme://user:password@host
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)(?<=authorization: )\S+(?: \S+)?"),
    re.compile(r"(?<![A-Za-z0-9])pn[ub]_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
)
_PAIR = re.compile(
    r"(?i)\b([\w.-]*(?:secret|token|password|passwd|api[_-]?key|credential)[\w.-]*)(\s*[=:]\s*)([^\s,;'\"]+)"
)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of the secret-like variables of ``environ``, longest first (so no part of one is left)."""
    found = {
        value.strip()
        for name, value in environ.items()
        if is_secret_name(name) and value and len(value.strip()) >= MIN_SECRET_LENGTH
    }
    return sorted(found, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret it holds replaced by ``********``."""
    if not text:
        return text
    for value in secret_values(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    for shape in _SHAPES:
        text = shape.sub(MASK, text)
    return _PAIR.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
