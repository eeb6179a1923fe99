"""The kit's plain REST client (``core/prefect_http.py``) when the CSRF token cannot be had at once.

A busy sqlite server answers 503 now and then; if that happens to the CSRF token request, the client must
not conclude "this server has no CSRF protection" and send its POSTs without a token (they would be refused
with 403 for good). Nor may a token that a busy server replaced (a slow earlier token request committed late)
end the client's work: a 403 from the CSRF check gets one new token and one more try. A real Prefect server
cannot be made to answer 503 or lose a token on demand, so this test stands a small local HTTP server in its
place: 503 on the first token requests, tokens per client id, and it records what each POST carried.
"""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from harness import StandInHandler, serving
from prefect_julia.core.prefect_http import ApiClient, ApiRefused


class FlakyCsrfServer(ThreadingHTTPServer):
    def __init__(self, token_failures: int, csrf: bool = True, lost_tokens: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.token_failures = token_failures
        self.csrf = csrf
        self.lost_tokens = lost_tokens  # how many issued tokens the "server" forgets before their first use
        self.tokens: dict[str, str] = {}  # client id -> its current token
        self.issued: list[str] = []  # the client id of each token handed out
        self.posts: list[dict[str, str | None]] = []
        self.url = ""  # set once it is serving


class Handler(StandInHandler):
    server: FlakyCsrfServer

    def do_GET(self) -> None:
        if not self.path.startswith("/api/csrf-token"):
            self.answer(404, {})
        elif not self.server.csrf:
            self.answer(422, {"detail": "CSRF protection is disabled."})
        elif self.server.token_failures > 0:
            self.server.token_failures -= 1
            self.answer(503, {"detail": "database is locked"})
        else:
            client = self.path.partition("client=")[2]
            token = f"t0k3n-{len(self.server.issued)}"
            self.server.tokens[client] = token
            self.server.issued.append(client)
            self.answer(200, {"token": token})

    def do_POST(self) -> None:
        self.read_body()
        token, client = self.headers.get("Prefect-Csrf-Token"), self.headers.get("Prefect-Csrf-Client") or ""
        self.server.posts.append({"path": self.path, "token": token})
        if self.server.csrf and self.server.lost_tokens > 0:
            self.server.lost_tokens -= 1
            self.server.tokens.pop(client, None)
        if self.server.csrf and (token is None or self.server.tokens.get(client) != token):
            self.answer(403, {"detail": "Invalid CSRF token or client identifier."})
        else:
            self.answer(200, {"ok": True})


@pytest.fixture
def serve() -> Iterator[Any]:
    with contextlib.ExitStack() as servers:

        def start(token_failures: int, csrf: bool = True, lost_tokens: int = 0) -> FlakyCsrfServer:
            server = FlakyCsrfServer(token_failures, csrf, lost_tokens)
            server.url = servers.enter_context(serving(server))
            return server

        yield start


def test_a_busy_token_request_is_retried_not_taken_for_no_csrf(serve: Any) -> None:
    server = serve(token_failures=1)
    client = ApiClient(server.url)
    with pytest.raises(urllib.error.HTTPError) as busy:
        client.request("POST", "/flows/filter", {})
    assert busy.value.code == 503 and server.posts == []  # nothing was sent without a token
    assert client.request("POST", "/flows/filter", {}) == {"ok": True}  # the next try fetches the token
    assert server.posts == [{"path": "/api/flows/filter", "token": "t0k3n-0"}]


def test_a_lost_token_is_fetched_again_under_a_new_client_id(serve: Any) -> None:
    server = serve(token_failures=0, lost_tokens=1)
    client = ApiClient(server.url)
    assert client.request("POST", "/flows/filter", {}) == {"ok": True}
    assert [post["token"] for post in server.posts] == ["t0k3n-0", "t0k3n-1"]
    assert len(set(server.issued)) == 2  # the second token was asked for under a new client id
    assert client.request("POST", "/flows/filter", {}) == {"ok": True}  # and it is kept for later requests
    assert len(server.issued) == 2


def test_a_token_refused_twice_is_reported_as_refused(serve: Any) -> None:
    server = serve(token_failures=0, lost_tokens=2)
    client = ApiClient(server.url)
    with pytest.raises(ApiRefused) as refused:
        client.request("POST", "/flows/filter", {})
    assert refused.value.status == 403 and len(server.posts) == 2


def test_a_server_without_csrf_gets_no_token(serve: Any) -> None:
    server = serve(token_failures=0, csrf=False)
    client = ApiClient(server.url)
    assert client.request("POST", "/flows/filter", {}) == {"ok": True}
    assert client.request("POST", "/flows/filter", {}) == {"ok": True}
    assert server.posts == [{"path": "/api/flows/filter", "token": None}] * 2
