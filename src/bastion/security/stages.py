"""The contract between the agent server and its security stages.

A stage is a plain async callable. Request stages (authentication) run once per HTTP request
and take the `RequestContext`; call stages (authorization, rate limiting) run for every JSON-RPC
call, batch elements included, and take the `CallContext`. A stage returns None to let the call
through or raises `Denied`. Adding a stage is adding one function to a list. Audit is not a
stage: the server wraps the whole list with it, so a denial by any stage is recorded.
When the context carries `stage_times` (the request is traced), each stage's timing is noted
there, for its span; otherwise the stages run with no timing at all.
`log_rejection` is the one log line of a refused request, written by whoever answers it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from bastion.core.context import CallContext, RequestContext
from bastion.protocol.errors import (
    FORBIDDEN,
    RATE_LIMITED,
    SECURITY_UNAVAILABLE,
    UNAUTHENTICATED,
    RpcError,
)

RequestStage = Callable[[RequestContext], Awaitable[None]]
CallStage = Callable[[CallContext], Awaitable[None]]

DENIED_PREFIX = "denied:"
_MAX_REASON_CHARS = 200

log = structlog.get_logger("bastion.security")


class Denied(Exception):
    """A stage refused the request.

    `reason` is for the audit trail and the log only; the response never says which check
    failed, only the generic error for `code`.
    """

    def __init__(
        self,
        stage: str,
        code: int,
        reason: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.stage = stage
        self.code = code
        self.reason = reason
        self.headers = headers or {}
        super().__init__(f"{stage}: {reason}")

    def to_rpc_error(self) -> RpcError:
        return RpcError(self.code, headers=self.headers)


def unauthenticated(reason: str) -> Denied:
    return Denied(
        "authenticate",
        UNAUTHENTICATED,
        reason,
        headers={"WWW-Authenticate": 'Bearer realm="bastion", ApiKey header="X-API-Key"'},
    )


def forbidden(reason: str) -> Denied:
    return Denied("authorize", FORBIDDEN, reason)


def rate_limited(reason: str, retry_after: int) -> Denied:
    return Denied("rate_limit", RATE_LIMITED, reason, headers={"Retry-After": str(retry_after)})


def unavailable(stage: str, reason: str) -> Denied:
    return Denied(stage, SECURITY_UNAVAILABLE, reason, headers={"Retry-After": "1"})


@dataclass(slots=True)
class Pipeline:
    """The stages an agent server runs, in order."""

    request_stages: list[RequestStage] = field(default_factory=list)
    call_stages: list[CallStage] = field(default_factory=list)

    # Timed stages note (name, start, end, refused) in the context's `stage_times`. The loop
    # is written out in both methods: a shared coroutine would cost every request a frame.

    async def admit_request(self, ctx: RequestContext) -> None:
        times = ctx.stage_times
        if times is None:
            for stage in self.request_stages:
                await stage(ctx)
            return
        started = _clock()
        for stage in self.request_stages:
            try:
                await stage(ctx)
            except BaseException:
                times.append((stage.__name__, started, _clock(), True))
                raise
            ended = _clock()
            times.append((stage.__name__, started, ended, False))
            started = ended

    async def admit_call(self, ctx: CallContext) -> None:
        times = ctx.stage_times
        if times is None:
            for stage in self.call_stages:
                await stage(ctx)
            return
        started = _clock()
        for call_stage in self.call_stages:
            try:
                await call_stage(ctx)
            except BaseException:
                times.append((call_stage.__name__, started, _clock(), True))
                raise
            ended = _clock()
            times.append((call_stage.__name__, started, ended, False))
            started = ended


_clock = time.perf_counter


def log_rejection(
    req: RequestContext, *, method: str, outcome: str, status: int, reason: str | None
) -> None:
    """Log a refused request (`outcome` `denied:<stage>`: 401, 403, 413, 429, 503, a WAF block)
    as one JSON line with the principal when known, the correlation ID and the internal reason.

    The reason is for operators only (it is never sent to the caller); it names no secret.
    """
    ident = req.identity
    log.warning(
        "request rejected",
        agent=req.agent,
        method=method,
        stage=outcome.removeprefix(DENIED_PREFIX),
        status=status,
        reason=(reason or outcome)[:_MAX_REASON_CHARS],
        principal=ident.principal if ident is not None else None,
        correlation_id=req.correlation_id,
        client=req.client,
    )
