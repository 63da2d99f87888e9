"""The gateway's `WS /ws/events`: live pipeline events for authenticated subscribers.

The credential is a Bastion API key or a JWT, sent either as the `token` query parameter or in
`Sec-WebSocket-Protocol` as `bastion.v1, bearer.<token>` (the server then selects `bastion.v1`,
which browsers require). It goes through the gateway's security stack like any HTTP call:
authentication, authorization of `gateway.events`, the rate limit, one audit record per
connection (status 101 when the stream starts, else the HTTP status of the refusal: 401, 403,
429 or 503). Nothing is sent before the credential is verified. A refusal is an accepted
handshake followed at once by a close, so that browsers see the code instead of a failed
handshake (1006):

    4001  unauthenticated: no, bad or expired credential; mid-stream, when the credential
          expires or its API key (for a token: the key it was exchanged for) is revoked
    4003  authenticated but not allowed `gateway.events`; mid-stream, when the policy stops
          allowing it (a grant or a role taken away)
    4029  too many open streams for the principal (`events.max_subscriptions_per_principal`),
          or rate limited
    4008  the subscriber read too slowly and fell `events.queue_size` events behind
    1013  a security service is unavailable: retry shortly
    1009  a client message over `events.max_message_bytes`
    1003  a binary client message;  1008  any other client message that is not `subscribe`
    1001  the gateway is shutting down

Events are JSON `{"type": "document.<event>", "document_id", "status", "correlation_id", "at"}`
(see `bastion.pipeline.events`); `{"type": "ping", "at"}` follows `events.ping_interval_seconds`
without an event. The one client message is `{"subscribe": [document ids]}`, which narrows the
stream to those documents (answered `{"type": "subscribed", "documents": n}`). A subscriber sees
the documents its principal owns (and events its principal caused); a principal granted
`gateway.read_all_documents` sees all (`bastion.web.ownership`). `document_id` is the
document's opaque id, as in the upload's answer. The subscription starts before the handshake
completes: every event committed after the client sees the stream open is delivered.

An open stream is held to the same rules as a request (`bastion.security.liveness.watch`): its
credential and its `gateway.events` grant are re-checked every half `auth.api_key_cache_seconds`
(at least 0.25 s), so a revoked key or a withdrawn grant ends it within that window (2 s by
default; a policy edit within `policy.reload_check_seconds` more, also 2 s by default).

`hide_query_token(app)`, the outermost layer of the gateway, takes a `token` out of a WebSocket
query string before anything else sees it: the query string becomes `token=[REDACTED]` in the
server's own scope (uvicorn quotes it in its log lines) and the token travels on in the scope
under `QUERY_TOKEN_KEY`. Nothing here logs a credential or a query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from bastion.config import EventsSettings
from bastion.core.context import (
    CallContext,
    RequestContext,
    accept_correlation_id,
    correlation_id_var,
)
from bastion.pipeline import EventFeed, Subscription, TooManySubscriptions, is_document_id
from bastion.runtime import Guard, denied_error
from bastion.security import KEY_PREFIX, CredentialCheck, Denied, PolicyStore, log_rejection, watch
from bastion.web.ownership import owner_scope

ACTION = "events"
SUBPROTOCOL = "bastion.v1"
BEARER_PREFIX = "bearer."
TOKEN_PARAM = "token"  # noqa: S105 (a parameter name, not a secret)
REDACTED = "[REDACTED]"
QUERY_TOKEN_KEY = "bastion.query_token"  # noqa: S105 (a scope key, not a secret)
MAX_SUBSCRIBE_IDS = 1000
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
TOO_MANY = Close(4029, "too many open event streams for this principal", 429)
TOO_SLOW = Close(4008, "too slow: events were dropped; reconnect and re-read the documents")
SHUTTING_DOWN = Close(1001, "the gateway is shutting down")
BINARY = Close(1003, "binary messages are not accepted")
BAD_MESSAGE = Close(1008, 'the only message accepted is {"subscribe": [document ids]}')
_DENIED = {
    401: UNAUTHENTICATED,
    403: Close(4003, "forbidden: this credential may not read events (gateway.events)", 403),
    429: Close(4029, "rate limited: retry later", 429),
    503: Close(1013, "a security service is unavailable: retry shortly", 503),
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


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
    return RequestContext(
        agent="gateway",
        correlation_id=accept_correlation_id(headers.get("x-correlation-id")),
        client=f"{client.host}:{client.port}" if client else "-",
        headers=headers,
    )


def _subscribe_ids(text: str) -> frozenset[str] | None:
    """The document ids of a `{"subscribe": [...]}` message; None for anything else."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or set(msg) != {"subscribe"}:
        return None
    ids = msg["subscribe"]
    if not isinstance(ids, list) or len(ids) > MAX_SUBSCRIBE_IDS:
        return None
    if not all(is_document_id(i) for i in ids):
        return None
    return frozenset(ids)


class EventsEndpoint:
    """Serves `WS /ws/events` from the gateway's event feed, guarded by its security stack."""

    def __init__(
        self,
        guard: Guard,
        feed: EventFeed,
        policy: PolicyStore,
        settings: EventsSettings,
        *,
        credentials: CredentialCheck,
    ) -> None:
        self.guard = guard
        self.feed = feed
        self.policy = policy
        self.settings = settings
        self.credentials = credentials

    async def handle(self, ws: WebSocket) -> None:
        token, refused = _tokens(ws)
        offered = ws.scope.get("subprotocols") or []
        req = _request_context(ws, token)
        call = CallContext(request=req, method=ACTION)
        cid = correlation_id_var.set(req.correlation_id)
        try:
            await self._serve(ws, call, refused, SUBPROTOCOL if SUBPROTOCOL in offered else None)
        finally:
            correlation_id_var.reset(cid)

    async def _serve(
        self, ws: WebSocket, call: CallContext, refused: Close | None, subprotocol: str | None
    ) -> None:
        outcome: str = "denied:authenticate"
        detail: str | None = "malformed credential"
        if refused is None:
            refused, outcome, detail = await self._admit(call)
        sub: Subscription | None = None
        if refused is None:
            identity = call.request.identity
            assert identity is not None
            see_all = owner_scope(self.policy, identity.principal) is None
            try:
                # Before the handshake completes: every event committed after it is delivered.
                sub = await self.feed.subscribe(identity.principal, see_all=see_all)
            except TooManySubscriptions:
                refused, outcome, detail = TOO_MANY, "denied:subscriptions", "subscription limit"
        if sub is None:
            assert refused is not None
            await ws.accept(subprotocol=subprotocol)
            await self.guard.record(call, outcome, refused.status, detail)
            await _close(ws, refused)
            return
        try:
            await ws.accept(subprotocol=subprotocol)
            await self.guard.record(call, "ok", 101)
            expires = call.request.identity.expires_at if call.request.identity else None
            end = await _Stream(ws, sub, self.settings, expires, self._hold(call, sub)).run()
        finally:
            self.feed.unsubscribe(sub)
        if end is not None:
            await _close(ws, end)

    async def _admit(self, call: CallContext) -> tuple[Close | None, str, str | None]:
        """Authenticate, authorize `gateway.events`, rate limit: (refusal, outcome, detail)."""
        try:
            await self.guard.pipeline.admit_request(call.request)
            await self.guard.pipeline.admit_call(call)
        except Denied as denied:
            err = denied_error(denied, ACTION)
            return _DENIED.get(err.status, _DENIED[503]), err.outcome, err.detail
        identity = call.request.identity
        expires = identity.expires_at if identity is not None else None
        if expires is not None and expires <= time.time():
            return EXPIRED, "denied:authenticate", "token expired (within leeway)"
        return None, "ok", None

    async def _hold(self, call: CallContext, sub: Subscription) -> Close:
        """Returns once the stream's credential lapses or its grant is withdrawn: how to close
        (4001, 4003, or 1013 when the check cannot be made), the reason logged. Meanwhile the
        stream follows the policy's `gateway.read_all_documents` for its principal, on the same
        clock: a grant given or withdrawn widens or narrows what it is sent."""
        identity = call.request.identity
        assert identity is not None

        def follow_read_all() -> None:
            sub.see_all = owner_scope(self.policy, identity.principal) is None

        denied = await watch(
            identity,
            agent=call.agent,
            action=ACTION,
            credentials=self.credentials,
            policy=self.policy,
            each=follow_read_all,
        )
        err = denied_error(denied, ACTION)
        log_rejection(
            call.request, method=ACTION, outcome=err.outcome, status=err.status, reason=err.detail
        )
        return LAPSED if err.status == 401 else _DENIED.get(err.status, _DENIED[503])


async def _close(ws: WebSocket, close: Close) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        await asyncio.wait_for(ws.close(close.code, close.reason), CLOSE_TIMEOUT_SECONDS)


class _Stream:
    """One accepted subscriber: events and pings out, `subscribe` messages in."""

    def __init__(
        self,
        ws: WebSocket,
        sub: Subscription,
        settings: EventsSettings,
        expires: float | None,
        hold: Coroutine[Any, Any, Close],
    ) -> None:
        self.ws = ws
        self.sub = sub
        self.settings = settings
        self.expires = expires
        self.hold = hold  # returns when the credential or the grant no longer holds
        self._send_lock = asyncio.Lock()

    async def run(self) -> Close | None:
        """Until the client leaves (None) or the stream must close (how)."""
        tasks = [
            asyncio.create_task(self._send_events()),
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._watch()),
            asyncio.create_task(self.hold),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return next(t.result() for t in tasks if t in done)

    async def _watch(self) -> Close:
        """Ends the stream when the feed drops it, even while a send waits for a slow client."""
        await self.sub.stopped()
        return TOO_SLOW if self.sub.dropped else SHUTTING_DOWN

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(message, separators=(",", ":")))

    async def _send_events(self) -> Close | None:
        try:
            while True:
                timeout = self.settings.ping_interval_seconds
                if self.expires is not None:
                    left = self.expires - time.time()
                    if left <= 0:
                        return EXPIRED
                    timeout = min(timeout, left)
                event = await self.sub.next(timeout)
                if event is not None:
                    await self._send(event.message())
                elif self.sub.dropped:
                    return TOO_SLOW
                elif self.sub.ended:
                    return SHUTTING_DOWN
                elif self.expires is None or time.time() < self.expires:
                    await self._send({"type": "ping", "at": _iso(time.time())})
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None

    async def _receive(self) -> Close | None:
        limit = self.settings.max_message_bytes
        try:
            while True:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return None
                if msg.get("bytes") is not None:
                    return BINARY
                text = msg.get("text") or ""
                if len(text.encode("utf-8")) > limit:
                    return Close(1009, f"message too large: the limit is {limit} bytes")
                ids = _subscribe_ids(text)
                if ids is None:
                    return BAD_MESSAGE
                self.sub.documents = ids
                await self._send({"type": "subscribed", "documents": len(ids)})
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None
