"""An app behind the WAF on a real uvicorn server, with stand-in detectors and a recording audit.

The stand-in detectors (`FAKE`) flag a query or body field containing `' or 1=1` (managed) and
a missing or scanner User-Agent (bot), so that the engine's paths are tested independently of
the real detector set. Uvicorn's own `X-Forwarded-For` handling (it believes loopback peers by
default) is turned off here, so that the WAF's trusted-proxy rule is what is tested.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry
from bastion.edge.engine import Detectors
from bastion.edge.middleware import protect
from bastion.edge.request import InspectedRequest, parse_request
from bastion.edge.rules import RuleMatch
from bastion.testing import serve_in_thread


def fake_managed(req: InspectedRequest) -> list[RuleMatch]:
    found = []
    for where, pairs in (("query", req.query), ("body", req.body_fields)):
        for name, value in pairs:
            if "' or 1=1" in value.lower():
                found.append(RuleMatch("managed.sqli.test", "managed", f"{where}:{name}"))
    return found


def fake_bot(req: InspectedRequest) -> list[RuleMatch]:
    ua = (req.user_agent or "").strip()
    if not ua:
        return [RuleMatch("bot.missing_user_agent", "bot", "header:user-agent")]
    if "sqlmap" in ua.lower():
        return [RuleMatch("bot.scanner_user_agent", "bot", "header:user-agent")]
    return []


FAKE = Detectors(parse=parse_request, managed=fake_managed, bot=fake_bot)


@dataclass
class RecordingAudit:
    entries: list[AuditEntry] = field(default_factory=list)

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


@dataclass
class Seen:
    """What the app behind the WAF received."""

    bodies: list[bytes] = field(default_factory=list)
    correlation_ids: list[str | None] = field(default_factory=list)


def echo_app(seen: Seen) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        seen.bodies.append(body)
        seen.correlation_ids.append(request.headers.get("x-correlation-id"))
        return JSONResponse({"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)})

    async def events(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    return Starlette(
        routes=[
            Route("/healthz", echo, methods=["GET"]),
            Route("/message", echo, methods=["POST"]),
            Route("/api/documents", echo, methods=["GET", "POST"]),
            Route("/api/documents/{id}", echo, methods=["GET"]),
            WebSocketRoute("/ws/events", events),
        ]
    )


@dataclass
class Edge:
    url: str
    port: int
    seen: Seen
    audit: RecordingAudit


@contextmanager
def waf_server(
    configure: Callable[[Settings], None] | None = None, *, agent: str = "edge-test"
) -> Iterator[Edge]:
    settings = Settings()
    if configure is not None:
        configure(settings)
    seen, audit = Seen(), RecordingAudit()
    app = protect(echo_app(seen), settings, agent=agent, audit=audit, detectors=FAKE)
    with serve_in_thread(app) as srv:
        yield Edge(srv.url, srv.port, seen, audit)


@pytest.fixture
def edge() -> Iterator[Edge]:
    with waf_server() as srv:
        yield srv


def raw_exchange(port: int, head: bytes, chunks: Iterator[bytes] = iter(())) -> tuple[int, bytes]:
    """Send a request head and then body chunks over a plain socket, stopping early if the
    server answers or closes; the status code and the response bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            if not part:
                break
            data += part
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head_part.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            part = sock.recv(65536)
            if not part:
                break
            rest += part
    return int(head_part.split(b" ", 2)[1]), rest
