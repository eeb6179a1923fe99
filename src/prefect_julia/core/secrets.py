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
#: A line of a multi-line secret is masked on its own from this length on (shorter lines are ordinary text).
MIN_LINE_LENGTH = 8
#: ``PREFECT_JULIA_PASS_ENV=NAME1,NAME2``: variables a Julia job gets although the allow-list lacks them;
#: their values are secret to the scrubbers whatever their names.
PASS_ENV = "PREFECT_JULIA_PASS_ENV"
#: The BEGIN/END lines of a PEM block say what it is, not what it holds.
_ARMOUR = re.compile(r"-----(?:BEGIN|END) [A-Z0-9 ]+-----")

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


def passed_names(environ: Mapping[str, str]) -> set[str]:
    """The names ``PREFECT_JULIA_PASS_ENV=NAME1,NAME2`` declares."""
    return {name.strip() for name in environ.get(PASS_ENV, "").split(",") if name.strip()}


def secret_values(environ: Mapping[str, str]) -> set[str]:
    """The values ``environ`` holds that are secret: those of secret names and of the names
    ``PREFECT_JULIA_PASS_ENV`` lets through to Julia jobs, and passwords inside URLs."""
    values: set[str] = set()
    passed = passed_names(environ)
    for name, value in environ.items():
        if (is_secret_name(name) or name in passed) and value:
            values.add(value)
            user, sep, password = value.partition(":")  # a basic-auth string "user:password"
            if sep and user and password and "/" not in value:
                values.add(password)
        values.update(url_passwords(value))
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


def secret_lines(value: str) -> list[str]:
    """The lines of a multi-line secret that are masked on their own, wherever they appear.

    A PEM key printed with ``println`` reaches the logs line by line, so each of its body lines is a secret
    too; its BEGIN/END lines are not, and lines shorter than ``MIN_LINE_LENGTH`` are ordinary text.
    """
    if "\n" not in value and "\r" not in value:
        return []
    lines = (line.strip() for line in value.splitlines())
    return [line for line in lines if len(line) >= MIN_LINE_LENGTH and not _ARMOUR.fullmatch(line)]


class Masker:
    """Replaces secret texts by ``********``: whole values, and each line of a multi-line value.

    A few texts are replaced one after the other (``str.replace``, longest first). Many texts (the lines of a
    key file of a megabyte) are found in one pass over the text through an index of their first
    ``MIN_LINE_LENGTH`` characters, so the cost grows with the text, not with texts times the text.
    """

    #: Up to this many texts, one ``str.replace`` each; past it, the indexed pass.
    FEW = 64

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.texts: frozenset[str] = frozenset()
        # (texts replaced one by one, index of the rest by their first characters), swapped whole by ``add``
        self._plan: tuple[list[str], dict[str, list[str]]] = ([], {})
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Mask ``values`` (and the lines of the multi-line ones) from now on."""
        new = set()
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                new.add(value)
                new.update(secret_lines(value))
        if new <= self.texts:
            return
        texts = self.texts | new
        ordered = sorted(texts, key=len, reverse=True)
        few: list[str] = []
        index: dict[str, list[str]] = {}
        for text in ordered:
            if len(ordered) > self.FEW and len(text) >= MIN_LINE_LENGTH:
                index.setdefault(text[:MIN_LINE_LENGTH], []).append(text)
            else:
                few.append(text)
        self._plan, self.texts = (few, index), frozenset(texts)

    def __bool__(self) -> bool:
        return bool(self.texts)

    def __call__(self, text: str) -> str:
        few, index = self._plan
        if not text or not (few or index):
            return text
        if index:
            text = _mask_indexed(text, index)
        for value in few:
            if value in text:
                text = text.replace(value, MASK)
        return text


def _mask_indexed(text: str, index: Mapping[str, list[str]]) -> str:
    """``text`` with every indexed secret masked, in one pass (each bucket holds its longest text first)."""
    width = MIN_LINE_LENGTH
    out: list[str] = []
    start = i = 0
    end = len(text) - width + 1
    while i < end:
        found = index.get(text[i : i + width])
        hit = next((t for t in found if text.startswith(t, i)), None) if found else None
        if hit is None:
            i += 1
            continue
        out.append(text[start:i])
        out.append(MASK)
        i = start = i + len(hit)
    if not out:
        return text
    out.append(text[start:])
    return "".join(out)


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with every one of ``values`` (and each line of a multi-line one) replaced by ``********``."""
    return Masker(values)(text)


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
    "MIN_LINE_LENGTH",
    "MIN_SECRET_LENGTH",
    "PASS_ENV",
    "SECRET_NAME",
    "Masker",
    "create_private",
    "group_or_world_readable",
    "is_secret_name",
    "mask",
    "passed_names",
    "redact",
    "secret_lines",
    "secret_values",
    "url_passwords",
]
