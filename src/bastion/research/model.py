"""The research system's public data: the result object, a run's status and a conversation.

The result object is what the `done` event, `GET /api/research/{id}` and `bastion research
--json` all return: `{"id", "conversation_id", "question", "mode", "answer", "report", "plan",
"sources": [{"n", "id", "title", "url", "provider", "credibility", "snippet"}], "quarantined":
[{"id", "title", "reason"}], "critique": [{"round", "verdict", "reasons"}], "rounds", "model",
"correlation_id", "elapsed_ms", "notes"}`. `report` is Markdown with inline `[n]` citations,
and a result whose report cites an `n` that is not in `sources` does not validate; `notes` says
which model steps fell back to the offline path, and why.

A run's status is `{"id", "status", "result"?, "error"?}`: `result` only when `done`, `error`
only when `failed`. Run and conversation ids are opaque and unguessable (`new_run_id`,
`new_conversation_id`); `is_run_id` / `is_conversation_id` check an id that arrives from outside.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from bastion.research.critic import Verdict
from bastion.research.text import CITATION_RE
from bastion.storage import ID_TOKEN_PATTERN, RunState, random_token

__all__ = [
    "Conversation",
    "ConversationSummary",
    "CritiqueRound",
    "Mode",
    "QuarantinedSource",
    "RequestedMode",
    "ResearchResult",
    "ResultSource",
    "RunStarted",
    "RunState",
    "RunStatus",
    "Turn",
    "is_conversation_id",
    "is_run_id",
    "new_conversation_id",
    "new_run_id",
]

Mode = Literal["chat", "research"]
# What a client may ask for: `auto` lets the research agent choose.
RequestedMode = Literal["auto", "chat", "research"]

RUN_ID_PREFIX = "run_"
CONVERSATION_ID_PREFIX = "conv_"
_RUN_ID_RE = re.compile(re.escape(RUN_ID_PREFIX) + ID_TOKEN_PATTERN)
_CONVERSATION_ID_RE = re.compile(re.escape(CONVERSATION_ID_PREFIX) + ID_TOKEN_PATTERN)

# "offline", or "<provider>:<model>".
_MODEL_RE = r"^(offline|[a-z0-9][a-z0-9_.-]*:\S+)$"


def new_run_id() -> str:
    """A fresh, unguessable, URL-safe run id."""
    return RUN_ID_PREFIX + random_token()


def new_conversation_id() -> str:
    """A fresh, unguessable, URL-safe conversation id."""
    return CONVERSATION_ID_PREFIX + random_token()


def is_run_id(value: object) -> bool:
    """Whether `value` is a string in the run-id format."""
    return isinstance(value, str) and _RUN_ID_RE.fullmatch(value) is not None


def is_conversation_id(value: object) -> bool:
    """Whether `value` is a string in the conversation-id format."""
    return isinstance(value, str) and _CONVERSATION_ID_RE.fullmatch(value) is not None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResultSource(_Strict):
    """A cited source: `[n]` in the report names the source whose `n` it is."""

    n: int = Field(ge=1)
    id: str
    title: str
    url: str | None = None
    provider: str
    credibility: float = Field(ge=0.0, le=1.0)
    snippet: str


class QuarantinedSource(_Strict):
    """A source the guardrails kept out of the report, and why."""

    id: str
    title: str
    reason: str


class CritiqueRound(_Strict):
    """The critic's verdict on one round, with its reasons."""

    round: int = Field(ge=1)
    verdict: Verdict
    reasons: list[str]


class ResearchResult(_Strict):
    """The result object of a finished run (see the module docstring)."""

    id: str
    conversation_id: str
    question: str
    mode: Mode
    answer: str
    report: str
    plan: list[str]
    sources: list[ResultSource]
    quarantined: list[QuarantinedSource]
    critique: list[CritiqueRound]
    rounds: int = Field(ge=0)
    model: str = Field(pattern=_MODEL_RE)
    correlation_id: str | None
    elapsed_ms: int = Field(ge=0)
    # What the reader should know about how the result was made: each model step that fell
    # back to the offline path, and why.
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _citations_resolve(self) -> ResearchResult:
        numbers = [source.n for source in self.sources]
        if len(set(numbers)) != len(numbers):
            raise ValueError("sources: each source needs its own number n")
        known = set(numbers)
        missing = sorted({int(n) for n in CITATION_RE.findall(self.report)} - known)
        if missing:
            cited = ", ".join(f"[{n}]" for n in missing)
            raise ValueError(f"report: citation {cited} names no entry of sources")
        return self


class RunStatus(_Strict):
    """A run as `GET /api/research/{id}` shows it: `result` when done, `error` when failed."""

    id: str
    status: RunState
    result: ResearchResult | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _fits_the_status(self) -> RunStatus:
        if (self.result is not None) != (self.status == "done"):
            raise ValueError("result: present exactly when the status is done")
        if (self.error is not None) != (self.status == "failed"):
            raise ValueError("error: present exactly when the status is failed")
        return self

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in ("result", "error")}


class Turn(_Strict):
    """One question in a conversation: the mode asked for (the one that ran once done), its
    run, the run's status, and its answer once done."""

    question: str
    mode: RequestedMode
    run_id: str
    status: RunState
    answer: str | None = None


class ConversationSummary(_Strict):
    """A conversation in a list: its first question as title."""

    id: str
    title: str | None
    created_at: float
    updated_at: float


class Conversation(_Strict):
    """A conversation and its turns, in order."""

    id: str
    owner: str
    created_at: float
    updated_at: float
    turns: list[Turn]


class RunStarted(_Strict):
    """What starting a run answers (`POST /api/research`'s 202 body)."""

    id: str
    conversation_id: str
    status: RunState = "running"
