"""What a Julia job may see, and what it must not show: its allow-list environment and the secret scrubber.

The Julia process gets only the variables on the allow-list (PATH, HOME, locale, ``JULIA_*``, proxies and
certificates, the Prefect API URL and credential, the data block names, the base environment's data folder and
name, the result path and log format) plus the names listed in ``PREFECT_JULIA_PASS_ENV``. Every secret value
the bridge knows of (secret settings and credentials in its environment, passwords inside URLs, and the secret
blocks and secret variables on the server) is replaced by ``********`` in each line the bridge forwards and in
the errors it raises.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.core.redact import remember
from prefect_julia.core.secrets import (
    MASK,
    MIN_SECRET_LENGTH,
    Masker,
    is_secret_name,
    passed_names,
    secret_lines,
    secret_values,
)

#: Blocks and variables are read from the server a page at a time.
PAGE = 200
#: Variables a Julia job always gets when they are set.
ALLOWED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "PREFECT_API_URL",
        "PREFECT_API_KEY",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_DATA_BLOCK_LOCAL",
        "PREFECT_DATA_BLOCK_REMOTE",
        "PREFECT_DATASTORE_DEFAULT_TYPE",
        "PREFECT_DATA_FALLBACK_ROOT",
        "PREFECT_DATA_FALLBACK_NAME",
        "PREFECT_JULIA_RESULT_PATH",
        "PREFECT_JULIA_LOG_FORMAT",
    }
)
ALLOWED_PREFIXES = ("JULIA_", "LC_")

_LOGGER = logging.getLogger("prefect_julia.julia")


def allowed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` cut down to the allow-list and the declared names."""
    extra = passed_names(environ)
    return {
        name: value
        for name, value in environ.items()
        if name in ALLOWED or name in extra or name.startswith(ALLOWED_PREFIXES)
    }


def _leaves(data: Any) -> Iterable[str]:
    """Every string and number inside a JSON value (a secret field holding a dict or list is secret throughout)."""
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    elif isinstance(data, str):
        yield data
    elif isinstance(data, int | float) and not isinstance(data, bool):
        yield json.dumps(data)


def _is_secret_path(path: str, secret_paths: set[str]) -> bool:
    """``path`` is a secret field, or inside one (``field.*`` marks every key of a dict field)."""
    parts = path.split(".")
    for pattern in secret_paths:
        wanted = pattern.split(".")
        if len(wanted) <= len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=False)):
            return True
    return False


def _walk_secrets(data: Any, secret_paths: set[str], path: str = "") -> Iterable[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if _is_secret_path(child, secret_paths) or (isinstance(value, str) and is_secret_name(str(key))):
                yield from _leaves(value)
                if isinstance(value, dict | list):
                    yield json.dumps(value)
            else:
                yield from _walk_secrets(value, secret_paths, child)
    elif isinstance(data, list):
        for item in data:
            yield from _walk_secrets(item, secret_paths, path)


def _pages(client: ApiClient, path: str, body: Mapping[str, Any]) -> Iterable[Any]:
    """Every item of a ``/filter`` endpoint, read ``PAGE`` at a time."""
    offset = 0
    while True:
        page = client.request("POST", path, {**body, "offset": offset, "limit": PAGE}) or []
        yield from page
        if len(page) < PAGE:
            return
        offset += len(page)


def server_secrets(client: ApiClient) -> set[str]:
    """Secret values on the server: secret fields of every block (values nested in JSON fields included),
    and variables with secret names."""
    found: set[str] = set()
    for doc in _pages(client, "/block_documents/filter", {"include_secrets": True}):
        fields = ((doc.get("block_schema") or {}).get("fields") or {}).get("secret_fields") or []
        paths = {str(p) for p in fields}
        if (doc.get("block_type") or {}).get("slug") == "secret":
            paths.add("value")
        found.update(_walk_secrets(doc.get("data") or {}, paths))
    for variable in _pages(client, "/variables/filter", {}):
        if is_secret_name(str(variable.get("name", ""))):
            value = variable.get("value")
            found.add(value if isinstance(value, str) else json.dumps(value))
            found.update(_leaves(value))
    return found


def _forms(value: str) -> Iterable[str]:
    """``value`` as it may appear in a job's output: plain, inside a JSON string, as a basic-auth header."""
    yield value
    yield json.dumps(value)[1:-1]  # as it appears inside a JSON log line
    if ":" in value and "\n" not in value:
        yield base64.b64encode(value.encode()).decode()  # an Authorization: Basic header
    for line in secret_lines(value):
        yield json.dumps(line)[1:-1]


class Scrubber:
    """Replaces known secret values (whole, line by line, JSON-escaped and in basic-auth form) by ``********``.

    The values are also remembered for the rest of the process (``core.redact.remember``), so the kit's
    errors scrub them from their messages and stderr tails, which join many lines into one text.
    """

    def __init__(self, values: Iterable[str]) -> None:
        known = {form for value in values if len(value) >= MIN_SECRET_LENGTH for form in _forms(value)}
        self.values = frozenset(known)
        self._masker = Masker(known)
        remember(known)

    def __call__(self, text: str) -> str:
        return self._masker(text)

    def lines(self, handle: Callable[[str], None]) -> Callable[[str], None]:
        """``handle`` fed scrubbed lines."""
        return lambda line: handle(self(line))


class PendingScrubber:
    """A :class:`Scrubber` whose server secrets are read in the background while the job starts.

    The first use waits for them, so no line is forwarded before every known secret can be hidden; a Julia
    job prints nothing for far longer than the two requests take.
    """

    def __init__(self, environ: Mapping[str, str], api_url: str | None) -> None:
        self._environ = dict(environ)
        self._scrubber: Scrubber | None = None
        self._thread = threading.Thread(target=self._read, args=(api_url,), daemon=True)
        self._thread.start()

    def _read(self, api_url: str | None) -> None:
        self._scrubber = scrubber_for(self._environ, api_url)

    def resolve(self) -> Scrubber:
        self._thread.join()
        if self._scrubber is None:  # scrubber_for never raises; this holds only if the thread itself died
            self._scrubber = Scrubber(secret_values(self._environ))
        return self._scrubber

    def __call__(self, text: str) -> str:
        return self.resolve()(text)


def scrubber_for(environ: Mapping[str, str], api_url: str | None) -> Scrubber:
    """A scrubber of every secret ``environ`` holds and, when the server answers, its secret blocks and variables."""
    values = secret_values(environ)
    if api_url:
        client = ApiClient.from_environ(environ, api_url, timeout=10.0)
        try:
            values |= server_secrets(client)
        except Exception as error:  # the job still runs; its own requests will say what is wrong
            _LOGGER.debug("Could not read the server's secrets to hide them: %s", type(error).__name__)
    return Scrubber(values)


__all__ = [
    "ALLOWED",
    "MASK",
    "PendingScrubber",
    "Scrubber",
    "allowed_env",
    "passed_names",
    "scrubber_for",
    "server_secrets",
]
