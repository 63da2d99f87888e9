"""Admission of the gateway's WebSockets (`/ws/events`, `/ws/research`): one code for both.

The credential is a Bastion API key or a JWT, sent either as the `token` query parameter or in
`Sec-WebSocket-Protocol` as `bastion.v1, bearer.<token>` (the server then selects `bastion.v1`,
which browsers require). `WsGuard` puts it through the gateway's security stack like any HTTP
call: authentication, authorization of `gateway.<action>`, the rate limit, and one audit record
per connection (status 101 when the stream starts, else the HTTP status of the refusal) and,
when the process traces, one server span with a child per security stage. A
refusal is an accepted handshake followed at once by a close, so that browsers see the code
instead of a failed handshake (1006): 4001 unauthenticated, 4003 forbidden, 4029 rate limited,
1013 a security service is unavailable. `WsGuard.hold` returns once an open stream's credential
lapses or its grant is withdrawn (`bastion.security.liveness.watch`).

`hide_query_token(app)`, the outermost layer of the gateway, takes a `token` out of a WebSocket
query string before anything else sees it: the query string becomes `token=[REDACTED]` in the
server's own scope (uvicorn quotes it in its log lines) and the token travels on in the scope
under `QUERY_TOKEN_KEY`. Nothing here logs a credential or a query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from bastion.core.context import (
    CallContext,
    RequestContext,
    correlation_id_var,
    incoming_ids,
    new_span_id,
    span_var,
)
from bastion.observability.tracing import current_tracing
from bastion.runtime import Guard, denied_error
from bastion.security import KEY_PREFIX, CredentialCheck, Denied, PolicyStore, log_rejection, watch

SUBPROTOCOL = "bastion.v1"
BEARER_PREFIX = "bearer."
TOKEN_PARAM = "token"  # noqa: S105 (a parameter name, not a secret)
REDACTED = "[REDACTED]"
QUERY_TOKEN_KEY = "bastion.query_token"  # noqa: S105 (a scope key, not a secret)
# How long a close frame may wait for a client that does not read (then the server lets go).
CLOSE_TIMEOUT_SECONDS = 10.0
# Headers that carry or may carry the credential: never copied into the request context.
_CREDENTIAL_HEADERS = frozenset({"sec-websocket-protocol", "x-api-key", "authorization"})


@dataclass(frozen=True, slots=True)
class Close:
    """How a stream ends: a WebSocket close code, a short reason for the client and, for a
    refusal, the HTTP status it stands for (in the audit record)."""

    code: int
    reason: str
    status: int = 0


UNAUTHENTICATED = Close(4001, "unauthenticated: send a valid API key or token", 401)
EXPIRED = Close(4001, "token expired: reconnect with a fresh token", 401)
LAPSED = Close(4001, "credential revoked or expired: reconnect with a valid one", 401)
SHUTTING_DOWN = Close(1001, "the gateway is shutting down")
BINARY = Close(1003, "binary messages are not accepted")


def iso_now() -> str:
    """The current time as an ISO 8601 UTC string (the `at` of pings and events)."""
    return datetime.fromtimestamp(time.time(), UTC).isoformat()


def _take_query_token(scope: MutableMapping[str, Any]) -> None:
    """Move `token` query parameters out of the query string (in place) to `QUERY_TOKEN_KEY`."""
    if QUERY_TOKEN_KEY in scope:
        return
    raw = scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(raw, keep_blank_values=True)
    tokens = [v for k, v in pairs if k == TOKEN_PARAM]
    scope[QUERY_TOKEN_KEY] = tokens
    if tokens:
        redacted = [(k, REDACTED if k == TOKEN_PARAM else v) for k, v in pairs]
        scope["query_string"] = urlencode(redacted).encode("latin-1")


def hide_query_token(app: ASGIApp) -> ASGIApp:
    """`app` behind a layer that takes the `token` out of WebSocket query strings (see above)."""

    async def hide(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            _take_query_token(scope)
        await app(scope, receive, send)

    return hide


def _tokens(ws: WebSocket) -> tuple[str | None, Close | None]:
    """The credential sent as query parameter or subprotocol, or why the request is refused."""
    offered: list[str] = list(ws.scope.get("subprotocols") or [])
    sent = [p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)]
    _take_query_token(ws.scope)  # when the app is served without `hide_query_token`
    sent += ws.scope[QUERY_TOKEN_KEY]
    headers = {k.decode("latin-1").lower() for k, _ in ws.scope["headers"]}
    if len(sent) > 1 or (sent and headers & {"x-api-key", "authorization"}):
        return None, Close(4001, "unauthenticated: send exactly one credential", 401)
    if any(p.startswith(BEARER_PREFIX) for p in offered) and SUBPROTOCOL not in offered:
        problem = f"unauthenticated: offer the {SUBPROTOCOL} subprotocol too"
        return None, Close(4001, problem, 401)
    return (sent[0].strip() if sent else None), None


def _request_context(ws: WebSocket, token: str | None) -> RequestContext:
    """The security stack's view of the handshake, the token in the header it would have
    travelled in over HTTP (`X-API-Key` for a Bastion key, else a bearer token)."""
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1")
        for k, v in ws.scope["headers"]
        if token is None or k.decode("latin-1").lower() not in _CREDENTIAL_HEADERS
    }
    headers.pop("sec-websocket-protocol", None)
    if token is not None:
        if token.startswith(KEY_PREFIX):
            headers["x-api-key"] = token
        else:
            headers["authorization"] = f"Bearer {token}"
    client = ws.client
    correlation_id, trace_id, parent = incoming_ids(headers)
    return RequestContext(
        agent="gateway",
        correlation_id=correlation_id,
        client=f"{client.host}:{client.port}" if client else "-",
        headers=headers,
        trace_id=trace_id,
        parent_span_id=parent,
        span_id=new_span_id(),
    )


async def close(ws: WebSocket, how: Close) -> None:
    """Close `ws` with `how`; a client already gone or not reading is let go."""
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        await asyncio.wait_for(ws.close(how.code, how.reason), CLOSE_TIMEOUT_SECONDS)


@dataclass(slots=True)
class Opening:
    """A WebSocket handshake as the guard sees it: the call (`gateway.<action>`), the
    subprotocol to select, and a refusal already known from the credential's form."""

    call: CallContext
    subprotocol: str | None
    refused: Close | None


class WsGuard:
    """Admits, refuses and watches the WebSockets of one gateway action."""

    def __init__(
        self,
        guard: Guard,
        action: str,
        forbidden: str,
        *,
        policy: PolicyStore,
        credentials: CredentialCheck,
    ) -> None:
        self.guard = guard
        self.action = action
        self.policy = policy
        self.credentials = credentials
        self.denied = {
            401: UNAUTHENTICATED,
            403: Close(4003, forbidden, 403),
            429: Close(4029, "rate limited: retry later", 429),
            503: Close(1013, "a security service is unavailable: retry shortly", 503),
        }

    def open(self, ws: WebSocket) -> Opening:
        """The handshake's call context (its correlation ID from `X-Correlation-ID` when valid)."""
        token, refused = _tokens(ws)
        offered = ws.scope.get("subprotocols") or []
        call = CallContext(request=_request_context(ws, token), method=self.action)
        if current_tracing() is not None:  # one list: the request's stages, then the call's
            call.request.stage_times = call.stage_times = []
        return Opening(call, SUBPROTOCOL if SUBPROTOCOL in offered else None, refused)

    async def serve(
        self, ws: WebSocket, serve: Callable[[WebSocket, Opening], Awaitable[None]]
    ) -> None:
        """Open the handshake's call context and `serve` it under its correlation ID."""
        opening = self.open(ws)
        req = opening.call.request
        reset = correlation_id_var.set(req.correlation_id)
        span_reset = span_var.set((req.trace_id, req.span_id))
        try:
            await serve(ws, opening)
        finally:
            span_var.reset(span_reset)
            correlation_id_var.reset(reset)

    async def admit(self, opening: Opening) -> tuple[Close | None, str, str | None]:
        """Authenticate, authorize `gateway.<action>`, rate limit: (refusal, outcome, detail)."""
        if opening.refused is not None:
            return opening.refused, "denied:authenticate", "malformed credential"
        call = opening.call
        try:
            await self.guard.pipeline.admit_request(call.request)
            await self.guard.pipeline.admit_call(call)
        except Denied as denied:
            err = denied_error(denied, self.action)
            return self.denied.get(err.status, self.denied[503]), err.outcome, err.detail
        identity = call.request.identity
        expires = identity.expires_at if identity is not None else None
        if expires is not None and expires <= time.time():
            return EXPIRED, "denied:authenticate", "token expired (within leeway)"
        return None, "ok", None

    async def refuse(
        self, ws: WebSocket, opening: Opening, refused: Close, outcome: str, detail: str | None
    ) -> None:
        """Accept the handshake, audit the refusal, close with its code."""
        await ws.accept(subprotocol=opening.subprotocol)
        await self.guard.record(opening.call, outcome, refused.status, detail)
        self.guard.span(opening.call, refused.status)
        await close(ws, refused)

    async def accept(self, ws: WebSocket, opening: Opening) -> None:
        """Accept the handshake of an admitted stream and audit it (status 101)."""
        await ws.accept(subprotocol=opening.subprotocol)
        await self.guard.record(opening.call, "ok", 101)
        self.guard.span(opening.call, 101)

    async def lapsed(self, call: CallContext) -> Close | None:
        """At once: how to close a stream whose credential or grant no longer holds (as `hold`
        would, on its next check), else None."""
        identity = call.request.identity
        assert identity is not None
        try:
            reason = await self.credentials.refusal(identity)
        except Exception:  # any store failure: fail closed
            return self.denied[503]
        if reason is not None:
            return LAPSED
        allowed, _why = self.policy.decide(identity.principal, call.agent, self.action)
        return None if allowed else self.denied[403]

    async def hold(self, call: CallContext, each: Callable[[], None] | None = None) -> Close:
        """Returns once the stream's credential lapses or its grant is withdrawn: how to close
        (4001, 4003, or 1013 when the check cannot be made), the reason logged. `each` runs on
        every re-check."""
        identity = call.request.identity
        assert identity is not None
        denied = await watch(
            identity,
            agent=call.agent,
            action=self.action,
            credentials=self.credentials,
            policy=self.policy,
            each=each,
        )
        err = denied_error(denied, self.action)
        log_rejection(
            call.request,
            method=self.action,
            outcome=err.outcome,
            status=err.status,
            reason=err.detail,
        )
        return LAPSED if err.status == 401 else self.denied.get(err.status, self.denied[503])
