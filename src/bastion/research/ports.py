"""The two ports the research engine is written against, and their in-process adapters.

* `ResearcherPort.research(sub_question, owner=, researcher=)`: an async iterator of events
  (`progress`, `source`) ending with the `Findings`.
* `CriticPort.critique(question, sub_questions, report, credibility, round=)`: an async
  iterator of events ending with the `Critique`.

`LocalResearcher` and `LocalCritic` run them in this process (the bench's "security off"
baseline, and tests); the research agent's A2A adapters (`bastion.research.agents.research`)
call the researcher and critic services instead. The engine cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Protocol

from bastion.llm import ModelClient
from bastion.research.critic import Critique, critique
from bastion.research.findings import Findings
from bastion.research.modeled import critique_with_model
from bastion.research.researcher import Researcher
from bastion.research.synthesis import Report

__all__ = [
    "CriticItem",
    "CriticPort",
    "LocalCritic",
    "LocalResearcher",
    "ResearcherItem",
    "ResearcherPort",
]

ResearcherItem = dict[str, Any] | Findings
CriticItem = dict[str, Any] | Critique


class ResearcherPort(Protocol):
    def research(
        self, sub_question: str, *, owner: str, researcher: str
    ) -> AsyncGenerator[ResearcherItem, None]: ...


class CriticPort(Protocol):
    def critique(
        self,
        question: str,
        sub_questions: Sequence[str],
        report: Report,
        credibility: Mapping[str, float],
        *,
        round: int,
    ) -> AsyncGenerator[CriticItem, None]: ...


class LocalResearcher:
    """The researcher core in this process."""

    def __init__(self, researcher: Researcher) -> None:
        self._researcher = researcher

    def research(
        self, sub_question: str, *, owner: str, researcher: str
    ) -> AsyncGenerator[ResearcherItem, None]:
        return self._researcher.research(sub_question, owner=owner, researcher=researcher)


async def review(
    question: str,
    sub_questions: Sequence[str],
    report: Report,
    credibility: Mapping[str, float],
    *,
    min_credibility: float,
    model: ModelClient | None = None,
) -> AsyncGenerator[CriticItem, None]:
    """The critic's stream: a `progress` note when the model's verdict was not used, then the
    `Critique` (offline rules without a model)."""
    if model is None:
        yield critique(
            question, sub_questions, report, credibility, min_credibility=min_credibility
        )
        return
    outcome = await critique_with_model(
        model, question, sub_questions, report, credibility, min_credibility=min_credibility
    )
    found = outcome.value
    if outcome.path == "fallback":
        note = f"model critic not used ({outcome.reason}); the offline rules decided"
        yield {"type": "progress", "stage": "critic_fallback", "message": note}
        found = Critique(found.verdict, (*found.reasons, note), found.gaps)
    yield found


class LocalCritic:
    """The critic in this process: offline rules, or `model` with the offline fallback."""

    def __init__(self, *, min_credibility: float = 0.5, model: ModelClient | None = None) -> None:
        self._min_credibility = min_credibility
        self._model = model

    def critique(
        self,
        question: str,
        sub_questions: Sequence[str],
        report: Report,
        credibility: Mapping[str, float],
        *,
        round: int,
    ) -> AsyncGenerator[CriticItem, None]:
        return review(
            question,
            sub_questions,
            report,
            credibility,
            min_credibility=self._min_credibility,
            model=self._model,
        )
