"""Real local HTTP servers for the alarm tests: a `/metrics` endpoint serving the text a test
sets (behind an API key), and a webhook receiver that answers with the statuses a test queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bastion.testing.live_server import LiveServer, serve_in_thread

KEY = "bk_alarm-test-key"
REDIRECT_TO = "http://elsewhere.example/collect"


@dataclass
class MetricsSource:
    """What `/metrics` serves, and the API keys it saw."""

    text: str = ""
    status: int = 200
    keys: list[str | None] = field(default_factory=list)

    def app(self) -> Starlette:
        async def metrics(request: Request) -> Response:
            key = request.headers.get("x-api-key")
            self.keys.append(key)
            if key != KEY:
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            if self.status != 200:
                return PlainTextResponse("broken", status_code=self.status)
            return PlainTextResponse(self.text, media_type="text/plain; version=0.0.4")

        return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])


@contextmanager
def metrics_server(source: MetricsSource) -> Iterator[LiveServer]:
    with serve_in_thread(source.app()) as server:
        yield server


@dataclass
class Receiver:
    """A webhook receiver: answers each post with the next queued status (200 when none)."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.bodies.append(body)
                self.paths.append(request.url.path)
                status = self.statuses.pop(0) if self.statuses else 200
            if 300 <= status < 400:  # a redirect, somewhere the egress policy does not allow
                return Response(status_code=status, headers={"Location": REDIRECT_TO})
            return PlainTextResponse("ok" if status < 400 else "no", status_code=status)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


@contextmanager
def webhook_receiver(receiver: Receiver) -> Iterator[LiveServer]:
    with serve_in_thread(receiver.app()) as server:
        yield server


def exposition(**families: tuple[str, dict[tuple[tuple[str, str], ...], float]]) -> str:
    """Prometheus text: `name=(type, {labels: value})` per metric family."""
    lines = []
    for name, (kind, series) in families.items():
        sample = f"{name}_total" if kind == "counter" else name
        lines += [f"# HELP {name} test metric", f"# TYPE {name} {kind}"]
        for labels, value in series.items():
            shown = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{sample}{{{shown}}} {value}" if shown else f"{sample} {value}")
    return "\n".join(lines) + "\n"
