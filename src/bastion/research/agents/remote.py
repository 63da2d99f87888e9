"""The engine's ports over A2A: the researcher and critic services, called under the research
agent's own credential (the runtime carries the run's correlation ID on every call)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from bastion.research.findings import critique_from_json, findings_from_json, report_to_json
from bastion.research.ports import CriticItem, ResearcherItem
from bastion.research.synthesis import Report
from bastion.runtime import AgentClient, AgentUnreachable, RpcCallError

__all__ = ["PeerFailed", "RemoteCritic", "RemoteResearcher"]

_PASSED_ON = frozenset({"progress", "source"})


class PeerFailed(RuntimeError):
    """A research peer failed or answered something unusable; the message says which."""


def _failure(peer: str, error: Exception) -> PeerFailed:
    if isinstance(error, RpcCallError):
        return PeerFailed(f"the {peer} failed: {error.message} (code {error.code})")
    if isinstance(error, AgentUnreachable):
        return PeerFailed(f"the {peer} is unreachable: {error.reason}")
    return PeerFailed(f"the {peer} sent an unusable answer: {error}")


class RemoteResearcher:
    """`researcher.research` over A2A."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    async def research(
        self, sub_question: str, *, owner: str, researcher: str
    ) -> AsyncGenerator[ResearcherItem, None]:
        params = {"sub_question": sub_question, "owner": owner, "researcher": researcher}
        findings = None
        try:
            # Read the stream to its end (the findings are its last item), so the call ends
            # as the researcher ends it rather than by a disconnect.
            async for item in self._client.stream("research", params):
                kind = item.get("type") if isinstance(item, dict) else None
                if kind == "findings" and findings is None:
                    findings = findings_from_json(item["findings"])
                elif kind in _PASSED_ON and findings is None:
                    yield dict(item)
        except (RpcCallError, AgentUnreachable, KeyError, TypeError, ValueError) as error:
            raise _failure("researcher", error) from None
        if findings is None:
            raise PeerFailed("the researcher ended its stream without findings")
        yield findings


class RemoteCritic:
    """`critic.critique` over A2A."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    async def critique(
        self,
        question: str,
        sub_questions: Sequence[str],
        report: Report,
        credibility: Mapping[str, float],
        *,
        round: int,
    ) -> AsyncGenerator[CriticItem, None]:
        params: dict[str, Any] = {
            "question": question,
            "sub_questions": list(sub_questions),
            "report": report_to_json(report, source_texts=False),
            "credibility": dict(credibility),
            "round": round,
        }
        verdict = None
        try:
            async for item in self._client.stream("critique", params):
                kind = item.get("type") if isinstance(item, dict) else None
                if kind == "verdict" and verdict is None:
                    verdict = critique_from_json(item)
                elif kind == "progress" and verdict is None:
                    yield dict(item)
        except (RpcCallError, AgentUnreachable, KeyError, TypeError, ValueError) as error:
            raise _failure("critic", error) from None
        if verdict is None:
            raise PeerFailed("the critic ended its stream without a verdict")
        yield verdict
