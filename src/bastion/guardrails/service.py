"""The guardrails as a service: the engine plus the side effects of a decision.

`GuardService.scan` runs `Engine.scan` and then, for a blocked or anonymized text, writes one
audit record (principal, correlation ID, policy version, finding types; never the text or a
matched value) and counts the event in Prometheus metrics. It satisfies the `Guard` protocol the
model-client factory takes, so every model call made through the factory is audited this way.
"""

from __future__ import annotations

import time

from prometheus_client import Counter

from bastion.core.audit_entry import AuditEntry, AuditSink
from bastion.guardrails.engine import Engine
from bastion.guardrails.types import Action, Direction, Source, Verdict

__all__ = ["GUARDRAIL_EVENTS", "GUARDRAIL_FINDINGS", "GuardService"]


GUARDRAIL_EVENTS = Counter(
    "bastion_guardrail_events_total",
    "Guardrail scans by the action taken",
    ["action", "source", "direction"],
)
GUARDRAIL_FINDINGS = Counter(
    "bastion_guardrail_findings_total",
    "Guardrail findings by type and by what the policy did with them",
    ["type", "action"],
)


class GuardService:
    """Scans text for one principal (an agent or a client) with one policy; audits decisions."""

    def __init__(
        self,
        engine: Engine,
        *,
        principal: str,
        agent: str,
        audit: AuditSink | None = None,
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.agent = agent
        self._audit = audit

    def scan(self, text: str | bytes, source: Source | str, direction: Direction | str) -> Verdict:
        started = time.perf_counter()
        verdict = self.engine.scan(text, source, direction)
        source, direction = Source(source), Direction(direction)
        GUARDRAIL_EVENTS.labels(verdict.action.value, source.value, direction.value).inc()
        for finding in verdict.findings:
            GUARDRAIL_FINDINGS.labels(finding.type, finding.action.value).inc()
        if verdict.action is not Action.NONE and self._audit is not None:
            self._audit(self._entry(verdict, source, direction, started))
        return verdict

    def _entry(
        self, verdict: Verdict, source: Source, direction: Direction, started: float
    ) -> AuditEntry:
        acted = sorted({f.type for f in verdict.findings if f.action is not Action.NONE})
        return AuditEntry.for_event(
            principal=self.principal,
            agent=self.agent,
            method="guardrail.scan",
            outcome=f"guardrail:{verdict.action.value}",
            started=started,
            detail=(
                f"policy={verdict.policy_version} source={source.value} "
                f"direction={direction.value} types={','.join(acted)}"
            ),
        )
