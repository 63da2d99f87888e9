"""The end of a request (or of one JSON-RPC call), recorded the same way wherever it happens.

The agent server, the gateway's guard and the WAF all answer requests, and refuse some. Each
answer goes through `OutcomeRecorder.record`, which counts it in the metrics, writes the one
log line of a refusal (`log_rejection`) and appends its audit record: a new kind of refusal
(e.g. a document that is not the caller's) is one call here, never a copy of the sequence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from bastion.core.audit_entry import AuditEntry
from bastion.core.context import RequestContext
from bastion.observability.metrics import observe_request
from bastion.security.stages import DENIED_PREFIX, log_rejection


class AuditSink(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


@dataclass(frozen=True, slots=True)
class OutcomeRecorder:
    """Records the outcomes of one service (`agent`); `audit` None: metrics and log only."""

    agent: str
    audit: AuditSink | None

    async def record(
        self,
        req: RequestContext,
        *,
        method: str,
        outcome: str,
        status: int,
        started: float,
        detail: str | None = None,
        label: str | None = None,
        ended: float | None = None,
        audited: bool = True,
    ) -> None:
        """One answered request or call: counted, logged if refused (`denied:<stage>`), and
        audited unless `audited` is false.

        `method` is what the audit record names; `label` (default: `method`) the bounded value
        the metrics and the log line use. `started`/`ended` are `perf_counter` readings (`ended`
        default: now); `detail` is the internal reason, for the audit and the log only.
        """
        label = method if label is None else label
        elapsed = (time.perf_counter() if ended is None else ended) - started
        observe_request(self.agent, label, outcome, status, elapsed)
        if outcome.startswith(DENIED_PREFIX):
            log_rejection(req, method=label, outcome=outcome, status=status, reason=detail)
        if not audited or self.audit is None:
            return
        await self.audit.record(
            AuditEntry.for_request(
                req,
                agent=self.agent,
                method=method,
                outcome=outcome,
                status=status,
                started=started,
                ended=ended,
                detail=detail,
            )
        )
