"""The researcher agent: `research {sub_question, owner, researcher?}` (streams) searches every
enabled provider for one sub-question and streams `progress` and `source` events, then
`{"type": "findings", "findings": ...}` (see `bastion.research.findings`).

Each source the guardrails quarantine is audited in the researcher's trail (`QuarantineAudit`).
The archive is searched with `archivist.search` under the researcher's own credential, for
`owner` only. When the call carries a delegation, `owner` must be its subject (FORBIDDEN
otherwise): the researcher never searches one user's documents for another.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry, AuditSink
from bastion.core.context import CallContext
from bastion.protocol.errors import FORBIDDEN, RpcError
from bastion.research.agents.common import credibility_rules, subject
from bastion.research.findings import Findings, Quarantined
from bastion.research.protocol import RESEARCHER
from bastion.research.providers import ArchiveSearch, ProviderSet
from bastion.research.researcher import QuarantineSink, Researcher, log_quarantine
from bastion.research.retrieval import query_terms
from bastion.runtime import AgentDefinition, MethodRegistry, PeerClients

__all__ = ["NAME", "ResearchParams", "build_registry", "definition", "findings_events"]

NAME = RESEARCHER
ARCHIVIST = "archivist"
_MAX_ARCHIVE_QUERY = 500


class ResearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sub_question: str = Field(min_length=1, max_length=1000)
    owner: str = Field(min_length=1, max_length=256)
    researcher: str = Field(default="researcher", max_length=64)


async def findings_events(
    core: Researcher, params: ResearchParams
) -> AsyncGenerator[dict[str, Any], None]:
    """`core`'s research of `params.sub_question` as the method streams it: progress and source
    events, then `{"type": "findings", ...}`."""
    stream = core.research(params.sub_question, owner=params.owner, researcher=params.researcher)
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, Findings):
                yield {"type": "findings", "findings": item.to_json()}
            else:
                yield item


def build_registry(core: Researcher) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("research", streaming=True)
    async def research(params: ResearchParams, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Research one sub-question: progress and source events, then the findings."""
        if subject(ctx) != params.owner:
            raise RpcError(
                FORBIDDEN,
                "owner is not the user this call acts for: research only for the delegation's "
                "subject",
                data={"reason": "owner_mismatch"},
            )
        async with contextlib.aclosing(findings_events(core, params)) as events:
            async for event in events:
                yield event

    return registry


class QuarantineAudit:
    """Audits each quarantined source in the researcher's own trail (method `quarantine`,
    outcome `quarantined`, the source and the reason; never its text), under the call's
    correlation ID; logs it when the agent is served without the security stack."""

    def __init__(self) -> None:
        self._sink: AuditSink | None = None

    def attach(self, sink: AuditSink) -> None:
        self._sink = sink

    def record(self, item: Quarantined, sub_question: str) -> object:
        if self._sink is None:
            log_quarantine(item, sub_question)
            return None
        entry = AuditEntry.for_event(
            principal=NAME,
            agent=NAME,
            method="quarantine",
            outcome="quarantined",
            started=time.perf_counter(),
            detail=f"source={item.provider}:{item.id} reason={item.reason}"[:500],
        )
        return self._sink(entry)


def archive_search(peers: PeerClients) -> ArchiveSearch:
    """`archivist.search` for one owner, with the query's content words (the archive matches
    every word it is given)."""

    async def search(owner: str, query: str, limit: int) -> list[dict[str, Any]]:
        words = " ".join(query_terms(query))[:_MAX_ARCHIVE_QUERY].strip()
        if not words:
            return []
        answer = await peers[ARCHIVIST].call(
            "search", {"owner": owner, "query": words, "limit": max(1, min(limit, 100))}
        )
        results = answer.get("results") if isinstance(answer, dict) else None
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []

    return search


def definition(
    settings: Settings, *, on_quarantine: QuarantineSink | None = None
) -> AgentDefinition:
    """The researcher over the providers `settings.research` enables."""
    research = settings.research
    peers: PeerClients | None = None
    search: ArchiveSearch | None = None
    if "archive" in research.enabled_providers() and ARCHIVIST in settings.agents:
        peers = PeerClients(settings, NAME, (ARCHIVIST,))
        search = archive_search(peers)
    providers = ProviderSet(settings, archive=search)
    audit = QuarantineAudit()
    core = Researcher(
        providers.for_owner,
        credibility_rules(settings),
        passages_per_question=research.passages_per_question,
        on_quarantine=on_quarantine or audit.record,
    )

    async def close() -> None:
        await providers.aclose()
        if peers is not None:
            await peers.aclose()

    return AgentDefinition(
        name=NAME,
        description="Researches one sub-question: searches, deduplicates, guards and scores "
        "sources.",
        registry=build_registry(core),
        skills=[
            {
                "id": "research",
                "name": "Sub-question research",
                "description": "Searches the local corpus, the archive and the web for one "
                "sub-question; quarantines sources carrying prompt attacks; scores credibility.",
                "tags": ["research", "search"],
            }
        ],
        on_shutdown=[close],
        on_audit=[audit.attach],
    )
