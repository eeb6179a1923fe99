"""Secrets out of text that leaves the process: error messages, stderr tails, notifications.

``scrub`` replaces the secret values of the environment (``core.secrets.secret_values``: secret-like
names, the names passed to Julia jobs, passwords in URLs), the secrets this process has learnt of
(``remember``: the Julia bridge's scrubber adds the server's secret blocks and variables), each line of a
multi-line one, and credentials written in well-known shapes: passwords in URLs, ``Authorization``/``Bearer``
values, Prefect API keys and ``name=value`` pairs whose name is secret-like. A text is scrubbed whole, so a
secret whose lines are too short to be masked one by one is still caught across them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping

from prefect_julia.core.secrets import MASK, Masker, secret_values

__all__ = ["MASK", "remember", "scrub"]

_KNOWN = Masker()
_KNOWN_LOCK = threading.Lock()
_SHAPES = (
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # scheme://user:password@host
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)(?<=authorization: )\S+(?: \S+)?"),
    re.compile(r"(?<![A-Za-z0-9])pn[ub]_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
)
_PAIR = re.compile(
    r"(?i)\b([\w.-]*(?:secret|token|password|passwd|api[_-]?key|credential)[\w.-]*)(\s*[=:]\s*)([^\s,;'\"]+)"
)


def remember(values: Iterable[str]) -> None:
    """Scrub ``values`` from every text this process scrubs from now on (error messages, stderr tails)."""
    with _KNOWN_LOCK:
        _KNOWN.add(values)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret it holds replaced by ``********``."""
    if not text:
        return text
    values = secret_values(os.environ if environ is None else environ)
    text = Masker(values)(_KNOWN(text))
    for shape in _SHAPES:
        text = shape.sub(MASK, text)
    return _PAIR.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
