"""The gateway's `WS /ws/research`: ask one research question and follow its run live.

Admission is `/ws/events`' (`bastion.web.ws_auth`): the credential as `token` query parameter
or as `Sec-WebSocket-Protocol: bastion.v1, bearer.<token>`, authorized as `gateway.research`,
audited once per connection; a refusal is an accepted handshake closed at once with 4001
(unauthenticated), 4003 (forbidden), 4029 (rate limited) or 1013 (a security service is down).

The client sends one JSON text message, `{"message", "mode"?: "auto"|"chat"|"research",
"conversation_id"?}`. The gateway asks the research agent, for the asking principal, in one
streaming call (`research.ask`), and forwards the run's events (types in
`bastion.research.protocol.EVENT_TYPES`, the first `{"type": "conversation", "conversation_id",
"id"}`) as JSON text frames until a final one (`done`, `error`, `cancelled`), and closes with
1000. `{"type": "ping", "at"}` follows `events.ping_interval_seconds` without an event. The
socket owns its run: when it closes before the final event (the client leaves, its credential
lapses, ...) the gateway leaves the call, and the research agent cancels the run.

    1000  the run ended (after its final event)
    1003  a binary message;  1009  a message over 64 KiB
    1008  a message that is not a research request, a second message, or a request the
          research agent refuses (an unknown conversation): an `error` event comes first
    1013  the research service is unavailable, or its stream broke off (an `error` event comes
          first): retry shortly
    4001 / 4003  mid-run, the credential lapsed or the `gateway.research` grant was withdrawn
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from bastion.config import EventsSettings
from bastion.core.context import CallContext, Identity
from bastion.protocol.http_errors import ApiError
from bastion.research.protocol import EVENT_TYPES, FINAL_EVENTS
from bastion.runtime import Guard
from bastion.security import CredentialCheck, PolicyStore
from bastion.web.research import MAX_BODY_BYTES, RESEARCH_ACTION, ResearchCalls, start_params
from bastion.web.ws_auth import BINARY, Close, Opening, WsGuard, close, iso_now

FORBIDDEN = "forbidden: this credential may not ask for research (gateway.research)"
ENDED = Close(1000, "the run ended")
TOO_LARGE = Close(1009, f"message too large: the limit is {MAX_BODY_BYTES} bytes")
BAD_REQUEST = Close(1008, 'send one message: {"message": "...", "mode": "auto"}')
ONE_QUESTION = "one question per connection: open a new one for the next question"
UNAVAILABLE = Close(1013, "the research service is unavailable: retry shortly")
# Events buffered between the research agent's stream and a slow client.
QUEUE_SIZE = 256
_KNOWN = frozenset(EVENT_TYPES)


def _refusal_close(err: ApiError) -> Close:
    """The close after an `error` event for a request the gateway or the agent refused."""
    if err.status >= 500:
        return UNAVAILABLE
    return Close(1008, err.message[:120])


class ResearchSocket:
    """Serves `WS /ws/research`, guarded by the gateway's security stack."""

    def __init__(
        self,
        guard: Guard,
        calls: ResearchCalls,
        policy: PolicyStore,
        settings: EventsSettings,
        *,
        credentials: CredentialCheck,
    ) -> None:
        self.calls = calls
        self.settings = settings
        self.ws_guard = WsGuard(
            guard, RESEARCH_ACTION, FORBIDDEN, policy=policy, credentials=credentials
        )

    async def handle(self, ws: WebSocket) -> None:
        await self.ws_guard.serve(ws, self._serve)

    async def _serve(self, ws: WebSocket, opening: Opening) -> None:
        refused, outcome, detail = await self.ws_guard.admit(opening)
        if refused is not None:
            await self.ws_guard.refuse(ws, opening, refused, outcome, detail)
            return
        await self.ws_guard.accept(ws, opening)
        call = opening.call
        session = _Session(ws, self.calls, call, self.settings, self.ws_guard)
        end = await session.run(self.ws_guard.hold(call))
        if end is not None:
            await close(ws, end)


# Marks the last event `_pump` queues when the call ends without a final event: its value is how
# to close (None: the stream broke off after the run started).
_END = "end"


class _Session:
    """One accepted socket: the question in, the run's events and pings out."""

    def __init__(
        self,
        ws: WebSocket,
        calls: ResearchCalls,
        call: CallContext,
        settings: EventsSettings,
        ws_guard: WsGuard,
    ) -> None:
        identity = call.request.identity
        assert identity is not None
        self.call = call
        self.ws_guard = ws_guard
        self.ws = ws
        self.calls = calls
        self.identity: Identity = identity
        self.settings = settings
        self.run_id: str | None = None  # once the research agent has started the run
        self._send_lock = asyncio.Lock()

    async def run(self, hold: Any) -> Close | None:
        """Until the client leaves (None) or the socket must close (how); a run still going
        then is left, which cancels it."""
        tasks = [asyncio.create_task(self._conduct()), asyncio.create_task(hold)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_all(tasks)
        end: Close | None = next(t.result() for t in tasks if t in done)
        return end

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def _conduct(self) -> Close | None:
        try:
            request = await self._question()
            if not isinstance(request, dict):
                return request
            return await self._follow(request)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None  # the client left while something was being sent

    async def _question(self) -> dict[str, Any] | Close | None:
        """The research request of the first message, or how to close."""
        msg = await self.ws.receive()
        if msg["type"] == "websocket.disconnect":
            return None
        if msg.get("bytes") is not None:
            return BINARY
        text = msg.get("text") or ""
        if len(text.encode("utf-8")) > MAX_BODY_BYTES:
            return TOO_LARGE
        try:
            return start_params(json.loads(text))
        except (ValueError, ApiError) as exc:
            problem = exc.message if isinstance(exc, ApiError) else BAD_REQUEST.reason
            await self._send({"type": "error", "message": problem})
            return BAD_REQUEST

    async def _follow(self, request: dict[str, Any]) -> Close | None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        tasks = [
            asyncio.create_task(self._pump(request, queue)),
            asyncio.create_task(self._forward(queue)),
            asyncio.create_task(self._listen()),
        ]
        try:
            done, _ = await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_all(tasks)
        end: Close | None = next(t.result() for t in tasks[1:] if t in done)
        return end

    async def _pump(self, request: dict[str, Any], queue: asyncio.Queue[dict[str, Any]]) -> None:
        """The run's events from the research agent into `queue`, ending with a final one, or
        with an `error` marked with how to close (`_END`) when the call ends without one."""
        stream = self.calls.stream(self.identity, "ask", request)
        end: Close | None = None
        try:
            # Closed in this task when it is cancelled: the delegation's context is its own.
            async with contextlib.aclosing(stream):
                async for event in stream:
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind not in _KNOWN:
                        continue
                    if kind == "conversation":
                        self.run_id = str(event.get("id"))
                    await queue.put(event)
                    if kind in FINAL_EVENTS:
                        return
            problem = "the research service ended the stream before the run ended"
        except ApiError as err:
            problem = err.message
            if self.run_id is None:
                end = _refusal_close(err)  # refused: no run was started
        await queue.put({"type": "error", "message": problem, _END: end})

    async def _forward(self, queue: asyncio.Queue[dict[str, Any]]) -> Close | None:
        """Events to the client (pings while idle) up to the final one."""
        try:
            while True:
                try:
                    # An event already waiting is taken at once; else wait, up to a ping.
                    event = queue.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        async with asyncio.timeout(self.settings.ping_interval_seconds):
                            event = await queue.get()
                    except TimeoutError:
                        await self._send({"type": "ping", "at": iso_now()})
                        continue
                if _END in event:
                    end: Close | None = event.pop(_END)
                    if end is None:
                        # The stream broke off mid-run: a lapsed credential closes as the watch
                        # would (it may have been seen there first), else retry later.
                        end = await self.ws_guard.lapsed(self.call)
                        if end is not None:
                            return end
                        end = UNAVAILABLE
                    await self._send(event)
                    return end
                await self._send(event)
                if event["type"] in FINAL_EVENTS:
                    return ENDED
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None

    async def _listen(self) -> Close | None:
        """Until the client leaves (None); a second message is refused (1008)."""
        try:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return None
            await self._send({"type": "error", "message": ONE_QUESTION})
            return Close(1008, ONE_QUESTION)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
