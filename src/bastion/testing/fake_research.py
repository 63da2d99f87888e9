"""A stand-in research agent: the research contract (`bastion.research.protocol`) with canned
events, for tests and benchmarks of what sits in front of it (the gateway, the CLI).

`FakeResearch.app(settings)` is a real `AgentApp` named `research` (the runtime and its security
stack: authentication, the `research.<method>` grants, the delegation check, audit), so callers
go through everything they would with the real agent. Every method acts for the principal the
call's verified delegation names (`ctx.delegation.subject`); a call without one is FORBIDDEN, and
another principal's run or conversation is RESEARCH_NOT_FOUND, like a missing one.

A run emits `progress`, `plan`, two `source`s, `critique` (PASS), the report in `text` chunks,
then `done` with a valid result object (`ResearchResult`); with `failure` set, an `error` event
instead. `hold()` makes runs wait after their
`conversation` event until `release()` (or a cancel), to test pings and cancellation. What callers
did is recorded for the test's thread: `started` (subject, params), `cancelled` (run ids, by
`cancel` or by leaving an `ask` stream early), `cancel_seen` (a threading.Event set on each).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.protocol.errors import FORBIDDEN, RESEARCH_NOT_FOUND, RpcError
from bastion.research.model import (
    Conversation,
    ConversationSummary,
    CritiqueRound,
    RequestedMode,
    ResearchResult,
    ResultSource,
    RunStarted,
    RunState,
    RunStatus,
    Turn,
    new_conversation_id,
    new_run_id,
)
from bastion.research.protocol import (
    FINAL_EVENTS,
    RESEARCH,
    ConversationRef,
    ListConversationsParams,
    RunRef,
    StartParams,
)
from bastion.runtime import AgentApp, AgentDefinition, MethodRegistry

__all__ = ["FakeResearch", "canned_result"]

SOURCES = (
    ("src_1", "Ada Lovelace - Encyclopaedia", "https://www.britannica.com/ada", 0.9),
    ("src_2", "Notes on the Analytical Engine", "https://example.org/notes", 0.6),
)


def canned_result(
    run_id: str, conversation_id: str, question: str, mode: RequestedMode
) -> ResearchResult:
    """The result object of a fake run: a two-source report citing both."""
    report = (
        f"# {question}\n\nAda Lovelace wrote the first published program [1]. "
        "Her notes describe the Analytical Engine [2].\n"
    )
    return ResearchResult(
        id=run_id,
        conversation_id=conversation_id,
        question=question,
        mode="chat" if mode == "chat" else "research",
        answer="Ada Lovelace",
        report=report,
        plan=["Who wrote the first program?", "What did the notes describe?"],
        sources=[
            ResultSource(
                n=n,
                id=sid,
                title=title,
                url=url,
                provider="corpus",
                credibility=cred,
                snippet=f"snippet of {title}",
            )
            for n, (sid, title, url, cred) in enumerate(SOURCES, start=1)
        ],
        quarantined=[],
        critique=[CritiqueRound(round=1, verdict="PASS", reasons=["every claim is cited"])],
        rounds=1,
        model="offline",
        correlation_id=None,
        elapsed_ms=5,
    )


def _events(result: ResearchResult) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "progress", "stage": "plan", "message": "planning the research"},
        {"type": "plan", "round": 1, "sub_questions": list(result.plan)},
        {"type": "progress", "stage": "research", "message": "researching 2 sub-questions"},
    ]
    for source in result.sources:
        events.append(
            {
                "type": "source",
                "id": source.id,
                "title": source.title,
                "url": source.url,
                "provider": source.provider,
                "credibility": source.credibility,
                "reasons": ["domain tier"],
                "researcher": "researcher",
            }
        )
    events.append({"type": "critique", "round": 1, "verdict": "PASS", "reasons": ["cited"]})
    report = result.report
    half = len(report) // 2
    events += [{"type": "text", "text": report[:half]}, {"type": "text", "text": report[half:]}]
    events.append({"type": "done", "result": result.model_dump(mode="json")})
    return events


@dataclass
class _Run:
    id: str
    conversation_id: str
    owner: str
    question: str
    mode: RequestedMode
    status: RunState = "running"
    result: ResearchResult | None = None
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None


@dataclass
class _Conversation:
    id: str
    owner: str
    created_at: float
    updated_at: float
    runs: list[str] = field(default_factory=list)


class FakeResearch:
    """The fake research agent's state and methods (see the module docstring)."""

    def __init__(self) -> None:
        self.runs: dict[str, _Run] = {}
        self.conversations: dict[str, _Conversation] = {}
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []
        self.cancel_seen = threading.Event()
        # When set, runs fail with this message (an `error` event) instead of finishing.
        self.failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: asyncio.Event | None = None  # set: runs play on; clear: they wait

    # -- control from the test's thread ------------------------------------------------------

    def hold(self) -> None:
        """Runs wait after their `conversation` event until `release()`."""
        if self._loop is not None and self._open is not None:
            self._loop.call_soon_threadsafe(self._open.clear)

    def release(self) -> None:
        if self._loop is not None and self._open is not None:
            self._loop.call_soon_threadsafe(self._open.set)

    # -- the agent ---------------------------------------------------------------------------

    def app(self, settings: Settings) -> AgentApp:
        """A real agent app (security stack included) serving this fake as `research`."""
        return AgentApp(self.definition(), settings)

    def definition(self) -> AgentDefinition:
        registry = MethodRegistry()
        registry.add("ask", self.ask, streaming=True)
        registry.add("start", self.start)
        registry.add("follow", self.follow, streaming=True)
        registry.add("get", self.get)
        registry.add("cancel", self.cancel)
        registry.add("conversations", self.list_conversations)
        registry.add("conversation", self.conversation)

        async def startup() -> None:
            self._loop = asyncio.get_running_loop()
            self._open = asyncio.Event()
            self._open.set()

        return AgentDefinition(
            name=RESEARCH,
            description="A fake research agent with canned events (tests only).",
            registry=registry,
            on_startup=[startup],
        )

    @staticmethod
    def _subject(ctx: CallContext) -> str:
        if ctx.delegation is None:
            raise RpcError(FORBIDDEN, "research acts only for a delegated principal")
        return ctx.delegation.subject

    def _run(self, run_id: str, subject: str) -> _Run:
        run = self.runs.get(run_id)
        if run is None or run.owner != subject:
            raise RpcError(RESEARCH_NOT_FOUND, "no research run with this id")
        return run

    async def start(self, params: StartParams, ctx: CallContext) -> dict[str, Any]:
        subject = self._subject(ctx)
        self.started.append((subject, params.model_dump(exclude_none=True)))
        now = time.time()
        if params.conversation_id is not None:
            conv = self.conversations.get(params.conversation_id)
            if conv is None or conv.owner != subject:
                raise RpcError(RESEARCH_NOT_FOUND, "no conversation with this id")
            conv.updated_at = now
        else:
            conv = _Conversation(new_conversation_id(), subject, now, now)
            self.conversations[conv.id] = conv
        run = _Run(new_run_id(), conv.id, subject, params.message, params.mode)
        conv.runs.append(run.id)
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._play(run))
        return RunStarted(id=run.id, conversation_id=conv.id).model_dump(mode="json")

    async def _emit(self, run: _Run, event: dict[str, Any]) -> None:
        async with run.changed:
            run.events.append(event)
            run.changed.notify_all()

    async def _play(self, run: _Run) -> None:
        await self._emit(
            run, {"type": "conversation", "conversation_id": run.conversation_id, "id": run.id}
        )
        if self._open is not None:
            await self._open.wait()
        if self.failure is not None:
            run.status, run.error = "failed", self.failure
            await self._emit(run, {"type": "error", "message": self.failure})
            return
        result = canned_result(run.id, run.conversation_id, run.question, run.mode)
        for event in _events(result):
            if event["type"] == "done":
                run.status, run.result = "done", result
            await self._emit(run, event)
            await asyncio.sleep(0)

    async def ask(self, params: StartParams, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """`start` and `follow` in one stream, which owns the run: leaving early cancels it."""
        started = await self.start(params, ctx)
        run = self.runs[started["id"]]
        try:
            async for event in self._events_of(run):
                yield event
        finally:
            await self._cancel(run)

    async def follow(self, params: RunRef, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        async for event in self._events_of(self._run(params.id, self._subject(ctx))):
            yield event

    async def _events_of(self, run: _Run) -> AsyncIterator[dict[str, Any]]:
        sent = 0
        while True:
            async with run.changed:
                while len(run.events) <= sent:
                    await run.changed.wait()
                fresh = run.events[sent:]
            for event in fresh:
                yield event
                if event["type"] in FINAL_EVENTS:
                    return
            sent += len(fresh)

    def _status(self, run: _Run) -> dict[str, Any]:
        status = RunStatus(id=run.id, status=run.status, result=run.result, error=run.error)
        return status.model_dump(mode="json")

    async def get(self, params: RunRef, ctx: CallContext) -> dict[str, Any]:
        return self._status(self._run(params.id, self._subject(ctx)))

    async def cancel(self, params: RunRef, ctx: CallContext) -> dict[str, Any]:
        run = self._run(params.id, self._subject(ctx))
        self.cancelled.append(run.id)
        await self._cancel(run)
        self.cancel_seen.set()
        return self._status(run)

    async def _cancel(self, run: _Run) -> None:
        """Cancel `run` if it is still running (recorded in `cancelled`)."""
        if run.status != "running":
            return
        if run.id not in self.cancelled:
            self.cancelled.append(run.id)
        if run.task is not None:
            run.task.cancel()
        run.status = "cancelled"
        await self._emit(run, {"type": "cancelled", "id": run.id})
        self.cancel_seen.set()

    async def list_conversations(
        self, params: ListConversationsParams, ctx: CallContext
    ) -> dict[str, Any]:
        subject = self._subject(ctx)
        mine = sorted(
            (c for c in self.conversations.values() if c.owner == subject),
            key=lambda c: c.updated_at,
            reverse=True,
        )
        start = int(params.cursor) if params.cursor and params.cursor.isdigit() else 0
        page = mine[start : start + params.limit]
        more = start + params.limit < len(mine)
        return {
            "conversations": [
                ConversationSummary(
                    id=c.id,
                    title=self.runs[c.runs[0]].question if c.runs else None,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                ).model_dump(mode="json")
                for c in page
            ],
            "next_cursor": str(start + params.limit) if more else None,
        }

    async def conversation(self, params: ConversationRef, ctx: CallContext) -> dict[str, Any]:
        subject = self._subject(ctx)
        conv = self.conversations.get(params.id)
        if conv is None or conv.owner != subject:
            raise RpcError(RESEARCH_NOT_FOUND, "no conversation with this id")
        runs = [self.runs[r] for r in conv.runs]
        turns = [
            Turn(
                question=run.question,
                mode=run.mode,
                run_id=run.id,
                status=run.status,
                answer=run.result.answer if run.result is not None else None,
            )
            for run in runs
        ]
        return Conversation(
            id=conv.id,
            owner=conv.owner,
            created_at=conv.created_at,
            updated_at=conv.updated_at,
            turns=turns,
        ).model_dump(mode="json")
