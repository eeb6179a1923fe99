"""Plain requests to a Prefect server's REST API with its credentials, for code that does not load Prefect.

A server of this kit may run with basic auth (``PREFECT_API_AUTH_STRING``) and CSRF protection. Every
request carries the credential; a POST, PATCH or DELETE also carries a CSRF token, fetched once per client id
from ``GET /csrf-token?client=ID`` (a server without CSRF protection answers 422 there: then none is sent).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prefect_julia.core.errors import ConfigError

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiRefused(ConfigError):
    """The server answered 401 or 403: the credential is missing, wrong, or a CSRF token was refused."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class ApiClient:
    """Requests to ``api_url`` with an API key (Bearer) or a basic-auth string; CSRF handled."""

    api_url: str
    auth_string: str | None = None
    api_key: str | None = None
    timeout: float = 5.0
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _csrf: str | None = field(default=None, repr=False)
    _csrf_checked: bool = field(default=False, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], api_url: str | None = None, **kwargs: Any) -> ApiClient:
        """A client of ``api_url`` (default ``PREFECT_API_URL``) with the credential ``environ`` holds."""
        url = api_url or environ.get("PREFECT_API_URL", "")
        return cls(
            url.rstrip("/"),
            auth_string=environ.get("PREFECT_API_AUTH_STRING") or None,
            api_key=environ.get("PREFECT_API_KEY") or None,
            **kwargs,
        )

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif self.auth_string:
            headers["Authorization"] = "Basic " + base64.b64encode(self.auth_string.encode()).decode()
        return headers

    def _send(self, method: str, path: str, body: Any = None, extra: Mapping[str, str] | None = None) -> Any:
        headers = self.headers() | dict(extra or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def _csrf_headers(self) -> dict[str, str]:
        if not self._csrf_checked:
            # A fresh client id per token request: a slow, earlier request for the same id that a busy server
            # commits late would otherwise replace the token this client holds.
            self.client_id = str(uuid.uuid4())
            query = urllib.parse.urlencode({"client": self.client_id})
            try:
                self._csrf = str(self._send("GET", f"/csrf-token?{query}")["token"])
            except urllib.error.HTTPError as error:
                if error.code in (401, 403):
                    raise self._refused(error.code) from None
                if error.code != 422:  # a busy or failing server: ask again with the next request
                    raise
                self._csrf = None  # 422: the server has no CSRF protection
            self._csrf_checked = True
        return {"Prefect-Csrf-Token": self._csrf, "Prefect-Csrf-Client": self.client_id} if self._csrf else {}

    def _refused(self, status: int) -> ApiRefused:
        sent = "an API key" if self.api_key else ("its auth string" if self.auth_string else "no credential")
        return ApiRefused(
            f"The Prefect server at {self.api_url} refused the request (HTTP {status}); this client sent {sent}.",
            status=status,
            hint="Set PREFECT_API_AUTH_STRING to the server's auth string (see `invoke env`).",
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """The parsed JSON answer; :class:`ApiRefused` on 401/403, ``urllib`` errors otherwise."""
        method = method.upper()
        for attempt in (1, 2):
            extra = self._csrf_headers() if method in CHANGING else {}
            try:
                return self._send(method, path, body, extra)
            except urllib.error.HTTPError as error:
                if error.code == 403 and attempt == 1 and _csrf_refusal(error):
                    self._csrf_checked = False  # the token went stale or was replaced: fetch a new one, once
                    continue
                if error.code in (401, 403):
                    raise self._refused(error.code) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _csrf_refusal(error: urllib.error.HTTPError) -> bool:
    """True when a 403 is the CSRF middleware's ("Invalid CSRF token ...", "Missing CSRF token.")."""
    try:
        detail = json.loads(error.read() or b"{}").get("detail", "")
    except (ValueError, AttributeError, OSError):
        return False
    return isinstance(detail, str) and "csrf" in detail.lower()


__all__ = ["ApiClient", "ApiRefused"]
