"""What a Julia job may see, and what it must not show: its allow-list environment and the secret scrubber.

The Julia process gets only the variables on the allow-list (PATH, HOME, locale, ``JULIA_*``, proxies and
certificates, the Prefect API URL and credential, the data block names, the result path and log format) plus
the names listed in ``PREFECT_JULIA_PASS_ENV``. Every secret value the bridge knows of (secret settings and
credentials in its environment, passwords inside URLs, and the secret blocks and secret variables on the
server) is replaced by ``********`` in each line the bridge forwards and in the errors it raises.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.core.secrets import MASK, MIN_SECRET_LENGTH, is_secret_name, redact, secret_values

PASS_ENV = "PREFECT_JULIA_PASS_ENV"
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
        "PREFECT_JULIA_RESULT_PATH",
        "PREFECT_JULIA_LOG_FORMAT",
    }
)
ALLOWED_PREFIXES = ("JULIA_", "LC_")

_LOGGER = logging.getLogger("prefect_julia.julia")


def passed_names(environ: Mapping[str, str]) -> set[str]:
    """The names ``PREFECT_JULIA_PASS_ENV=NAME1,NAME2`` declares."""
    return {name.strip() for name in environ.get(PASS_ENV, "").split(",") if name.strip()}


def allowed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` cut down to the allow-list and the declared names."""
    extra = passed_names(environ)
    return {
        name: value
        for name, value in environ.items()
        if name in ALLOWED or name in extra or name.startswith(ALLOWED_PREFIXES)
    }


def _walk_secrets(data: Any, secret_paths: set[str], path: str = "") -> Iterable[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and (child in secret_paths or is_secret_name(str(key))):
                yield value
            else:
                yield from _walk_secrets(value, secret_paths, child)
    elif isinstance(data, list):
        for item in data:
            yield from _walk_secrets(item, secret_paths, path)


def server_secrets(client: ApiClient) -> set[str]:
    """Secret values on the server: secret fields of every block, and variables with secret names."""
    found: set[str] = set()
    documents = client.request("POST", "/block_documents/filter", {"include_secrets": True, "limit": 200}) or []
    for doc in documents:
        fields = ((doc.get("block_schema") or {}).get("fields") or {}).get("secret_fields") or []
        paths = {str(p) for p in fields}
        if (doc.get("block_type") or {}).get("slug") == "secret":
            paths.add("value")
        found.update(_walk_secrets(doc.get("data") or {}, paths))
    variables = client.request("POST", "/variables/filter", {"limit": 200}) or []
    for variable in variables:
        if is_secret_name(str(variable.get("name", ""))):
            value = variable.get("value")
            found.add(value if isinstance(value, str) else json.dumps(value))
    return found


class Scrubber:
    """Replaces known secret values (and their JSON-escaped and basic-auth forms) by ``********``."""

    def __init__(self, values: Iterable[str]) -> None:
        known: set[str] = set()
        for value in values:
            if len(value) < MIN_SECRET_LENGTH:
                continue
            known.add(value)
            known.add(json.dumps(value)[1:-1])  # as it appears inside a JSON log line
            if ":" in value:
                known.add(base64.b64encode(value.encode()).decode())  # an Authorization: Basic header
        self.values = frozenset(known)

    def __call__(self, text: str) -> str:
        return redact(text, self.values) if self.values else text

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
