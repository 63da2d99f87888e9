"""The three research agents served on loopback with the whole security stack, from a project
laid out by `bastion init`: researcher.research and critic.critique stream over HTTP; the
research agent runs a question over them (every hop under its own credential and the run's
correlation ID), acts only for the delegation's subject, replays and cancels runs; and the
policy keeps each agent to its own calls."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bastion.agents.registry import definition_for
from bastion.config import ResearchSettings, Settings, load_settings
from bastion.core.context import (
    CallContext,
    Delegation,
    Identity,
    RequestContext,
    correlation_id_var,
    new_correlation_id,
    onward_delegation_var,
)
from bastion.project import init_project
from bastion.protocol.endpoints import DELEGATION_HEADER
from bastion.protocol.errors import FORBIDDEN, RESEARCH_NOT_FOUND, RpcError
from bastion.research.agents.research import ResearchService, build_registry
from bastion.research.engine import ResearchEngine
from bastion.research.findings import report_to_json
from bastion.research.model import ResearchResult
from bastion.research.ports import LocalCritic, ResearcherItem
from bastion.research.sources import Passage
from bastion.research.store import ResearchStore
from bastion.research.synthesis import synthesize
from bastion.runtime import AgentApp, AgentClient, MethodRegistry, RpcCallError
from bastion.security import build_security, resolve
from bastion.storage import LocalObjectStore, shared_engine
from bastion.testing.live_server import serve_in_thread
from bastion.testing.pipeline_stack import assign_ports
from tests.audit_rows import audit_rows
from tests.research.offline_corpus import source
from tests.research.service_fixtures import write_corpus

SERVED = ("archivist", "researcher", "critic")


@dataclass
class Stack:
    settings: Settings

    def key(self, principal: str) -> str:
        return resolve(f"secret://file/secrets/{principal}.key", self.settings.base_dir).get()

    def client(
        self, agent: str, principal: str, headers: dict[str, str] | None = None
    ) -> AgentClient:
        return AgentClient(
            self.settings.agents[agent].url, api_key=self.key(principal), headers=headers
        )

    async def delegation(self, subject: str, actor: str) -> dict[str, str]:
        """The header of a delegation of `subject` (a new key of theirs) to `actor`."""
        security = build_security("gateway", self.settings)
        key = security.api_keys.create(subject, label="test")
        identity, _ = await security.api_keys.verify(key)
        assert identity is not None and identity.api_key_id is not None
        token = security.delegations.mint(
            subject, key_id=identity.api_key_id, actors=(actor,), expires_at=time.time() + 300
        )
        return {DELEGATION_HEADER: token}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("research")
    config = init_project(directory).config
    corpus = write_corpus(directory)
    assign_ports(
        config,
        audit={"flush_interval_seconds": 0.05},
        research={"corpus": str(corpus), "providers": ["corpus", "archive"]},
    )
    settings = load_settings(config)
    with contextlib.ExitStack() as running:
        for name in SERVED:
            app = AgentApp(definition_for(name, settings), settings)
            port = urlsplit(settings.agents[name].url).port
            running.enter_context(serve_in_thread(app, port=port or 0))
        yield Stack(settings)


def context(method: str, subject: str | None, correlation_id: str) -> CallContext:
    delegation = (
        None
        if subject is None
        else Delegation(
            subject=subject,
            actors=("gateway",),
            expires_at=time.time() + 300,
            token="delegation-token",
        )
    )
    request = RequestContext(
        agent="research",
        correlation_id=correlation_id,
        client="127.0.0.1",
        headers={},
        identity=Identity(principal="gateway", auth_method="api_key"),
        delegation=delegation,
    )
    return CallContext(request=request, method=method)


class Caller:
    """The research agent's methods called in this process, as the gateway would call them
    for `subject` (the delegation the token verification would have set)."""

    def __init__(self, registry: MethodRegistry, settings: Settings | None = None) -> None:
        self.registry = registry
        # The gateway's stack, to mint the delegations the method's own calls pass on.
        self.security = build_security("gateway", settings) if settings is not None else None
        self._key_ids: dict[str, str] = {}

    def _pass_on(self, subject: str | None) -> None:
        """Let the method's calls to its peers carry `subject`'s delegation, as they would
        after the gateway's call (a key of `subject`'s stands behind it)."""
        if self.security is None or subject is None:
            onward_delegation_var.set(None)
            return
        if subject not in self._key_ids:
            key = self.security.api_keys.create(subject, label="test")
            self._key_ids[subject] = key.split("_")[1]  # bst_<key id>_<secret>
        received = Delegation(
            subject=subject,
            actors=("gateway",),
            expires_at=time.time() + 300,
            token="",
            key_id=self._key_ids[subject],
        )
        onward_delegation_var.set(self.security.delegations.onward(received))

    def _prepare(
        self, method: str, params: dict[str, Any], subject: str | None, cid: str | None
    ) -> Any:
        spec = self.registry.get(method)
        assert spec is not None
        cid = cid or new_correlation_id()
        correlation_id_var.set(cid)
        self._pass_on(subject)
        bound = MethodRegistry.bind(spec, params)
        return MethodRegistry.invoke(spec, bound, context(method, subject, cid))

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        subject: str | None = "alice",
        cid: str | None = None,
    ) -> Any:
        return await self._prepare(method, params, subject, cid)

    async def stream(
        self, method: str, params: dict[str, Any], subject: str | None = "alice"
    ) -> list[dict[str, Any]]:
        return [event async for event in self._prepare(method, params, subject, None)]


@pytest.fixture
async def research_definition(stack: Stack) -> AsyncIterator[Any]:
    """The research agent as `bastion serve research` builds it (its peer clients belong to
    the test's event loop, so one per test), started and shut down like a served agent."""
    definition = definition_for("research", stack.settings)
    for hook in definition.on_startup:
        await hook()
    yield definition
    for hook in definition.on_shutdown:
        await hook()


@pytest.fixture
def caller(research_definition: Any, stack: Stack) -> Caller:
    return Caller(research_definition.registry, stack.settings)


# --------------------------------------------------------------------------- researcher, critic


async def test_researcher_streams_sources_then_findings_over_http(stack: Stack) -> None:
    cid = new_correlation_id()
    correlation_id_var.set(cid)
    as_alice = await stack.delegation("alice", "research")
    async with stack.client("researcher", "research", as_alice) as client:
        items = [
            item
            async for item in client.stream(
                "research",
                {
                    "sub_question": "When was the Eiffel Tower completed?",
                    "owner": "alice",
                    "researcher": "researcher-1",
                },
            )
        ]
    kinds = [item["type"] for item in items]
    assert kinds[-1] == "findings" and "source" in kinds and kinds[0] == "progress"
    findings = items[-1]["findings"]
    kept = [p["source"]["id"] for p in findings["passages"]]
    assert "eiffel" in kept and "tower-fan-page" not in kept
    assert [q["id"] for q in findings["quarantined"]] == ["tower-fan-page"]
    assert all(p["credibility"] == 0.8 for p in findings["passages"])
    assert findings["failures"] == []  # the archive answered (nothing of alice's matched)
    # the quarantine is in the researcher's audit trail, under the call's correlation ID
    rows = audit_rows(
        stack.settings, lambda r: r.correlation_id == cid and r.method == "quarantine"
    )
    assert [(r.agent, r.principal, r.outcome) for r in rows] == [
        ("researcher", "researcher", "quarantined")
    ]
    assert "corpus:tower-fan-page" in (rows[0].detail or "")
    assert "Ignore all previous" not in (rows[0].detail or "")


async def test_critic_streams_its_verdict_over_http(stack: Stack) -> None:
    eiffel = source("eiffel")
    passage = Passage(source=eiffel, index=1, text=eiffel.text, score=1.0)
    question = "When was the Eiffel Tower completed?"
    report = synthesize(question, [question], [passage])
    params = {
        "question": question,
        "sub_questions": [question],
        "report": report_to_json(report),
        "credibility": {"eiffel": 0.8},
        "round": 1,
    }
    async with stack.client("critic", "research") as client:
        items = [item async for item in client.stream("critique", params)]
        assert items[-1] == {
            "type": "verdict",
            "round": 1,
            "verdict": "PASS",
            "reasons": items[-1]["reasons"],
            "gaps": [],
        }
        low = {**params, "credibility": {"eiffel": 0.1}}
        refine = [item async for item in client.stream("critique", low)][-1]
        assert refine["verdict"] == "REFINE" and refine["gaps"] == [question]
        with pytest.raises(RpcCallError) as broken:
            [item async for item in client.stream("critique", {**params, "report": {"x": 1}})]
        assert broken.value.code == -32602


# --------------------------------------------------------------------------- research agent


async def follow_done(caller: Caller, run_id: str, subject: str = "alice") -> list[dict[str, Any]]:
    events = await asyncio.wait_for(caller.stream("follow", {"id": run_id}, subject), 60)
    assert events[-1]["type"] in ("done", "error", "cancelled"), events[-1]
    return events


async def test_a_run_goes_over_the_researcher_and_critic_under_one_correlation_id(
    stack: Stack, caller: Caller
) -> None:
    cid = new_correlation_id()
    started = await caller.call(
        "start", {"message": "When was the director of Jaws born?"}, cid=cid
    )
    assert set(started) == {"id", "conversation_id", "status"} and started["status"] == "running"
    events = await follow_done(caller, started["id"])
    assert events[0] == {
        "type": "conversation",
        "conversation_id": started["conversation_id"],
        "id": started["id"],
    }
    result = ResearchResult.model_validate(events[-1]["result"])
    assert result.answer == "December 18, 1946"
    assert result.correlation_id == cid
    assert [q.id for q in result.quarantined] == []  # the fan page did not match this question
    # the stored status is the same result
    status = await caller.call("get", {"id": started["id"]})
    assert status["status"] == "done" and status["result"]["report"] == result.report
    # the report is in the object store, under its SHA-256
    stored = next(e for e in events if e.get("stage") == "stored")
    sha = hashlib.sha256(result.report.encode()).hexdigest()
    assert stored["report_sha256"] == sha
    objects = LocalObjectStore(stack.settings.path(stack.settings.pipeline.objects_dir))
    assert objects.get(sha) == result.report.encode()
    # every hop is audited by its callee as the research agent, under the run's correlation ID
    expected = {
        ("researcher", "research", "research", "ok"),
        ("critic", "critique", "research", "ok"),
        ("archivist", "search", "researcher", "ok"),
    }
    hops: set[tuple[str, str, str, str]] = set()
    deadline = time.monotonic() + 5
    while not expected <= hops and time.monotonic() < deadline:
        rows = audit_rows(stack.settings, lambda r: r.correlation_id == cid, at_least=4)
        hops = {(r.agent, r.method, r.principal, r.outcome) for r in rows}
    assert hops == expected  # two researcher calls and their archive searches, one critique


async def test_follow_replays_a_finished_run_and_the_store_answers_once_it_is_gone(
    stack: Stack, caller: Caller, research_definition: Any
) -> None:
    started = await caller.call("start", {"message": "When was the Eiffel Tower completed?"})
    live = await follow_done(caller, started["id"])
    again = await follow_done(caller, started["id"])
    assert again == live  # from the first event, after the run ended
    assert [e["type"] for e in live].count("text") >= 1
    # a new service on the same store (a restart): only the final event is left
    fresh = Caller(
        build_registry(
            ResearchService(
                research_definition_engine(stack),
                ResearchStore(shared_engine(stack.settings.database_url())),
                run_timeout_seconds=30,
            )
        ),
        stack.settings,
    )
    replayed = await follow_done(fresh, started["id"])
    assert replayed == [live[-1]]


def research_definition_engine(stack: Stack) -> ResearchEngine:
    return ResearchEngine(BlockedResearcher(), LocalCritic(), stack.settings.research)


async def test_every_method_needs_a_delegation(stack: Stack, caller: Caller) -> None:
    for method, params in [
        ("start", {"message": "When was the Eiffel Tower completed?"}),
        ("get", {"id": "run_x"}),
        ("cancel", {"id": "run_x"}),
        ("conversations", {}),
        ("conversation", {"id": "conv_x"}),
    ]:
        with pytest.raises(RpcError) as refused:
            await caller.call(method, params, subject=None)
        assert refused.value.code == FORBIDDEN
        assert "delegation" in refused.value.message
    for method, params in [
        ("follow", {"id": "run_x"}),
        ("ask", {"message": "When was the Eiffel Tower completed?"}),
    ]:
        with pytest.raises(RpcError) as refused:
            await caller.stream(method, params, subject=None)
        assert refused.value.code == FORBIDDEN


async def test_over_http_without_a_delegation_is_forbidden(stack: Stack) -> None:
    research = AgentApp(definition_for("research", stack.settings), stack.settings)
    with serve_in_thread(research) as server:
        url = str(getattr(server, "url", server))
        async with AgentClient(url, api_key=stack.key("gateway")) as client:
            with pytest.raises(RpcCallError) as refused:
                await client.call("start", {"message": "When was the Eiffel Tower completed?"})
    assert refused.value.code == FORBIDDEN
    assert "delegation" in refused.value.message


async def test_another_subjects_runs_and_conversations_are_not_found(
    stack: Stack, caller: Caller
) -> None:
    started = await caller.call("start", {"message": "hi"})
    await follow_done(caller, started["id"])
    for method, params in [
        ("get", {"id": started["id"]}),
        ("cancel", {"id": started["id"]}),
        ("conversation", {"id": started["conversation_id"]}),
        ("start", {"message": "hello", "conversation_id": started["conversation_id"]}),
    ]:
        with pytest.raises(RpcError) as hidden:
            await caller.call(method, params, subject="bob")
        assert hidden.value.code == RESEARCH_NOT_FOUND
    with pytest.raises(RpcError) as hidden:
        await caller.stream("follow", {"id": started["id"]}, subject="bob")
    assert hidden.value.code == RESEARCH_NOT_FOUND
    listed = await caller.call("conversations", {}, subject="bob")
    assert started["conversation_id"] not in {c["id"] for c in listed["conversations"]}
    mine = await caller.call("conversations", {})
    assert started["conversation_id"] in {c["id"] for c in mine["conversations"]}


async def test_a_follow_up_in_a_conversation_uses_the_previous_answer(caller: Caller) -> None:
    first = await caller.call("start", {"message": "Who directed Jaws?"})
    done = await follow_done(caller, first["id"])
    assert done[-1]["result"]["answer"] == "Steven Spielberg"
    second = await caller.call(
        "start", {"message": "and when was he born?", "conversation_id": first["conversation_id"]}
    )
    assert second["conversation_id"] == first["conversation_id"]
    result = (await follow_done(caller, second["id"]))[-1]["result"]
    assert result["question"] == "When was Steven Spielberg born?"
    assert result["answer"] == "December 18, 1946"
    conversation = await caller.call("conversation", {"id": first["conversation_id"]})
    assert [t["answer"] for t in conversation["turns"]] == ["Steven Spielberg", "December 18, 1946"]


# --------------------------------------------------------------------------- cancel, timeout


class BlockedResearcher:
    """A researcher that never finishes; records that its stream was closed."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.closed = False

    async def research(
        self, sub_question: str, *, owner: str, researcher: str
    ) -> AsyncGenerator[ResearcherItem, None]:
        try:
            yield {"type": "progress", "stage": "searching", "message": sub_question}
            self.started.set()
            await asyncio.Event().wait()
        finally:
            self.closed = True


def local_service(stack: Stack, researcher: BlockedResearcher, timeout: float) -> Caller:
    settings = ResearchSettings(run_timeout_seconds=timeout)
    engine = ResearchEngine(researcher, LocalCritic(), settings)
    store = ResearchStore(shared_engine(stack.settings.database_url()))
    return Caller(build_registry(ResearchService(engine, store, run_timeout_seconds=timeout)))


async def test_cancel_stops_the_run_and_its_researchers(stack: Stack) -> None:
    researcher = BlockedResearcher()
    caller = local_service(stack, researcher, 60)
    started = await caller.call("start", {"message": "When was the Eiffel Tower completed?"})
    await asyncio.wait_for(researcher.started.wait(), 10)
    status = await caller.call("cancel", {"id": started["id"]})
    assert status == {"id": started["id"], "status": "cancelled"}
    assert researcher.closed
    events = await follow_done(caller, started["id"])
    assert events[-1] == {"type": "cancelled", "id": started["id"]}
    # cancelling again changes nothing
    assert (await caller.call("cancel", {"id": started["id"]}))["status"] == "cancelled"


async def test_ask_streams_the_run_from_its_conversation_event_to_done(caller: Caller) -> None:
    events = await asyncio.wait_for(
        caller.stream("ask", {"message": "When was the director of Jaws born?"}), 60
    )
    first, last = events[0], events[-1]
    assert first["type"] == "conversation" and set(first) == {"type", "conversation_id", "id"}
    assert last["type"] == "done" and last["result"]["answer"] == "December 18, 1946"
    assert last["result"]["id"] == first["id"]
    status = await caller.call("get", {"id": first["id"]})
    assert status["status"] == "done"
    with pytest.raises(RpcError) as unknown:
        await caller.stream("ask", {"message": "and then?", "conversation_id": "conv_" + "0" * 26})
    assert unknown.value.code == RESEARCH_NOT_FOUND


async def test_leaving_ask_before_the_end_cancels_the_run(stack: Stack) -> None:
    researcher = BlockedResearcher()
    caller = local_service(stack, researcher, 60)
    stream = caller._prepare(
        "ask", {"message": "When was the Eiffel Tower completed?"}, "alice", None
    )
    first = await anext(stream)
    assert first["type"] == "conversation"
    await asyncio.wait_for(researcher.started.wait(), 10)
    await stream.aclose()  # the caller leaves
    assert researcher.closed
    status = await caller.call("get", {"id": first["id"]})
    assert status == {"id": first["id"], "status": "cancelled"}


async def test_a_run_over_its_time_limit_fails(stack: Stack) -> None:
    researcher = BlockedResearcher()
    caller = local_service(stack, researcher, 0.2)
    started = await caller.call("start", {"message": "When was the Eiffel Tower completed?"})
    events = await follow_done(caller, started["id"])
    assert events[-1]["type"] == "error"
    assert "run_timeout_seconds" in events[-1]["message"]
    status = await caller.call("get", {"id": started["id"]})
    assert status["status"] == "failed" and "run_timeout_seconds" in status["error"]
    assert researcher.closed


async def test_runs_left_running_are_failed_at_start_up(stack: Stack) -> None:
    store = ResearchStore(shared_engine(stack.settings.database_url()))
    orphan = store.start_run("carol", "When was the Eiffel Tower completed?", "auto")
    definition = definition_for("research", stack.settings)
    for hook in definition.on_startup:
        await hook()
    status = store.get_run(orphan.id, owner="carol")
    assert status is not None and status.status == "failed"


# --------------------------------------------------------------------------- least privilege


@pytest.mark.parametrize(
    ("principal", "agent", "method", "params"),
    [
        ("researcher", "archivist", "archive", {"document_id": "doc_x"}),
        ("critic", "researcher", "research", {"sub_question": "q", "owner": "alice"}),
        ("researcher", "critic", "critique", {}),
    ],
)
async def test_research_agents_may_call_only_their_own_peers(
    stack: Stack, principal: str, agent: str, method: str, params: dict[str, Any]
) -> None:
    cid = new_correlation_id()
    correlation_id_var.set(cid)
    async with stack.client(agent, principal) as client:
        with pytest.raises(RpcCallError) as refused:
            if method in ("research", "critique"):
                [item async for item in client.stream(method, params)]
            else:
                await client.call(method, params)
    assert refused.value.code == FORBIDDEN
    rows = audit_rows(
        stack.settings,
        lambda r: r.correlation_id == cid and r.principal == principal and r.method == method,
    )
    assert rows and rows[0].agent == agent and rows[0].outcome.startswith("denied:")


def test_init_writes_the_research_credentials_and_grants(stack: Stack) -> None:
    base = stack.settings.base_dir
    policy = yaml.safe_load((base / "policy.json").read_text())["allow"]
    for name in ("research", "researcher", "critic"):
        assert (base / "secrets" / f"{name}.key").is_file()
        assert stack.settings.agents[name].api_key == f"secret://file/secrets/{name}.key"
        assert stack.settings.rate_limit.principals[name] == "100000/minute"
    assert policy["research"] == ["researcher.research", "critic.critique"]
    assert policy["researcher"] == ["archivist.search", "archivist.get_document"]
    assert "critic" not in policy
    watching = {"research.metrics", "research.traces"}  # the alarm engine, the console
    assert [a for a in policy["gateway"] if a.startswith("research.") and a not in watching] == [
        "research.ask",
        "research.start",
        "research.get",
        "research.cancel",
        "research.conversations",
        "research.conversation",
    ]
    assert {"gateway.research", "gateway.conversations"} <= set(policy["submitter"])
