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

The handshake, the refusals and the liveness watch are `bastion.web.ws_auth`'s (shared with
`WS /ws/research`), as is `hide_query_token`, the layer that keeps a query token out of logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from bastion.config import EventsSettings
from bastion.core.context import CallContext
from bastion.pipeline import EventFeed, Subscription, TooManySubscriptions, is_document_id
from bastion.runtime import Guard
from bastion.security import CredentialCheck, PolicyStore
from bastion.web.ownership import owner_scope
from bastion.web.ws_auth import (
    BINARY,
    EXPIRED,
    SHUTTING_DOWN,
    Close,
    Opening,
    WsGuard,
    close,
    hide_query_token,
    iso_now,
)

__all__ = ["EventsEndpoint", "hide_query_token"]

ACTION = "events"
MAX_SUBSCRIBE_IDS = 1000
TOO_MANY = Close(4029, "too many open event streams for this principal", 429)
TOO_SLOW = Close(4008, "too slow: events were dropped; reconnect and re-read the documents")
BAD_MESSAGE = Close(1008, 'the only message accepted is {"subscribe": [document ids]}')
FORBIDDEN = "forbidden: this credential may not read events (gateway.events)"


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
        self.feed = feed
        self.policy = policy
        self.settings = settings
        self.ws_guard = WsGuard(guard, ACTION, FORBIDDEN, policy=policy, credentials=credentials)

    async def handle(self, ws: WebSocket) -> None:
        await self.ws_guard.serve(ws, self._serve)

    async def _serve(self, ws: WebSocket, opening: Opening) -> None:
        call = opening.call
        refused, outcome, detail = await self.ws_guard.admit(opening)
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
            await self.ws_guard.refuse(ws, opening, refused, outcome, detail)
            return
        try:
            await self.ws_guard.accept(ws, opening)
            expires = call.request.identity.expires_at if call.request.identity else None
            end = await _Stream(ws, sub, self.settings, expires, self._hold(call, sub)).run()
        finally:
            self.feed.unsubscribe(sub)
        if end is not None:
            await close(ws, end)

    async def _hold(self, call: CallContext, sub: Subscription) -> Close:
        """Returns once the stream's credential lapses or its grant is withdrawn (see
        `WsGuard.hold`). Meanwhile the stream follows the policy's `gateway.read_all_documents`
        for its principal, on the same clock: a grant given or withdrawn widens or narrows
        what it is sent."""
        identity = call.request.identity
        assert identity is not None

        def follow_read_all() -> None:
            sub.see_all = owner_scope(self.policy, identity.principal) is None

        return await self.ws_guard.hold(call, each=follow_read_all)


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
                    await self._send({"type": "ping", "at": iso_now()})
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
