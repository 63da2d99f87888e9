"""The console's Research view: ask a question and watch its run, and read past conversations.

    GET /console/research                      the question form (the run itself streams over
                                               `WS /ws/research`, driven by `static/research.js`)
                                               and the caller's conversations (`?cursor=` pages)
    GET /console/research/conversations/{id}   one conversation: each turn's question, its report
                                               with citations linked to their sources, and the
                                               sources with their credibility; and the form again,
                                               for a follow-up in this conversation

Both are authorized as `gateway.console_research`. The research agent answers for the signed-in
principal only (`ResearchCalls`, a delegation naming them): another principal's conversation is
a 404 like a missing one. Asking needs `gateway.research` as well, checked again by the
WebSocket: without it the page shows why instead of the form.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.context import CallContext, Identity
from bastion.protocol.http_errors import ApiError, invalid
from bastion.research.model import RequestedMode, is_conversation_id
from bastion.research.protocol import ListConversationsParams
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.views.research_report import (
    Block,
    ShownSource,
    report_blocks,
    shown_sources,
)
from bastion.web.research import RESEARCH_ACTION, checked

VIEW = "research"
PAGE_SIZE = 20
# How many of a conversation's runs are fetched from the research agent at once.
FETCH_CONCURRENCY = 4
MODE_LABELS = {
    "auto": "Automatic (the agent chooses)",
    "chat": "Chat (a quick answer)",
    "research": "Research (plan, sources, critique)",
}
# (value, label) for the form's mode select; `auto` first, the default.
MODES = [(mode, MODE_LABELS.get(mode, mode)) for mode in get_args(RequestedMode)]
ASK_REFUSED = (
    "You may read past research here, but asking a question needs the gateway.research grant, "
    "which your role does not have."
)


def when(timestamp: float) -> str:
    """A Unix time as the console shows it (UTC, to the minute)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class ShownTurn:
    """One turn of a conversation on its page."""

    index: int
    question: str
    mode: str
    status: str
    answer: str | None
    run_id: str
    blocks: list[Block] = field(default_factory=list)
    sources: list[ShownSource] = field(default_factory=list)
    critique: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why the turn's report is not shown

    @property
    def prefix(self) -> str:
        return f"turn-{self.index}"


def _identity(call: CallContext) -> Identity:
    identity = call.request.identity
    assert identity is not None  # the guard admitted the call
    return identity


class ResearchView:
    """The handlers of the Research view."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    async def index(self, request: Request, call: CallContext) -> Response:
        principal = call.principal
        assert principal is not None
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        cursor = request.query_params.get("cursor")
        if cursor:
            params["cursor"] = cursor
        params = checked(ListConversationsParams, params)
        conversations: list[dict[str, Any]] = []
        next_cursor: str | None = None
        problem: str | None = None
        try:
            page = await self.deps.research.call(_identity(call), "conversations", params)
            conversations = list(page.get("conversations") or [])
            next_cursor = page.get("next_cursor")
        except ApiError as err:
            if err.status < 500:
                raise
            problem = f"Past conversations cannot be listed now: {err.message}. Reload to retry."
        return self.deps.pages.render(
            request,
            "research.html",
            principal=principal,
            view=VIEW,
            **self._ask_form(principal),
            conversations=[
                {
                    "id": str(c.get("id", "")),
                    "title": c.get("title") or "(untitled)",
                    "updated": when(float(c.get("updated_at", 0))),
                }
                for c in conversations
            ],
            next_cursor=next_cursor,
            paged=bool(cursor),
            problem=problem,
        )

    async def conversation(self, request: Request, call: CallContext) -> Response:
        principal = call.principal
        assert principal is not None
        conversation_id = str(request.path_params["id"])
        if not is_conversation_id(conversation_id):
            raise invalid("not a conversation id: open one from the Research page's list")
        identity = _identity(call)
        found = await self.deps.research.call(identity, "conversation", {"id": conversation_id})
        turns = [
            ShownTurn(
                index=i,
                question=str(turn.get("question", "")),
                mode=str(turn.get("mode", "")),
                status=str(turn.get("status", "")),
                answer=turn.get("answer"),
                run_id=str(turn.get("run_id", "")),
            )
            for i, turn in enumerate(found.get("turns") or [], start=1)
        ]
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fill(turn: ShownTurn) -> None:
            async with gate:
                await self._fill(identity, turn)

        await asyncio.gather(*(fill(turn) for turn in turns))
        return self.deps.pages.render(
            request,
            "conversation.html",
            principal=principal,
            view=VIEW,
            conversation_id=conversation_id,
            created=when(float(found.get("created_at", 0))),
            title=turns[0].question if turns else "(no questions yet)",
            turns=turns,
            **self._ask_form(principal),
        )

    def _ask_form(self, principal: str) -> dict[str, Any]:
        """What the question form needs (`research_ask.html`)."""
        return {
            "can_ask": self.deps.pages.allowed(principal, RESEARCH_ACTION),
            "ask_refused": ASK_REFUSED,
            "modes": MODES,
        }

    async def _fill(self, identity: Identity, turn: ShownTurn) -> None:
        """The turn's report, sources and critique from its run, when it finished."""
        if turn.status != "done":
            return
        try:
            run = await self.deps.research.call(identity, "get", {"id": turn.run_id})
        except ApiError as err:
            turn.problem = f"The report of this question cannot be shown: {err.message}."
            return
        result = run.get("result") or {}
        turn.sources = shown_sources(result.get("sources") or [])
        turn.blocks = report_blocks(str(result.get("report", "")), turn.sources, turn.prefix)
        turn.critique = list(result.get("critique") or [])
        turn.notes = [str(note) for note in result.get("notes") or []]


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    view = ResearchView(deps)
    return [
        Route("/console/research", deps.page(VIEW, view.index), methods=["GET"]),
        Route(
            "/console/research/conversations/{id}",
            deps.page(VIEW, view.conversation),
            methods=["GET"],
        ),
    ]
