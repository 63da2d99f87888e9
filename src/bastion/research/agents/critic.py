"""The critic agent: `critique {question, sub_questions, report, credibility, round}` (streams)
reviews a report and streams `progress` notes, then `{"type": "verdict", "verdict", "reasons",
"gaps"}`: PASS, REFINE (with the gaps as new sub-questions) or FAIL.

With `research.model` the model reviews (`modeled.critique_with_model`); an invalid answer is
asked for once more, then the offline rules decide and the reasons say so.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bastion.config import Settings
from bastion.llm import ModelClient
from bastion.protocol.errors import INVALID_PARAMS, RpcError
from bastion.research.critic import Critique
from bastion.research.findings import critique_to_json, report_from_json
from bastion.research.model_client import research_model
from bastion.research.ports import review
from bastion.research.protocol import CRITIC
from bastion.runtime import AgentDefinition, MethodRegistry

__all__ = ["NAME", "CritiqueParams", "build_registry", "definition"]

NAME = CRITIC


class CritiqueParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4000)
    sub_questions: list[str] = Field(max_length=64)
    report: dict[str, Any]
    credibility: dict[str, float]
    round: int = Field(default=1, ge=1, le=10)


def build_registry(min_credibility: float, model: ModelClient | None) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("critique", streaming=True)
    async def critique(params: CritiqueParams) -> AsyncIterator[dict[str, Any]]:
        """Review a report: PASS, REFINE (with gaps) or FAIL, with reasons."""
        try:
            report = report_from_json(params.report)
        except (KeyError, TypeError, ValueError) as error:
            raise RpcError(
                INVALID_PARAMS,
                data=[{"field": "report", "problem": f"not a report: {error}"}],
            ) from None
        stream = review(
            params.question,
            params.sub_questions,
            report,
            params.credibility,
            min_credibility=min_credibility,
            model=model,
        )
        async with contextlib.aclosing(stream):
            async for item in stream:
                if isinstance(item, Critique):
                    yield {"type": "verdict", "round": params.round, **critique_to_json(item)}
                else:
                    yield item

    return registry


def definition(settings: Settings) -> AgentDefinition:
    model, _name = research_model(settings, NAME)

    async def close() -> None:
        if model is not None:
            await model.aclose()

    return AgentDefinition(
        name=NAME,
        description="Reviews research reports: PASS, REFINE with the gaps, or FAIL.",
        registry=build_registry(settings.research.min_credibility, model),
        skills=[
            {
                "id": "critique",
                "name": "Report review",
                "description": "Checks citations, source credibility, coverage and "
                "contradictions of a research report.",
                "tags": ["research", "review"],
            }
        ],
        on_shutdown=[close],
    )
