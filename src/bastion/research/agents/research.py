"""The research agent: runs research for the user a call acts for, and keeps the runs.

Methods (each authorized as `research.<method>`, see `bastion.research.protocol`): `ask`
(streams), `start`, `follow` (streams), `get`, `cancel`, `conversations`, `conversation`. Every
method acts for the delegation's subject (`CallContext.delegation`); a call without one is
FORBIDDEN, and another subject's run or conversation is RESEARCH_NOT_FOUND, exactly like a
missing one.

`start` records the run (`ResearchStore`), runs it as a background task and answers at once. The
run's events are kept in memory (`LiveRuns`): `follow` replays them from the first and then
streams them live; a run no longer in memory answers its last event from the store. `cancel`
cancels the task (and with it the researchers' streams). `ask` is `start` and `follow` in one
call, and its stream owns the run: a caller that leaves before the final event cancels it. A run
longer than `research.run_timeout_seconds` fails. Each report is also put in the pipeline's
object store (`pipeline.object_store_url`, a folder or S3, keyed by its SHA-256), and its key is
sent as a `progress` event (`stage: stored`) and logged. At start-up, runs left `running` by a
crash are failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import structlog

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.object_stores import object_store
from bastion.protocol.errors import INVALID_PARAMS, RESEARCH_NOT_FOUND, RpcError
from bastion.research.agents.common import subject
from bastion.research.agents.remote import RemoteCritic, RemoteResearcher
from bastion.research.engine import ResearchEngine, RunRequest
from bastion.research.live_runs import LiveRun, LiveRuns
from bastion.research.model import ResearchResult, RunStarted, RunStatus, Turn
from bastion.research.model_client import research_model
from bastion.research.protocol import (
    CRITIC,
    RESEARCH,
    RESEARCHER,
    ConversationRef,
    ListConversationsParams,
    RunRef,
    StartParams,
)
from bastion.research.store import ConversationNotFoundError, ResearchStore
from bastion.runtime import AgentDefinition, MethodRegistry, PeerClients
from bastion.storage import ObjectStore, shared_engine

__all__ = ["NAME", "ResearchService", "definition"]

NAME = RESEARCH
log = structlog.get_logger("bastion.research")


def not_found(what: str, ident: str) -> RpcError:
    return RpcError(RESEARCH_NOT_FOUND, data={what: ident})


class ResearchService:
    """The runs of one research agent: `engine` does the research, `store` keeps the runs,
    `objects` the reports."""

    def __init__(
        self,
        engine: ResearchEngine,
        store: ResearchStore,
        *,
        run_timeout_seconds: float,
        objects: ObjectStore | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.objects = objects
        self.runs = LiveRuns()
        self.timeout = run_timeout_seconds

    # -- lifecycle ----------------------------------------------------------------------------

    async def start_up(self) -> None:
        failed = await asyncio.to_thread(self.store.fail_orphans, before=time.time())
        if failed:
            log.warning("research runs interrupted by a restart marked failed", count=failed)

    async def shut_down(self) -> None:
        tasks = [run.task for run in self.runs.running() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- runs ---------------------------------------------------------------------------------

    async def start(self, params: StartParams, owner: str, correlation_id: str) -> dict[str, Any]:
        try:
            started, history = await asyncio.to_thread(self._begin, params, owner, correlation_id)
        except ConversationNotFoundError:
            raise not_found("conversation_id", params.conversation_id or "") from None
        request = RunRequest(
            run_id=started.id,
            conversation_id=started.conversation_id,
            owner=owner,
            message=params.message,
            mode=params.mode,
            history=history,
            correlation_id=correlation_id,
        )
        live = LiveRun(started.id, owner, started.conversation_id)
        self.runs.add(live)
        live.task = asyncio.create_task(self._execute(live, request), name=f"research {started.id}")
        return started.model_dump(mode="json")

    def _begin(
        self, params: StartParams, owner: str, correlation_id: str
    ) -> tuple[RunStarted, list[Turn]]:
        """The run recorded, and its conversation's earlier turns (none in a new one): one trip
        to the database thread."""
        started = self.store.start_run(
            owner,
            params.message,
            params.mode,
            conversation_id=params.conversation_id,
            correlation_id=correlation_id,
        )
        if params.conversation_id is None:
            return started, []
        conversation = self.store.get_conversation(started.conversation_id, owner=owner)
        turns = conversation.turns if conversation is not None else []
        return started, [t for t in turns if t.run_id != started.id]

    def _keep(self, run_id: str, result: ResearchResult, owner: str) -> str | None:
        """The report put in the object store (its key) and the run finished: one trip to the
        storage thread."""
        sha = None if self.objects is None else self.objects.put(result.report.encode("utf-8"))
        self.store.finish_run(run_id, result, owner=owner)
        return sha

    async def _execute(self, live: LiveRun, request: RunRequest) -> None:
        owner = live.owner
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.engine.run(request, live.emit)
            sha = await asyncio.to_thread(self._keep, live.run_id, result, owner)
            if sha is not None:
                log.info("research report stored", run_id=live.run_id, report_sha256=sha)
                await live.emit(
                    {
                        "type": "progress",
                        "stage": "stored",
                        "message": "report stored",
                        "report_sha256": sha,
                    }
                )
            await live.emit({"type": "done", "result": result.model_dump(mode="json")})
        except TimeoutError:
            message = (
                f"the run did not finish within research.run_timeout_seconds "
                f"({self.timeout:g} s); ask a narrower question or raise the limit"
            )
            await self._fail(live, message)
        except asyncio.CancelledError:
            await asyncio.to_thread(self.store.cancel_run, live.run_id, owner=owner)
            await live.emit({"type": "cancelled", "id": live.run_id})
        except Exception as error:
            log.exception("research run failed", run_id=live.run_id)
            await self._fail(live, f"research failed: {error}")

    async def _fail(self, live: LiveRun, message: str) -> None:
        await asyncio.to_thread(self.store.fail_run, live.run_id, message, owner=live.owner)
        await live.emit({"type": "error", "message": message})

    async def ask(
        self, params: StartParams, owner: str, correlation_id: str
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Start a run and stream its events to the final one; leaving early cancels it."""
        started = await self.start(params, owner, correlation_id)
        live = self.runs.get(started["id"], owner)
        assert live is not None
        try:
            async for event in live.follow():
                yield event
        finally:
            if live.task is not None and not live.task.done():
                live.task.cancel()
                await asyncio.gather(live.task, return_exceptions=True)

    async def follow(self, run_id: str, owner: str) -> AsyncGenerator[dict[str, Any], None]:
        live = self.runs.get(run_id, owner)
        if live is not None:
            async for event in live.follow():
                yield event
            return
        status = await asyncio.to_thread(self.store.get_run, run_id, owner=owner)
        if status is None:
            raise not_found("id", run_id)
        yield _last_event(status)

    async def get(self, run_id: str, owner: str) -> RunStatus:
        status = await asyncio.to_thread(self.store.get_run, run_id, owner=owner)
        if status is None:
            raise not_found("id", run_id)
        return status

    async def cancel(self, run_id: str, owner: str) -> RunStatus:
        live = self.runs.get(run_id, owner)
        if live is not None and live.task is not None and not live.task.done():
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
        elif live is None:
            # Not running here (finished, or left by another process): the store decides.
            await asyncio.to_thread(self.store.cancel_run, run_id, owner=owner)
        return await self.get(run_id, owner)


def _last_event(status: RunStatus) -> dict[str, Any]:
    if status.status == "done" and status.result is not None:
        return {"type": "done", "result": status.result.model_dump(mode="json")}
    if status.status == "cancelled":
        return {"type": "cancelled", "id": status.id}
    if status.status == "failed":
        return {"type": "error", "message": status.error or "the run failed"}
    return {
        "type": "error",
        "message": "the run is not running on this research service; ask again",
    }


def build_registry(service: ResearchService) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("ask", streaming=True)
    async def ask(params: StartParams, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Start a run for the asking user and stream its events, from `conversation` to done,
        error or cancelled; the run is cancelled when the caller leaves before."""
        # Closed with this stream, at once: the run ends when its caller leaves.
        async with contextlib.aclosing(
            service.ask(params, subject(ctx), ctx.correlation_id)
        ) as run:
            async for event in run:
                yield event

    @registry.method("start")
    async def start(params: StartParams, ctx: CallContext) -> dict[str, Any]:
        """Start a run for the asking user; answers at once with its ids."""
        return await service.start(params, subject(ctx), ctx.correlation_id)

    @registry.method("follow", streaming=True)
    async def follow(params: RunRef, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        """The run's events from the first, then live, ending with done, error or cancelled."""
        async with contextlib.aclosing(service.follow(params.id, subject(ctx))) as events:
            async for event in events:
                yield event

    @registry.method("get")
    async def get(params: RunRef, ctx: CallContext) -> dict[str, Any]:
        """The run's status, with its result when done."""
        return (await service.get(params.id, subject(ctx))).model_dump(mode="json")

    @registry.method("cancel")
    async def cancel(params: RunRef, ctx: CallContext) -> dict[str, Any]:
        """Cancel a running run; answers its status."""
        return (await service.cancel(params.id, subject(ctx))).model_dump(mode="json")

    @registry.method("conversations")
    async def conversations(params: ListConversationsParams, ctx: CallContext) -> dict[str, Any]:
        """The asking user's conversations, newest first, a page at a time."""
        owner = subject(ctx)
        try:
            page, cursor = await asyncio.to_thread(
                service.store.list_conversations, owner, cursor=params.cursor, limit=params.limit
            )
        except ValueError:
            raise RpcError(
                INVALID_PARAMS,
                data=[
                    {
                        "field": "cursor",
                        "problem": "pass next_cursor of the previous page "
                        "unchanged, or leave it out for the first page",
                    }
                ],
            ) from None
        return {
            "conversations": [c.model_dump(mode="json") for c in page],
            "next_cursor": cursor,
        }

    @registry.method("conversation")
    async def conversation(params: ConversationRef, ctx: CallContext) -> dict[str, Any]:
        """One of the asking user's conversations, with its turns."""
        found = await asyncio.to_thread(
            service.store.get_conversation, params.id, owner=subject(ctx)
        )
        if found is None:
            raise not_found("id", params.id)
        return found.model_dump(mode="json")

    return registry


def definition(settings: Settings) -> AgentDefinition:
    """The research agent: the engine over the researcher and critic services."""
    research = settings.research
    peers = PeerClients(
        settings, NAME, (RESEARCHER, CRITIC), timeout_seconds=research.run_timeout_seconds
    )
    model, model_name = research_model(settings, NAME)
    engine = ResearchEngine(
        RemoteResearcher(peers[RESEARCHER]),
        RemoteCritic(peers[CRITIC]),
        research,
        model=model,
        model_name=model_name,
    )
    service = ResearchService(
        engine,
        ResearchStore(shared_engine(settings.database_url())),
        run_timeout_seconds=research.run_timeout_seconds,
        objects=object_store(settings),
    )

    async def close() -> None:
        await service.shut_down()
        await peers.aclose()
        if model is not None:
            await model.aclose()

    return AgentDefinition(
        name=NAME,
        description="Deep research: plans, researches in parallel, reviews and writes cited "
        "reports.",
        registry=build_registry(service),
        skills=[
            {
                "id": "research",
                "name": "Deep research",
                "description": "Answers questions with a cited report from the configured "
                "sources, or chats.",
                "tags": ["research", "chat"],
            }
        ],
        on_startup=[service.start_up],
        on_shutdown=[close],
    )
