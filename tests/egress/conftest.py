"""Fixtures: small recording HTTP servers on 127.0.0.1, and resolvers that answer from a
table instead of DNS."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bastion.testing.live_server import serve_in_thread


@dataclass(frozen=True)
class Seen:
    """One request a server received: its path, its Host header, the peer's address."""

    path: str
    host: str
    client: str


@dataclass
class Recorder:
    """A server that answers "ok", or redirects to `?to=...` (`/loop` to itself); `seen`
    lists what it got."""

    url: str = ""
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle)])

    async def _handle(self, request: Request) -> Response:
        peer = request.client.host if request.client else ""
        self.seen.append(Seen(request.url.path, request.headers.get("host", ""), peer))
        target = request.query_params.get("to") or ("/loop" if request.url.path == "/loop" else "")
        if target:
            return RedirectResponse(target, status_code=302)
        return PlainTextResponse("ok")


def serve(ssl_options: dict[str, str] | None = None) -> Iterator[Recorder]:
    """Run a `Recorder` on 127.0.0.1 (over TLS with `ssl_options`) until closed."""
    recorder = Recorder()
    with serve_in_thread(recorder.app(), ssl_options=ssl_options) as server:
        recorder.url, recorder.port = server.url, server.port
        yield recorder


@pytest.fixture(scope="module")
def _server_a() -> Iterator[Recorder]:
    yield from serve()


@pytest.fixture(scope="module")
def _server_b() -> Iterator[Recorder]:
    yield from serve()


@pytest.fixture
def server(_server_a: Recorder) -> Recorder:
    """A recording server, with nothing recorded yet."""
    _server_a.seen.clear()
    return _server_a


@pytest.fixture
def other_server(_server_b: Recorder) -> Recorder:
    """A second recording server, on another port."""
    _server_b.seen.clear()
    return _server_b


class TableResolver:
    """Answers host names from a table of answers, one per call (the last one repeats);
    `calls` records every lookup."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]]) -> None:
        self._answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answers = self._answers.get(host)
        if answers is None:
            raise OSError(f"unknown host {host}")
        asked = sum(1 for name, _ in self.calls if name == host)
        return list(answers[min(asked, len(answers)) - 1])
