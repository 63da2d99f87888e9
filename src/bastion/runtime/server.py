"""The agent server: JSON-RPC 2.0 over `POST /message`, with the zero-trust pipeline.

Request path (each step is a separate unit; this module only composes them):

    size limit (413) -> JSON-RPC parse -> audit( authenticate (401) -> per call:
        authorize (403) -> rate limit (429/503) -> params (-32602) -> handler )

Authentication runs once per HTTP request and before any parse error is answered, so an
unauthenticated caller learns nothing but 401. Authorization and rate limiting run per call,
batch elements included. Audit wraps everything: each exit path only notes its outcome, and
one `finally` around the stages writes the records (`OutcomeRecorder`) before the answer is
sent. Every call, allowed or denied, and every request refused or failed before a call could
be read, leaves one record, is counted in the metrics and, when refused, logged with its reason.

Tracing (`bastion.observability.tracing`, when the process traces): the request's IDs come
from `traceparent` / `X-Correlation-ID` (`bastion.core.context.incoming_ids`); a single call is
one server span named by its method, a batch one span for the request and one per element,
each with its security stages as child spans; they are recorded with the audit records.

`POST /message` is served as a raw ASGI endpoint because it is the hot path; everything else
(agent card, health, readiness, token service) is an ordinary Starlette app; the paths named
in `http_labels` are counted in the metrics under those names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.context import (
    CallContext,
    RateInfo,
    RequestContext,
    StageTiming,
    correlation_id_var,
    incoming_ids,
    new_span_id,
    span_var,
)
from bastion.observability.metrics import UNKNOWN, observe_request
from bastion.observability.tracing import Tracing
from bastion.protocol.a2a import a2a_error
from bastion.protocol.endpoints import MESSAGE_PATHS
from bastion.protocol.errors import (
    CONTENT_TYPE_NOT_SUPPORTED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_OPERATION,
    RpcError,
)
from bastion.protocol.jsonrpc import (
    DEFAULT_MAX_BATCH,
    Call,
    InvalidCall,
    JsonId,
    ParsedBody,
    error_response,
    parse_body,
    result_response,
)
from bastion.runtime.methods import MethodRegistry
from bastion.security import (
    DENIED_PREFIX,
    AuditSink,
    Denied,
    OutcomeRecorder,
    Pipeline,
    headers_for,
)

log = structlog.get_logger("bastion.server")

DEFAULT_MAX_BODY = 1024 * 1024
_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _ClientGone(Exception):
    pass


@dataclass(slots=True)
class _Audit:
    """What the audit record of one call, or of a request refused before its calls, says.

    Each exit path sets it with `end`; one that does not (an exception nobody expected) leaves
    an internal error, so that nothing goes unaudited.
    """

    method: str
    started: float
    outcome: str = f"error:{INTERNAL_ERROR}"
    status: int = 500
    detail: str | None = None
    ended: float | None = None
    # When traced: the call's span (a batch element's own) and its call stages' timings.
    span_id: str | None = None
    stages: list[StageTiming] | None = None

    def end(self, outcome: str, status: int, detail: str | None = None) -> None:
        self.outcome, self.status, self.detail = outcome, status, detail
        self.ended = time.perf_counter()


class _Trail:
    """The audit records of one request, written by the one `finally` of `_message`: one per
    call it ran, or one for the request when it ended before any call."""

    __slots__ = ("batch", "calls", "request")

    def __init__(self, started: float) -> None:
        self.request = _Audit("(unread)", started)
        self.calls: list[_Audit] = []
        self.batch = False

    def call(self) -> _Audit:
        audit = _Audit("(invalid)", time.perf_counter())
        self.calls.append(audit)
        return audit

    def records(self) -> list[_Audit]:
        return self.calls or [self.request]


@dataclass(slots=True)
class _Reply:
    """An HTTP answer to send once the request's records are written."""

    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    content: bool = True


@dataclass(slots=True)
class _Outcome:
    """What one call produced: a response object (None for notifications) and its status."""

    response: dict[str, Any] | None
    status: int = 200
    headers: dict[str, str] | None = None
    stream: AsyncIterator[Any] | None = None
    call_id: JsonId = None
    audit: _Audit | None = None  # a stream's: its outcome is known when the stream ends


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def attach_quota(result: Any, info: RateInfo | None) -> Any:
    """Put the remaining quota into the result's metadata (A2A objects: their own)."""
    if info is None or not isinstance(result, dict):
        return result
    target = result
    if len(result) == 1:
        inner = next(iter(result.values()))
        if isinstance(inner, dict) and next(iter(result)) in ("task", "message"):
            target = inner
    meta = target.get("metadata")
    if meta is None:
        meta = target["metadata"] = {}
    if isinstance(meta, dict):
        meta["rateLimit"] = {
            "policy": info.policy,
            "limit": info.limit,
            "window": info.window,
            "remaining": info.remaining,
            "reset": info.reset,
        }
    return result


def _has_metadata(result: Any) -> bool:
    """Whether a result can carry quota metadata: plain dicts, and models with a `metadata`
    field (or a `task`/`message` wrapper whose object has one). Strict schemas are left alone."""
    if isinstance(result, BaseModel):
        fields = type(result).model_fields
        return "metadata" in fields or "task" in fields or "message" in fields
    return isinstance(result, dict)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


async def _nothing() -> AsyncIterator[Any]:
    return
    yield  # pragma: no cover


async def primed(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Run a stream up to its first item, so that an error raised before it is answered as a
    plain JSON-RPC error (with its HTTP status) instead of an event in an opened SSE stream."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return _nothing()
    return _chain(first, stream)


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the request body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _DisconnectWatch:
    """Cancels the task streaming a response once its client has gone, so the stream is read
    in that task itself: no task per item, and a stream that waits long (a run being followed)
    is stopped at once. `left` tells a cancellation it caused from any other."""

    def __init__(self, receive: Receive) -> None:
        self._task = asyncio.current_task()
        self._gone = asyncio.ensure_future(_disconnected(receive))
        self._gone.add_done_callback(self._on_gone)
        self.fired = False

    def _on_gone(self, gone: asyncio.Future[None]) -> None:
        if not gone.cancelled() and self._task is not None and not self.fired:
            self.fired = True
            self._task.cancel()

    def stop(self) -> None:
        """The stream is over: a disconnect from now on cancels nothing."""
        self._gone.remove_done_callback(self._on_gone)
        if not self._gone.done():
            self._gone.cancel()

    def left(self) -> bool:
        """After a CancelledError: True when it was this watch's (the client left), which is
        then absorbed; False when the task was cancelled from elsewhere (re-raise it)."""
        task = self._task
        if not self.fired or task is None:
            return False
        return task.uncancel() == 0


def _reason(error: RpcError) -> str | None:
    """The reason code an error carries in `data.reason` (e.g. `encrypted`), for the audit."""
    data = error.data
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason[:64] if isinstance(reason, str) else None


# The outcome of a plain HTTP route by its status: the security refusals by their stage.
_HTTP_DENIALS = {401: "authenticate", 403: "authorize", 413: "size_limit", 429: "rate_limit"}


def http_outcome(status: int) -> str:
    """The metrics outcome of a plain HTTP answer (`ok`, `denied:<stage>`, `error:<status>`)."""
    if status < 400:
        return "ok"
    stage = _HTTP_DENIALS.get(status)
    return DENIED_PREFIX + stage if stage is not None else f"error:{status}"


def _method_label(parsed: ParsedBody) -> str:
    if parsed.fatal is not None:
        return "(unparsed)"
    if parsed.is_batch:
        return f"(batch of {len(parsed.items)})"
    item = parsed.items[0]
    return item.method if isinstance(item, Call) else "(invalid)"


def scope_context(agent: str, scope: Scope) -> RequestContext:
    """The context of an HTTP request: its headers, client and (accepted or new) correlation ID."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    correlation_id, trace_id, parent = incoming_ids(headers)
    return RequestContext(
        agent=agent,
        correlation_id=correlation_id,
        client=f"{client[0]}:{client[1]}" if client else "-",
        headers=headers,
        trace_id=trace_id,
        parent_span_id=parent,
        span_id=new_span_id(),
    )


class AgentServer:
    """An ASGI app serving one agent's methods behind the security pipeline."""

    def __init__(
        self,
        *,
        name: str,
        registry: MethodRegistry,
        app: ASGIApp,
        pipeline: Pipeline | None = None,
        audit: AuditSink | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_batch: int = DEFAULT_MAX_BATCH,
        http_labels: Mapping[str, str] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.name = name
        self.tracing = tracing
        self.registry = registry
        self.pipeline = pipeline or Pipeline()
        self.recorder = OutcomeRecorder(name, audit)
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self.http_labels = dict(http_labels or {})
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
        elif scope["path"] in MESSAGE_PATHS:
            await self._message(scope, receive, send)
        elif scope["path"] in self.http_labels:
            await self._counted(self.http_labels[scope["path"]], scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _counted(self, label: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a plain route, counting its answer under `label` (and logging a refusal)."""
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_counted)
        finally:
            outcome = http_outcome(status)
            if outcome.startswith(DENIED_PREFIX):  # a refusal is logged, with its context
                await self.recorder.record(
                    scope_context(self.name, scope),
                    method=label,
                    outcome=outcome,
                    status=status,
                    started=started,
                    detail=f"{label} answered {status}",
                    audited=False,
                )
            else:  # health checks and the card are polled often: counted, nothing more
                observe_request(self.name, label, outcome, status, time.perf_counter() - started)

    # -- audit -------------------------------------------------------------------------------

    def _label(self, method: str) -> str:
        """`method` as a metrics label: a method of the registry, else `unknown` (a caller's
        made-up method name must not create a new time series)."""
        return method if self.registry.get(method) is not None else UNKNOWN

    async def _record(self, req: RequestContext, audit: _Audit) -> None:
        await self.recorder.record(
            req,
            method=audit.method,
            label=self._label(audit.method),
            outcome=audit.outcome,
            status=audit.status,
            started=audit.started,
            ended=audit.ended,
            detail=audit.detail,
        )

    # -- HTTP --------------------------------------------------------------------------------

    async def _message(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = scope_context(self.name, scope)
        token = correlation_id_var.set(req.correlation_id)
        span_token = span_var.set((req.trace_id, req.span_id))
        tracing = self.tracing
        if tracing is not None:
            req.stage_times = []
        trail = _Trail(req.started)
        try:
            try:
                reply = await self._answer(scope, receive, send, req, trail)
            except _ClientGone:
                trail.request.end("client_disconnected", 499)
                return
            finally:
                # The one place this endpoint audits: every way out of the stages passes here.
                for audit in trail.records():
                    await self._record(req, audit)
                if tracing is not None:
                    self._trace(tracing, req, trail)
            if reply is not None:
                await self._send(
                    send, reply.status, reply.body, req, reply.headers, content=reply.content
                )
        finally:
            span_var.reset(span_token)
            correlation_id_var.reset(token)

    def _trace(self, tracing: Tracing, req: RequestContext, trail: _Trail) -> None:
        """Record the request's spans: one for a single call (or a refused request), else
        one for the batch and one per element, its child."""
        ident = req.identity
        principal = ident.principal if ident is not None else "-"
        trace_id, cid = req.trace_id, req.correlation_id
        # A tuple of tuples of atoms: the garbage collector stops tracking it, not a list.
        stages = tuple(req.stage_times or ())
        if not trail.batch or not trail.calls:  # a single call's stages share the request's list
            a = trail.calls[0] if trail.calls else trail.request
            end = a.ended or time.perf_counter()
            tracing.hop(
                (
                    trace_id,
                    req.span_id,
                    req.parent_span_id,
                    a.method,
                    self.name,
                    "server",
                    req.started,
                    end,
                    a.outcome,
                    a.status,
                    principal,
                    cid,
                    None,
                    stages,
                    None,
                )
            )
            return
        now = time.perf_counter()
        tracing.hop(
            (
                trace_id,
                req.span_id,
                req.parent_span_id,
                trail.request.method,
                self.name,
                "server",
                req.started,
                now,
                "ok",
                200,
                principal,
                cid,
                None,
                stages,
                None,
            )
        )
        for a in trail.calls:
            tracing.hop(
                (
                    trace_id,
                    a.span_id or new_span_id(),
                    req.span_id,
                    a.method,
                    self.name,
                    "server",
                    a.started,
                    a.ended or now,
                    a.outcome,
                    a.status,
                    principal,
                    cid,
                    None,
                    tuple(a.stages or ()),
                    None,
                )
            )

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, req: RequestContext, trail: _Trail
    ) -> _Reply | None:
        """Run the request through the stages and its calls, noting each outcome in `trail`.
        The answer to send, or None when a stream has been answered already."""
        audit = trail.request
        if scope["method"] != "POST":
            audit.method = "(none)"
            audit.end("error:405", 405)
            return _Reply(405, headers={"Allow": "POST"}, content=False)

        declared = req.headers.get("content-length")
        too_big = declared is not None and (
            not declared.isdigit() or int(declared) > self.max_body_bytes
        )
        body = None if too_big else await self._read_body(receive)
        if body is None:
            detail = f"body larger than server.max_body_bytes ({self.max_body_bytes})"
            audit.end("denied:size_limit", 413, detail)
            return _Reply(413, orjson.dumps(error_response(None, RpcError(PAYLOAD_TOO_LARGE))))

        parsed = parse_body(body, self.max_batch)
        audit.method = _method_label(parsed)
        trail.batch = parsed.is_batch

        try:
            await self.pipeline.admit_request(req)
        except Denied as denied:
            err = denied.to_rpc_error()
            audit.end(f"denied:{denied.stage}", err.http_status, denied.reason)
            rid = parsed.items[0].id if len(parsed.items) == 1 and not parsed.is_batch else None
            return _Reply(err.http_status, orjson.dumps(error_response(rid, err)), err.headers)

        content_type = req.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            ct_err = a2a_error(
                CONTENT_TYPE_NOT_SUPPORTED,
                "Content-Type must be application/json",
                contentType=content_type[:100],
            )
            audit.method = "(unparsed)"
            audit.end(f"error:{ct_err.code}", 200)
            return _Reply(200, orjson.dumps(error_response(None, ct_err)))

        if parsed.fatal is not None:
            err = parsed.fatal.error
            audit.end(f"error:{err.code}", 200)
            return _Reply(200, orjson.dumps(error_response(None, err)))

        if not parsed.is_batch:
            outcome = await self._run(req, parsed.items[0], trail.call(), in_batch=False)
            if outcome.stream is not None:
                await self._stream(send, receive, req, outcome)
                return None
            if outcome.response is None:
                return _Reply(204, content=False)
            return _Reply(outcome.status, orjson.dumps(outcome.response), outcome.headers)

        responses = []
        for item in parsed.items:
            outcome = await self._run(req, item, trail.call(), in_batch=True)
            if outcome.response is not None:
                responses.append(outcome.response)
        if not responses:
            return _Reply(204, content=False)
        return _Reply(200, orjson.dumps(responses))

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _response_headers(
        self, req: RequestContext, extra: dict[str, str] | None
    ) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-correlation-id", req.correlation_id.encode("latin-1"))]
        if self.tracing is not None:  # where to find the request's spans (W3C `traceresponse`)
            headers.append((b"traceresponse", f"00-{req.trace_id}-{req.span_id}-01".encode()))
        if req.rate is not None:
            headers.extend(headers_for(req.rate))
        if extra:
            headers.extend(
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()
            )
        return headers

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        req: RequestContext,
        extra: dict[str, str] | None = None,
        *,
        content: bool = True,
    ) -> None:
        headers = self._response_headers(req, extra)
        if content:
            headers.append(_JSON)
            headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- calls -------------------------------------------------------------------------------

    async def _run(
        self, req: RequestContext, item: Call | InvalidCall, audit: _Audit, *, in_batch: bool
    ) -> _Outcome:
        """One call through its stages and its handler; its outcome is noted in `audit`."""
        if isinstance(item, InvalidCall):
            audit.end(f"error:{item.error.code}", 200)
            return _Outcome(error_response(item.id, item.error))

        audit.method = item.method
        ctx = CallContext(request=req, method=item.method)
        if not in_batch:  # the call is the request's span: its stages go in the same list
            ctx.stage_times = req.stage_times
            return await self._call(req, item, audit, ctx, in_batch=False)
        if req.stage_times is not None:
            ctx.stage_times = audit.stages = []
        # A batch element is its own span: the calls its handler makes are its children.
        audit.span_id = new_span_id()
        token = span_var.set((req.trace_id, audit.span_id))
        try:
            return await self._call(req, item, audit, ctx, in_batch=True)
        finally:
            span_var.reset(token)

    async def _call(
        self, req: RequestContext, item: Call, audit: _Audit, ctx: CallContext, *, in_batch: bool
    ) -> _Outcome:
        try:
            await self.pipeline.admit_call(ctx)
        except Denied as denied:
            err = denied.to_rpc_error()
            audit.end(f"denied:{denied.stage}", err.http_status, denied.reason)
            return _Outcome(
                None if item.is_notification else error_response(item.id, err),
                status=200 if in_batch else err.http_status,
                headers=None if in_batch else err.headers,
            )

        try:
            spec = self.registry.get(item.method)
            if spec is None:
                raise RpcError(METHOD_NOT_FOUND, data=f"no method {item.method!r} on {self.name}")
            bound = self.registry.bind(spec, item.params)
            if spec.streaming:
                if in_batch or item.is_notification:
                    raise RpcError(
                        UNSUPPORTED_OPERATION if in_batch else INVALID_REQUEST,
                        data="streaming methods cannot be called in a batch or as a notification",
                    )
                stream = await primed(self.registry.invoke(spec, bound, ctx))
                return _Outcome(None, stream=stream, call_id=item.id, audit=audit)
            result = await self.registry.invoke(spec, bound, ctx)
        except RpcError as rpc_err:
            audit.end(f"error:{rpc_err.code}", 200, _reason(rpc_err))
            return _Outcome(None if item.is_notification else error_response(item.id, rpc_err))
        except Exception:
            log.exception("handler failed", method=item.method, agent=self.name)
            audit.end(f"error:{INTERNAL_ERROR}", 200)
            internal = RpcError(INTERNAL_ERROR, data={"correlation_id": req.correlation_id})
            return _Outcome(None if item.is_notification else error_response(item.id, internal))

        audit.end("ok", 200)
        if item.is_notification:
            return _Outcome(None)
        payload = _jsonable(result)
        if _has_metadata(result):
            payload = attach_quota(payload, ctx.rate)
        return _Outcome(result_response(item.id, payload))

    async def _stream(
        self, send: Send, receive: Receive, req: RequestContext, outcome: _Outcome
    ) -> None:
        """Send a streaming method's items as SSE events, each a JSON-RPC response, until the
        stream ends or the client disconnects; how it ended goes to the call's audit."""
        assert outcome.stream is not None and outcome.audit is not None
        headers = self._response_headers(req, None) + _SSE_HEADERS
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        result = "ok"
        stream = outcome.stream
        watch = _DisconnectWatch(receive)
        try:
            try:
                async for item in stream:
                    payload = result_response(outcome.call_id, _jsonable(item))
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b"data: " + orjson.dumps(payload) + b"\n\n",
                            "more_body": True,
                        }
                    )
            except RpcError as rpc_err:
                result = f"error:{rpc_err.code}"
                await self._send_event(send, error_response(outcome.call_id, rpc_err))
            except Exception:
                log.exception("stream failed", agent=self.name)
                result = f"error:{INTERNAL_ERROR}"
                internal = RpcError(INTERNAL_ERROR, data={"correlation_id": req.correlation_id})
                await self._send_event(send, error_response(outcome.call_id, internal))
        except asyncio.CancelledError:
            if not watch.left():
                raise
            result = "client_disconnected"
        finally:
            watch.stop()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            outcome.audit.end(result, 200)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _send_event(send: Send, payload: dict[str, Any]) -> None:
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + orjson.dumps(payload) + b"\n\n",
                "more_body": True,
            }
        )


ReadinessCheck = Callable[[], Awaitable[None]]


async def run_checks(checks: Sequence[tuple[str, ReadinessCheck]]) -> tuple[bool, dict[str, str]]:
    """Run readiness checks; each raises to report its dependency unreachable."""
    results: dict[str, str] = {}
    ok = True
    for name, check in checks:
        try:
            await check()
            results[name] = "ok"
        except Exception as exc:
            ok = False
            results[name] = f"unavailable: {type(exc).__name__}"
    return ok, results
