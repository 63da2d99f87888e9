"""The audit record every layer writes: one call, or one decision a component made on its own.

The record's shape lives here, below everything that writes one (the agent server, the gateway,
the WAF, the egress perimeter, the guardrails); sealing records into hash chains and storing
them is `bastion.security.audit`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.core.context import RequestContext, current_correlation_id

__all__ = ["AuditEntry", "AuditSink"]


@dataclass(slots=True)
class AuditEntry:
    """One audited call. Do not mutate an entry after handing it to `AuditWriter.record()`.

    `outcome` is e.g. "ok", "error:-32602", "denied:authenticate", "denied:authorize",
    "denied:rate_limit" or "denied:size_limit". `detail` is an internal reason, never a secret;
    a call made on someone's behalf starts it with `for <subject> via <actor> < <actor> ...`.
    """

    ts: float
    principal: str
    auth_method: str
    agent: str
    method: str
    correlation_id: str
    outcome: str
    status: int
    latency_ms: float
    client: str
    detail: str | None = None

    @classmethod
    def for_request(
        cls,
        req: RequestContext,
        *,
        agent: str,
        method: str,
        outcome: str,
        status: int,
        started: float,
        detail: str | None = None,
        ended: float | None = None,
    ) -> AuditEntry:
        """The record of one call of `req`, which started at `started` and ended at `ended`
        (perf_counter readings; `ended` default: now).

        `ts` is when the call arrived, so that the hops of one correlation ID read in call order.
        """
        ident = req.identity
        now = time.perf_counter()
        elapsed = (now if ended is None else ended) - started
        if req.delegation is not None:  # whom the call acted for, and through whom
            acting = f"for {req.delegation.subject} via {' < '.join(req.delegation.actors)}"
            detail = acting if detail is None else f"{acting}; {detail}"
        return cls(
            ts=time.time() - (now - started),
            principal=ident.principal if ident else "-",
            auth_method=ident.auth_method if ident else "none",
            agent=agent,
            method=method,
            correlation_id=req.correlation_id,
            outcome=outcome,
            status=status,
            latency_ms=round(elapsed * 1000.0, 3),
            client=req.client,
            detail=detail,
        )

    @classmethod
    def for_event(
        cls,
        *,
        principal: str,
        agent: str,
        method: str,
        outcome: str,
        started: float,
        detail: str,
        auth_method: str = "internal",
    ) -> AuditEntry:
        """The record of something a component decided on its own account, outside a request
        (a guardrail verdict, a refused outbound request), which started at `started`
        (perf_counter), under the current correlation ID."""
        elapsed = time.perf_counter() - started
        return cls(
            ts=time.time() - elapsed,
            principal=principal,
            auth_method=auth_method,
            agent=agent,
            method=method,
            correlation_id=current_correlation_id() or "-",
            outcome=outcome,
            status=0,
            latency_ms=round(elapsed * 1000.0, 3),
            client="-",
            detail=detail,
        )


# Where a component that decides on its own account (a refused outbound request, a guardrail
# verdict) hands its record; an `AuditWriter.record` fits.
AuditSink = Callable[[AuditEntry], object]
