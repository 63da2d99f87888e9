"""The gateway's zero-trust wrapper around every API route.

`Guard.protect(action, handler)` turns a handler into a Starlette endpoint that, in order:

1. takes the correlation ID from a valid `X-Correlation-ID` or makes one, and puts it in the
   contextvar (so outgoing agent calls carry it);
2. authenticates (`X-API-Key` or `Authorization: Bearer`) with the security stack's request
   stages -> 401;
3. authorizes `gateway.<action>` and rate limits with its call stages -> 403 / 429 / 503;
4. runs the handler, which raises `ApiError` for anything it refuses;
5. audits the outcome (one record per request, agent `gateway`; a handler that succeeds may
   name what it did with `audit_detail(request, ...)`), counts it in the metrics
   (method: the action), logs a refusal with its reason, and answers with the correlation ID
   and the caller's remaining quota in the headers;
6. when the process traces, records one server span named by the action (trace and parent from
   `traceparent` / `X-Correlation-ID`), with a child span per security stage.

Nothing about the body is read before the caller is authenticated and authorized.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bastion.core.context import (
    CORRELATION_HEADER,
    CallContext,
    RequestContext,
    correlation_id_var,
    span_var,
    traceparent,
)
from bastion.observability.tracing import Tracing, current_tracing
from bastion.protocol.errors import spec_for
from bastion.protocol.http_errors import ApiError, error_response
from bastion.runtime.server import http_outcome, scope_context
from bastion.security import AuditSink, Denied, OutcomeRecorder, Pipeline, headers_for

log = structlog.get_logger("bastion.gateway")

Handler = Callable[[Request, CallContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
# How a refusal is answered (request, error, correlation ID): JSON by default; the console
# renders a page.
Refusal = Callable[[Request, ApiError, str], Response]


AUDIT_DETAIL_STATE = "audit_detail"


def audit_detail(request: Request, detail: str) -> None:
    """Record `detail` (what the handler did: counts, ids; never a secret) in the audit record
    of this request's successful outcome."""
    setattr(request.state, AUDIT_DETAIL_STATE, detail[:500])


def json_refusal(_request: Request, err: ApiError, correlation_id: str) -> Response:
    """The default refusal: the JSON error body."""
    return error_response(err, correlation_id)


_DENIED_MESSAGES = {
    "authenticate": (
        "unauthenticated",
        "send a valid API key in X-API-Key, or a bearer token in Authorization",
    ),
    "authorize": ("forbidden", "this credential is not allowed to {action}"),
    "rate_limit": ("rate_limited", "too many requests: retry after Retry-After seconds"),
}


INTERNAL = ApiError(
    500,
    "internal_error",
    "the gateway failed on this request: quote the correlation ID to an operator",
)


def json_response(call: CallContext, body: dict[str, object], status: int = 200) -> JSONResponse:
    """A JSON answer carrying the request's correlation ID."""
    return JSONResponse({**body, "correlation_id": call.correlation_id}, status_code=status)


def denied_error(denied: Denied, action: str) -> ApiError:
    """The caller's view of a stage's refusal: its status, never the internal reason."""
    status = spec_for(denied.code).http_status
    if status == 503 or denied.stage not in _DENIED_MESSAGES:
        code, message = "unavailable", "a security service is unavailable: retry shortly"
    else:
        code, message = _DENIED_MESSAGES[denied.stage]
    return ApiError(
        status,
        code,
        message.format(action=action.replace("_", " ")),
        headers=denied.headers,
        outcome=f"denied:{denied.stage}",
        detail=denied.reason,
    )


def request_context(request: Request, agent: str) -> RequestContext:
    return scope_context(agent, request.scope)


class Guard:
    """Authenticates, authorizes, rate limits and audits requests to one service."""

    def __init__(self, agent: str, pipeline: Pipeline, audit: AuditSink) -> None:
        self.agent = agent
        self.pipeline = pipeline
        self.recorder = OutcomeRecorder(agent, audit)

    def protect(self, action: str, handler: Handler, *, refusal: Refusal | None = None) -> Endpoint:
        """The endpoint for `handler`, authorized as `<agent>.<action>`; a refusal is answered
        by `refusal(request, error, correlation_id)` (default: the JSON error body)."""
        answer = refusal or json_refusal

        async def endpoint(request: Request) -> Response:
            req = request_context(request, self.agent)
            call = CallContext(request=req, method=action)
            tracing = current_tracing()
            if tracing is not None:  # one list: the request's stages, then the call's
                req.stage_times = call.stage_times = []
            token = correlation_id_var.set(req.correlation_id)
            span_token = span_var.set((req.trace_id, req.span_id))
            status = 500
            try:
                response = await self._run(request, call, handler, answer)
                status = response.status_code
            finally:
                span_var.reset(span_token)
                correlation_id_var.reset(token)
                if tracing is not None:
                    self._trace(tracing, call, status)
            response.headers[CORRELATION_HEADER] = req.correlation_id
            if tracing is not None:
                response.headers["traceresponse"] = traceparent(req.trace_id, req.span_id)
            for name, value in headers_for(req.rate) if req.rate is not None else ():
                response.headers[name.decode("latin-1")] = value.decode("latin-1")
            return response

        return endpoint

    def span(self, call: CallContext, status: int) -> None:
        """Record `call`'s server span now, ended with `status` (when the process traces):
        for admissions outside `protect`, such as a WebSocket's."""
        tracing = current_tracing()
        if tracing is not None:
            self._trace(tracing, call, status)

    def _trace(self, tracing: Tracing, call: CallContext, status: int) -> None:
        req = call.request
        outcome = http_outcome(status)
        tracing.hop(
            (
                req.trace_id,
                req.span_id,
                req.parent_span_id,
                call.method,
                self.agent,
                "server",
                req.started,
                time.perf_counter(),
                outcome,
                status,
                call.principal,
                req.correlation_id,
                None,
                tuple(req.stage_times or ()),
                None,
            )
        )

    async def _run(
        self, request: Request, call: CallContext, handler: Handler, answer: Refusal
    ) -> Response:
        try:
            await self.pipeline.admit_request(call.request)
            await self.pipeline.admit_call(call)
            response = await handler(request, call)
        except Denied as denied:
            err = denied_error(denied, call.method)
        except ApiError as exc:
            err = exc
        except Exception:
            log.exception("gateway request failed", action=call.method)
            err = INTERNAL
        else:
            detail = getattr(request.state, AUDIT_DETAIL_STATE, None)
            await self.record(call, "ok", response.status_code, detail)
            return response
        await self.record(call, err.outcome, err.status, err.detail or err.message)
        return answer(request, err, call.correlation_id)

    async def record(
        self, call: CallContext, outcome: str, status: int, detail: str | None = None
    ) -> None:
        """The request's end: counted in the metrics, logged if refused, one audit record."""
        await self.recorder.record(
            call.request,
            method=call.method,
            outcome=outcome,
            status=status,
            started=call.request.started,
            detail=detail,
        )
