"""A Tavily search API stand-in, for tests: `POST /search` with the real request and answer
shapes, and failures on demand.

The API key must come as `Authorization: Bearer <key>` (compared in constant time), else 401.
The body must hold a non-empty `query`, `max_results` (1 to 20) and `search_depth` (`basic` or
`advanced`), else 400. A good request is answered with the configured `results`, at most
`max_results` of them. Injected faults are used up one per request, in order: `fail` (an HTTP
error status with Tavily's error body), `malformed` (a 200 whose body is not JSON), `slow` (the
normal answer, after a wait that `release()` ends early). `received` counts requests as they
arrive (before any wait) and `bodies` / `authorizations` keep what they carried.

    with fake_tavily_server("tvly-test-key", results=[{"title": ..., "url": ...}]) as fake:
        ...  # point the provider at fake.url
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.testing.live_server import serve_in_thread

__all__ = ["FakeTavily", "fake_tavily_server"]

_DEPTHS = ("basic", "advanced")


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str  # "status", "malformed" or "slow"
    status: int = 200
    detail: str = ""
    seconds: float = 0.0


class FakeTavily:
    """`POST /search` answering `results` to requests carrying `api_key`."""

    def __init__(self, api_key: str, results: list[dict[str, Any]] | None = None) -> None:
        self.api_key = api_key
        self.url = ""  # set by `fake_tavily_server`
        self.results: list[dict[str, Any]] = list(results or [])
        self.received = 0
        self.bodies: list[Any] = []
        self.authorizations: list[str] = []
        self._faults: deque[_Fault] = deque()
        self._released = threading.Event()
        self.app = Starlette(routes=[Route("/search", self._search, methods=["POST"])])

    def fail(self, status: int = 503, *, times: int = 1, detail: str = "") -> None:
        """Answer the next `times` requests with HTTP `status` (and `detail` as the error)."""
        self._inject(_Fault("status", status=status, detail=detail), times)

    def malformed(self, *, times: int = 1) -> None:
        """Answer the next `times` requests 200 with a body that is not JSON."""
        self._inject(_Fault("malformed"), times)

    def slow(self, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` requests normally, after `seconds` (or at `release()`)."""
        self._released.clear()
        self._inject(_Fault("slow", seconds=seconds), times)

    def release(self) -> None:
        """End the waits of slow answers now (call it before stopping the server)."""
        self._released.set()

    def clear(self) -> None:
        """Drop the faults no request has taken: one meant for a request that its client gave
        up on before sending it (a short client timeout on busy cores)."""
        self._faults.clear()

    def _inject(self, fault: _Fault, times: int) -> None:
        self._faults.extend([fault] * times)

    async def _search(self, request: Request) -> Response:
        self.received += 1
        fault = self._faults.popleft() if self._faults else None
        given = request.headers.get("authorization", "")
        self.authorizations.append(given)
        raw = await request.body()
        body = _json_or_none(raw)
        self.bodies.append(body)
        if fault is not None and fault.kind == "slow":
            await self._wait(fault.seconds)
        if fault is not None and fault.kind == "status":
            return _error(fault.status, fault.detail or "the fake was told to fail")
        if fault is not None and fault.kind == "malformed":
            return Response(b'{"results": [', media_type="application/json")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            return _error(401, "Unauthorized: missing or invalid API key.")
        problem = _bad_request(body)
        if problem:
            return _error(400, problem)
        assert isinstance(body, dict)  # _bad_request checked it
        return JSONResponse(
            {
                "query": body["query"],
                "answer": None,
                "images": [],
                "results": self.results[: body["max_results"]],
                "response_time": 0.01,
            }
        )

    async def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _bad_request(body: Any) -> str:
    """What is wrong with a search body, or an empty string."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return "query is missing"
    max_results = body.get("max_results")
    if not isinstance(max_results, int) or not 1 <= max_results <= 20:
        return "max_results must be an integer from 1 to 20"
    if body.get("search_depth") not in _DEPTHS:
        return "search_depth must be basic or advanced"
    return ""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"error": message}}, status_code=status)


@contextmanager
def fake_tavily_server(
    api_key: str, results: list[dict[str, Any]] | None = None
) -> Iterator[FakeTavily]:
    """Serve a `FakeTavily` on 127.0.0.1 and a free port until the block exits (slow answers
    still waiting are released first)."""
    fake = FakeTavily(api_key, results)
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        try:
            yield fake
        finally:
            fake.release()
