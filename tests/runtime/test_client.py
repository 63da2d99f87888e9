"""AgentClient against small agents served over real HTTP on loopback.

Every fake agent counts the requests it receives, so the tests can tell a retry from a
fail-fast and a shared token refresh from one per call. Sleeps and clocks are injected.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion._version import __version__
from bastion.config import ClientSettings, TLSSettings
from bastion.core.context import correlation_id_var, valid_correlation_id
from bastion.protocol.errors import (
    FORBIDDEN,
    INVALID_AGENT_RESPONSE,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RATE_LIMITED,
    SECURITY_UNAVAILABLE,
    UNAUTHENTICATED,
)
from bastion.runtime.breaker import BreakerOpen, BreakerState, CircuitBreaker
from bastion.runtime.client import (
    AgentClient,
    AgentUnreachable,
    RateLimitStatus,
    RpcCallError,
    client_ssl_context,
    parse_rate_limit,
    parse_retry_after,
    result_text,
    tls_context_from_settings,
)
from bastion.security.secrets import SecretValue
from bastion.testing.live_server import serve_in_thread
from bastion.testing.ports import closed_port_url

API_KEY = "bk_test_0123456789abcdef"


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (so type narrowing does not carry across calls)."""
    return breaker.state


# -- fakes ---------------------------------------------------------------------------------


@dataclass
class Seen:
    headers: dict[str, str]
    body: Any
    peer_port: int


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


Handler = Callable[[Seen, int], Awaitable[Response]]


def rpc_result(rid: Any, result: Any, **headers: str) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result}, 200, headers)


def rpc_error(
    rid: Any, code: int, message: str, status: int = 200, data: Any = None, **headers: str
) -> Response:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "id": rid, "error": err}, status, headers)


async def echo_handler(seen: Seen, n: int) -> Response:
    """Answers every call with what it received: method, params and the correlation ID."""
    body = seen.body

    def answer(req: dict[str, Any]) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": req.get("id"),
            "result": {
                "method": req["method"],
                "params": req.get("params"),
                "correlation_id": seen.headers.get("x-correlation-id"),
            },
        }

    if isinstance(body, list):
        return JSONResponse([answer(r) for r in body if "id" in r])
    if "id" not in body:
        return Response(status_code=204)
    return JSONResponse(answer(body))


@dataclass
class FakeAgent:
    handler: Handler = echo_handler
    token_endpoint: bool = False
    token_ttl: int = 100
    message_calls: list[Seen] = field(default_factory=list)
    token_calls: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        routes = [Route("/message", self._message, methods=["POST"])]
        if self.token_endpoint:
            routes.append(Route("/oauth/token", self._token, methods=["POST"]))
        return Starlette(routes=routes)

    @staticmethod
    async def _seen(request: Request, *, json_body: bool) -> Seen:
        raw = await request.body()
        client = request.client
        return Seen(
            headers=dict(request.headers),
            body=orjson.loads(raw) if json_body else raw.decode(),
            peer_port=client.port if client else 0,
        )

    async def _message(self, request: Request) -> Response:
        seen = await self._seen(request, json_body=True)
        self.message_calls.append(seen)
        if self.token_endpoint:
            auth = seen.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ")
            if not auth.startswith("Bearer ") or token not in self.issued or token in self.revoked:
                rid = seen.body.get("id") if isinstance(seen.body, dict) else None
                return rpc_error(rid, UNAUTHENTICATED, "Unauthenticated", 401)
        return await self.handler(seen, len(self.message_calls) - 1)

    async def _token(self, request: Request) -> Response:
        seen = await self._seen(request, json_body=False)
        self.token_calls.append(seen)
        if seen.headers.get("x-api-key") != API_KEY:
            return JSONResponse({"error": "invalid_client"}, 401)
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fast_settings(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "max_retries": 3,
        "backoff_base_seconds": 0.1,
        "backoff_max_seconds": 1.0,
        "breaker_failure_threshold": 100,
        "breaker_reset_seconds": 10.0,
    }
    values.update(overrides)
    return ClientSettings(**values)


@pytest.fixture
def fake() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def served(fake: FakeAgent) -> Iterator[str]:
    with serve_in_thread(fake.app()) as srv:
        yield srv.url


# -- headers and plain calls ---------------------------------------------------------------


async def test_call_sends_standard_headers_and_context_correlation_id(
    fake: FakeAgent, served: str
) -> None:
    token = correlation_id_var.set("corr-from-context-123")
    try:
        async with AgentClient(served) as client:
            result = await client.call("echo", {"message": "hi"})
    finally:
        correlation_id_var.reset(token)
    assert result == {
        "method": "echo",
        "params": {"message": "hi"},
        "correlation_id": "corr-from-context-123",
    }
    headers = fake.message_calls[0].headers
    assert headers["x-correlation-id"] == "corr-from-context-123"
    assert headers["a2a-version"] == "1.0"
    assert headers["user-agent"] == f"bastion-agent-client/{__version__}"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers and "x-api-key" not in headers
    assert fake.message_calls[0].body["jsonrpc"] == "2.0"


async def test_new_correlation_id_per_call_without_context(fake: FakeAgent, served: str) -> None:
    assert correlation_id_var.get() is None
    async with AgentClient(served, headers={"X-Extra": "1"}) as client:
        first = await client.call("echo")
        second = await client.call("echo")
    assert valid_correlation_id(first["correlation_id"])
    assert valid_correlation_id(second["correlation_id"])
    assert first["correlation_id"] != second["correlation_id"]
    assert first["params"] is None
    assert "params" not in fake.message_calls[0].body
    assert fake.message_calls[0].headers["x-extra"] == "1"


async def test_connections_are_kept_alive_and_reused(fake: FakeAgent, served: str) -> None:
    async with AgentClient(served) as client:
        for _ in range(5):
            await client.call("echo")
    assert len({seen.peer_port for seen in fake.message_calls}) == 1


async def test_timeouts_come_from_settings() -> None:
    settings = ClientSettings(timeout_seconds=7.5, connect_timeout_seconds=1.5)
    async with AgentClient("http://127.0.0.1:1", settings=settings) as client:
        timeout = client._http.timeout
    assert (timeout.connect, timeout.read, timeout.write) == (1.5, 7.5, 7.5)


async def test_jsonrpc_error_raised_and_not_retried(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(seen.body["id"], INVALID_PARAMS, "Invalid params", data={"field": "x"})

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=fast_settings(), sleep=sleeps) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo", {})
    err = exc.value
    assert (err.code, err.message, err.data, err.http_status) == (
        INVALID_PARAMS,
        "Invalid params",
        {"field": "x"},
        200,
    )
    assert len(agent.message_calls) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("status", "code"), [(403, FORBIDDEN), (401, UNAUTHENTICATED), (413, -32043), (400, -32600)]
)
async def test_client_errors_are_not_retried(sleeps: Sleeps, status: int, code: int) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(seen.body["id"], code, "denied", status)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=fast_settings(), sleep=sleeps) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
    assert (exc.value.code, exc.value.http_status) == (code, status)
    assert len(agent.message_calls) == 1
    assert sleeps.delays == []


async def test_non_jsonrpc_error_answer_maps_status_to_code() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return Response("nope", status_code=403, media_type="text/plain")

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
    assert (exc.value.code, exc.value.http_status) == (FORBIDDEN, 403)


async def test_mismatched_response_id_is_rejected() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_result("someone-else", 1)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
    assert exc.value.code == INVALID_AGENT_RESPONSE


# -- retries -------------------------------------------------------------------------------


async def test_retries_503_then_succeeds(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        if n < 2:
            return rpc_error(seen.body["id"], SECURITY_UNAVAILABLE, "Service unavailable", 503)
        return rpc_result(seen.body["id"], "ok")

    agent = FakeAgent(handler)
    settings = fast_settings(backoff_base_seconds=0.1, backoff_max_seconds=1.0)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=settings, sleep=sleeps) as client:
            assert await client.call("echo") == "ok"
    assert len(agent.message_calls) == 3
    assert len(sleeps.delays) == 2
    # Full jitter: attempt k waits in [0, min(max, base * 2**k)].
    assert 0.0 <= sleeps.delays[0] <= 0.1
    assert 0.0 <= sleeps.delays[1] <= 0.2
    # Every attempt is the same call: same body, same correlation ID.
    assert len({orjson.dumps(s.body) for s in agent.message_calls}) == 1
    assert len({s.headers["x-correlation-id"] for s in agent.message_calls}) == 1


async def test_503_retries_are_bounded(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(seen.body["id"], SECURITY_UNAVAILABLE, "Service unavailable", 503)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(
            srv.url, settings=fast_settings(max_retries=2), sleep=sleeps
        ) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
    assert (exc.value.code, exc.value.http_status) == (SECURITY_UNAVAILABLE, 503)
    assert len(agent.message_calls) == 3
    assert len(sleeps.delays) == 2


async def test_429_waits_at_least_retry_after_and_exposes_quota(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        if n == 0:
            return rpc_error(
                seen.body["id"],
                RATE_LIMITED,
                "Rate limited",
                429,
                **{
                    "Retry-After": "3",
                    "RateLimit-Policy": '"default";q=10;w=60',
                    "RateLimit": '"default";r=0;t=3',
                },
            )
        return rpc_result(
            seen.body["id"],
            "ok",
            **{"RateLimit-Policy": '"default";q=10;w=60', "RateLimit": '"default";r=9;t=60'},
        )

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=fast_settings(), sleep=sleeps) as client:
            assert await client.call("echo") == "ok"
            quota = client.last_rate_limit
    assert len(agent.message_calls) == 2
    assert len(sleeps.delays) == 1
    assert sleeps.delays[0] >= 3.0
    assert quota == RateLimitStatus(remaining=9, reset=60, policy="default", limit=10, window=60)


async def test_429_with_too_long_retry_after_is_returned_to_the_caller(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(
            seen.body["id"], RATE_LIMITED, "Rate limited", 429, **{"Retry-After": "120"}
        )

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(
            srv.url, settings=fast_settings(), sleep=sleeps, max_retry_after=30
        ) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
    assert (exc.value.code, exc.value.http_status, exc.value.retry_after) == (
        RATE_LIMITED,
        429,
        120.0,
    )
    assert len(agent.message_calls) == 1
    assert sleeps.delays == []


async def test_connection_refused_is_retried_then_raises(sleeps: Sleeps) -> None:
    url = closed_port_url()
    async with AgentClient(url, settings=fast_settings(max_retries=3), sleep=sleeps) as client:
        with pytest.raises(AgentUnreachable) as exc:
            await client.call("echo")
    assert exc.value.attempts == 4
    assert exc.value.sent is False
    assert isinstance(exc.value.__cause__, httpx.ConnectError)
    assert len(sleeps.delays) == 3


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
async def test_failures_after_sending_are_not_retried(sleeps: Sleeps, error: Exception) -> None:
    sent: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise error

    transport = httpx.MockTransport(respond)
    async with AgentClient(
        "http://agent.test", transport=transport, settings=fast_settings(), sleep=sleeps
    ) as client:
        with pytest.raises(AgentUnreachable) as exc:
            await client.call("echo")
    assert exc.value.sent is True
    assert len(sent) == 1
    assert sleeps.delays == []


# -- circuit breaker -----------------------------------------------------------------------


async def test_breaker_opens_fails_fast_half_opens_and_closes(
    sleeps: Sleeps, clock: FakeClock
) -> None:
    healthy = {"value": False}

    async def handler(seen: Seen, n: int) -> Response:
        if healthy["value"]:
            return rpc_result(seen.body["id"], "ok")
        return rpc_error(seen.body["id"], SECURITY_UNAVAILABLE, "Service unavailable", 503)

    agent = FakeAgent(handler)
    settings = fast_settings(max_retries=0, breaker_failure_threshold=3, breaker_reset_seconds=10.0)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=settings, sleep=sleeps, clock=clock) as client:
            for _ in range(3):
                with pytest.raises(RpcCallError):
                    await client.call("echo")
            assert state_of(client.breaker) is BreakerState.OPEN
            assert len(agent.message_calls) == 3

            with pytest.raises(BreakerOpen):
                await client.call("echo")
            assert len(agent.message_calls) == 3  # failed fast, nothing sent

            clock.now += 10.0
            assert state_of(client.breaker) is BreakerState.HALF_OPEN
            with pytest.raises(RpcCallError):
                await client.call("echo")  # the trial fails: open again
            assert len(agent.message_calls) == 4
            assert state_of(client.breaker) is BreakerState.OPEN
            with pytest.raises(BreakerOpen):
                await client.call("echo")

            healthy["value"] = True
            clock.now += 10.0
            assert await client.call("echo") == "ok"  # the trial succeeds: closed
            assert state_of(client.breaker) is BreakerState.CLOSED
            assert await client.call("echo") == "ok"
    assert len(agent.message_calls) == 6


async def test_breaker_counts_connection_failures_and_stops_retries(
    sleeps: Sleeps, clock: FakeClock
) -> None:
    settings = fast_settings(max_retries=5, breaker_failure_threshold=2)
    async with AgentClient(
        closed_port_url(), settings=settings, sleep=sleeps, clock=clock
    ) as client:
        with pytest.raises(BreakerOpen):
            await client.call("echo")
        assert len(sleeps.delays) == 2  # two failures, then the breaker refused the third try


async def test_breaker_ignores_jsonrpc_errors_and_rate_limits(clock: FakeClock) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        if n % 2:
            return rpc_error(seen.body["id"], RATE_LIMITED, "Rate limited", 429)
        return rpc_error(seen.body["id"], METHOD_NOT_FOUND, "Method not found")

    agent = FakeAgent(handler)
    settings = fast_settings(max_retries=0, breaker_failure_threshold=1)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=settings, clock=clock) as client:
            for _ in range(4):
                with pytest.raises(RpcCallError):
                    await client.call("nope")
            assert state_of(client.breaker) is BreakerState.CLOSED


async def test_shared_breaker_between_clients(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    url = closed_port_url()
    settings = fast_settings(max_retries=0)
    async with AgentClient(url, settings=settings, breaker=breaker) as a:
        with pytest.raises(AgentUnreachable):
            await a.call("echo")
    async with AgentClient(url, settings=settings, breaker=breaker) as b:
        with pytest.raises(BreakerOpen):
            await b.call("echo")


# -- credentials ---------------------------------------------------------------------------


async def test_token_exchanged_once_for_many_calls_and_refreshed_near_expiry(
    clock: FakeClock,
) -> None:
    agent = FakeAgent(token_endpoint=True, token_ttl=100)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, api_key=API_KEY, clock=clock) as client:
            await asyncio.gather(*(client.call("echo", {"i": i}) for i in range(20)))
            assert len(agent.token_calls) == 1
            assert {s.headers["authorization"] for s in agent.message_calls} == {"Bearer tok-1"}
            assert all("x-api-key" not in s.headers for s in agent.message_calls)

            clock.now += 79.0
            await client.call("echo")
            assert len(agent.token_calls) == 1

            clock.now += 2.0  # past 80% of the lifetime
            await asyncio.gather(*(client.call("echo") for _ in range(5)))
            assert len(agent.token_calls) == 2
            assert agent.message_calls[-1].headers["authorization"] == "Bearer tok-2"
    token_req = agent.token_calls[0]
    assert token_req.headers["x-api-key"] == API_KEY
    assert token_req.body == "grant_type=client_credentials"
    assert token_req.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_rejected_token_is_refreshed_once_and_the_call_retried() -> None:
    agent = FakeAgent(token_endpoint=True)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, api_key=SecretValue(API_KEY)) as client:
            await client.call("echo")
            agent.revoked.add("tok-1")
            result = await client.call("echo", {"again": True})
            assert result["params"] == {"again": True}
            assert len(agent.token_calls) == 2
            assert [s.headers["authorization"] for s in agent.message_calls] == [
                "Bearer tok-1",
                "Bearer tok-1",
                "Bearer tok-2",
            ]

            # Still rejected after the refresh: one refresh, one retry, then the error.
            agent.revoked.update({"tok-2", "tok-3"})
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
            assert (exc.value.code, exc.value.http_status) == (UNAUTHENTICATED, 401)
            assert len(agent.token_calls) == 3
            assert len(agent.message_calls) == 5


async def test_falls_back_to_api_key_without_a_token_endpoint(fake: FakeAgent, served: str) -> None:
    async with AgentClient(served, api_key=API_KEY) as client:
        await client.call("echo")
        await client.call("echo")
        assert client.auth_mode == "api_key"
    assert [s.headers.get("x-api-key") for s in fake.message_calls] == [API_KEY, API_KEY]
    assert all("authorization" not in s.headers for s in fake.message_calls)


async def test_use_tokens_false_sends_the_api_key(fake: FakeAgent, served: str) -> None:
    async with AgentClient(served, api_key=API_KEY, use_tokens=False) as client:
        await client.call("echo")
    assert fake.message_calls[0].headers["x-api-key"] == API_KEY


async def test_separate_token_url() -> None:
    issuer = FakeAgent(token_endpoint=True)
    agent = FakeAgent()
    with serve_in_thread(issuer.app()) as tok_srv, serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, api_key=API_KEY, token_url=tok_srv.url) as client:
            await client.call("echo")
    assert len(issuer.token_calls) == 1
    assert agent.message_calls[0].headers["authorization"] == "Bearer tok-1"


async def test_bad_key_is_reported_without_leaking_it() -> None:
    agent = FakeAgent(token_endpoint=True)
    wrong = "bk_wrong_key_that_must_not_leak"
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, api_key=wrong) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
            assert wrong not in repr(client)
    err = exc.value
    assert (err.code, err.http_status) == (UNAUTHENTICATED, 401)
    assert "invalid_client" in str(err)
    for text in (str(err), repr(err), repr(err.data)):
        assert wrong not in text
    assert agent.message_calls == []


async def test_token_never_in_repr_or_errors() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(seen.body["id"], FORBIDDEN, "Forbidden", 403)

    agent = FakeAgent(handler, token_endpoint=True)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, api_key=API_KEY) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo")
            text = repr(client) + str(exc.value) + repr(exc.value) + repr(vars(client))
    assert "tok-1" not in text
    assert API_KEY not in text


# -- notifications, batches, streams -------------------------------------------------------


async def test_notify_sends_no_id(fake: FakeAgent, served: str) -> None:
    async with AgentClient(served) as client:
        await client.notify("echo", {"message": "x"})
    assert "id" not in fake.message_calls[0].body


async def test_notify_refused_raises() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(None, FORBIDDEN, "Forbidden", 403)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.notify("echo")
    assert exc.value.code == FORBIDDEN


async def test_batch_returns_results_and_errors_in_order() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        out = []
        for req in reversed(seen.body):  # answers may come in any order
            if req["method"] == "bad":
                out.append(
                    {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "no"}}
                )
            else:
                out.append({"jsonrpc": "2.0", "id": req["id"], "result": req["params"]})
        return JSONResponse(out)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            results = await client.batch([("a", {"n": 1}), ("bad", None), ("c", [3])])
            assert await client.batch([]) == []
    assert results[0] == {"n": 1}
    assert isinstance(results[1], RpcCallError) and results[1].code == METHOD_NOT_FOUND
    assert results[2] == [3]
    assert len(agent.message_calls) == 1
    assert len(agent.message_calls[0].body) == 3


async def test_batch_refused_as_a_whole_raises() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        return rpc_error(None, UNAUTHENTICATED, "Unauthenticated", 401)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.batch([("a", None)])
    assert exc.value.http_status == 401


def sse(events: list[bytes]) -> StreamingResponse:
    async def body() -> Any:
        for chunk in events:
            yield chunk

    return StreamingResponse(body(), media_type="text/event-stream")


async def test_stream_parses_sse_events() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        rid = seen.body["id"]
        frames = [
            b": keep-alive comment\n\n",
            b"data: " + orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": {"n": 1}}) + b"\n\n",
            # One event split over two data lines, and CRLF line ends.
            b'data: {"jsonrpc": "2.0", "id": ' + str(rid).encode() + b",\r\n",
            b'data:  "result": {"n": 2}}\r\n\r\n',
            b"data: " + orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": {"n": 3}}) + b"\n\n",
        ]
        return sse(frames)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            items = [item async for item in client.stream("SendStreamingMessage", {"x": 1})]
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert agent.message_calls[0].headers["accept"] == "text/event-stream"


async def test_stream_error_event_raises_after_earlier_items() -> None:
    async def handler(seen: Seen, n: int) -> Response:
        rid = seen.body["id"]
        err = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "boom"}}
        return sse(
            [
                b"data: " + orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": 1}) + b"\n\n",
                b"data: " + orjson.dumps(err) + b"\n\n",
            ]
        )

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url) as client:
            got: list[Any] = []
            with pytest.raises(RpcCallError) as exc:
                async for item in client.stream("s"):
                    got.append(item)
    assert got == [1]
    assert exc.value.code == -32603


async def test_stream_refused_before_streaming_raises(sleeps: Sleeps) -> None:
    async def handler(seen: Seen, n: int) -> Response:
        if n == 0:
            return rpc_error(seen.body["id"], SECURITY_UNAVAILABLE, "Service unavailable", 503)
        return rpc_error(seen.body["id"], FORBIDDEN, "Forbidden", 403)

    agent = FakeAgent(handler)
    with serve_in_thread(agent.app()) as srv:
        async with AgentClient(srv.url, settings=fast_settings(), sleep=sleeps) as client:
            with pytest.raises(RpcCallError) as exc:
                async for _ in client.stream("s"):
                    pass
    assert exc.value.http_status == 403
    assert len(agent.message_calls) == 2  # the 503 was retried, the 403 was not


async def test_send_message_and_get_task_shapes(fake: FakeAgent, served: str) -> None:
    async with AgentClient(served) as client:
        sent = await client.send_message("hello", message_id="m-1", context_id="c-1", task_id="t-1")
        task = await client.get_task("t-1", history_length=2)
    assert sent["method"] == "SendMessage"
    assert sent["params"] == {
        "message": {
            "messageId": "m-1",
            "role": "ROLE_USER",
            "parts": [{"text": "hello"}],
            "contextId": "c-1",
            "taskId": "t-1",
        }
    }
    assert task["method"] == "GetTask"
    assert task["params"] == {"id": "t-1", "historyLength": 2}


def test_build_message_generates_an_id() -> None:
    a = AgentClient.build_message("x")
    b = AgentClient.build_message("x")
    assert a["messageId"] != b["messageId"]
    assert set(a) == {"messageId", "role", "parts"}


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.bastion.test")
    paths = {
        "ca": d / "ca.pem",
        "server_cert": d / "server.pem",
        "server_key": d / "server.key",
        "client_cert": d / "client.pem",
        "client_key": d / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return paths


async def test_mtls_with_client_certificate(pki: dict[str, Path], sleeps: Sleeps) -> None:
    agent = FakeAgent()
    options = {
        "ssl_certfile": str(pki["server_cert"]),
        "ssl_keyfile": str(pki["server_key"]),
        "ssl_ca_certs": str(pki["ca"]),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serve_in_thread(agent.app(), ssl_options=options) as srv:
        assert srv.url.startswith("https://")
        with_cert = client_ssl_context(
            ca_file=pki["ca"], certfile=pki["client_cert"], keyfile=pki["client_key"]
        )
        async with AgentClient(srv.url, ssl_context=with_cert) as client:
            assert (await client.call("echo"))["method"] == "echo"

        from_settings = tls_context_from_settings(
            TLSSettings(
                ca_file="ca.pem", client_certfile="client.pem", client_keyfile="client.key"
            ),
            resolve=lambda p: pki["ca"].parent / p,
        )
        async with AgentClient(srv.url, ssl_context=from_settings) as client:
            assert (await client.call("echo"))["method"] == "echo"

        without_cert = client_ssl_context(ca_file=pki["ca"])
        async with AgentClient(
            srv.url, ssl_context=without_cert, settings=fast_settings(), sleep=sleeps
        ) as client:
            with pytest.raises(AgentUnreachable):
                await client.call("echo")

        # A server certificate from an unknown CA is refused, and not retried.
        async with AgentClient(
            srv.url, ssl_context=client_ssl_context(), settings=fast_settings(), sleep=sleeps
        ) as client:
            with pytest.raises(AgentUnreachable) as exc:
                await client.call("echo")
            assert exc.value.attempts == 1
    assert len(agent.message_calls) == 2
    assert tls_context_from_settings(TLSSettings()) is None


# -- against a real Bastion agent --------------------------------------------------------


@pytest.fixture
def bastion_echo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The echo agent behind the full security stack, with a quota of 5 calls a minute."""
    from bastion.agents.echo import echo_definition
    from bastion.config import load_settings
    from bastion.project import init_project
    from bastion.runtime.agent import AgentApp

    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.rate_limit.default = "5/minute"
    with serve_in_thread(AgentApp(echo_definition(), settings)) as srv:
        yield srv.url, res.admin_key


async def test_bastion_agent_tokens_quota_and_rate_limit(
    bastion_echo: tuple[str, str], sleeps: Sleeps
) -> None:
    url, admin_key = bastion_echo
    settings = fast_settings(max_retries=1)
    remaining: list[int] = []
    async with AgentClient(
        url, api_key=admin_key, settings=settings, sleep=sleeps, max_retry_after=3600
    ) as client:
        for i in range(5):
            result = await client.call("echo", {"message": f"m{i}"})
            assert result["message"] == f"m{i}"
            assert client.last_rate_limit is not None
            remaining.append(client.last_rate_limit.remaining)
        assert client.auth_mode == "bearer"
        with pytest.raises(RpcCallError) as exc:
            await client.call("echo", {"message": "one too many"})
    assert remaining == [4, 3, 2, 1, 0]
    err = exc.value
    assert (err.code, err.http_status) == (RATE_LIMITED, 429)
    assert err.retry_after is not None and err.retry_after > 0
    # One retry, after waiting at least what the agent asked for.
    assert len(sleeps.delays) == 1
    assert sleeps.delays[0] >= err.retry_after


async def test_bastion_agent_rejects_a_wrong_key(bastion_echo: tuple[str, str]) -> None:
    url, _ = bastion_echo
    for use_tokens in (True, False):
        async with AgentClient(url, api_key="bst_wrong", use_tokens=use_tokens) as client:
            with pytest.raises(RpcCallError) as exc:
                await client.call("echo", {"message": "x"})
        assert (exc.value.code, exc.value.http_status) == (UNAUTHENTICATED, 401)


# -- helpers -------------------------------------------------------------------------------


def test_parse_rate_limit_variants() -> None:
    assert parse_rate_limit({}) is None
    assert parse_rate_limit({"ratelimit": '"p";r=4;t=9'}) == RateLimitStatus(4, 9, "p")
    assert parse_rate_limit({"ratelimit": "limit=10, remaining=2, reset=30"}) == RateLimitStatus(
        2, 30, None, 10
    )
    assert parse_rate_limit({"ratelimit": "garbage"}) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_result_text() -> None:
    message = {"message": {"parts": [{"text": "a"}, {"data": {}}, {"text": "b"}]}}
    assert result_text(message) == "a\nb"
    task = {"task": {"artifacts": [{"parts": [{"text": "out"}]}], "status": {}}}
    assert result_text(task) == "out"
    status_only = {"task": {"status": {"message": {"parts": [{"text": "s"}]}}}}
    assert result_text(status_only) == "s"
    assert result_text(None) == ""
