"""`WS /ws/research` through a real gateway in front of the fake research agent: refusals
(4001, 4003, audited, nothing sent), the events of a run in order then 1000, pings while idle,
a client that leaves cancels its run, and malformed client messages (1008, 1003)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from bastion.config import AgentEndpoint, Settings
from bastion.research.model import ResearchResult
from bastion.security.apikeys import parse_key_id
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.testing.ports import closed_port_url
from bastion.web import build_gateway
from tests.web.research_world import World, recv, research_world, until_closed

BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64
PING_SECONDS = 0.3
QUESTION = {"message": "Who wrote the first program?", "mode": "research"}


def fast_pings(settings: Settings) -> None:
    settings.events.ping_interval_seconds = PING_SECONDS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with research_world(tmp_path_factory.mktemp("research-ws"), fast_pings) as w:
        yield w


def without_pings(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e["type"] != "ping"]


async def test_a_run_streams_its_events_in_order_then_closes_1000(world: World) -> None:
    async with world.connect("alice") as ws:
        assert ws.subprotocol == "bastion.v1"
        sent = time.monotonic()
        await ws.send(json.dumps(QUESTION))
        first = await recv(ws)
        assert time.monotonic() - sent < 2.0  # a generous bound: it is sent right after start
        code, reason, rest = await until_closed(ws)
    assert first["type"] == "conversation"
    assert set(first) == {"type", "conversation_id", "id"}
    events = without_pings(rest)
    kinds = [e["type"] for e in events]
    assert kinds == [
        "progress",
        "plan",
        "progress",
        "source",
        "source",
        "critique",
        "text",
        "text",
        "done",
    ]
    assert (code, reason) == (1000, "the run ended")
    plan = events[1]
    assert plan["round"] == 1 and plan["sub_questions"]
    assert {e["credibility"] for e in events if e["type"] == "source"} == {0.9, 0.6}
    result = ResearchResult.model_validate(events[-1]["result"])
    assert (result.id, result.conversation_id) == (first["id"], first["conversation_id"])
    assert "".join(str(e["text"]) for e in events if e["type"] == "text") == result.report
    assert ("alice", QUESTION) in world.fake.started
    records = world.audit(lambda a: a.method == "research" and a.status == 101)
    assert {r.principal for r in records} >= {"alice"}


async def test_the_token_query_form_works_too(world: World) -> None:
    url = f"{world.ws_url}?token={world.project.keys['bob']}"
    async with connect(url, open_timeout=10) as ws:
        await ws.send(json.dumps({"message": "hi", "mode": "chat"}))
        code, _, seen = await until_closed(ws)
    assert code == 1000
    assert seen[0]["type"] == "conversation" and seen[-1]["type"] == "done"


async def test_bad_or_missing_credentials_close_4001_before_anything(world: World) -> None:
    before = len(world.fake.started)
    cases = {
        "no credential": connect(world.ws_url, open_timeout=10),
        "unknown key": connect(
            world.ws_url,
            subprotocols=[Subprotocol("bastion.v1"), Subprotocol(f"bearer.{BAD_KEY}")],
        ),
        "empty query token": connect(f"{world.ws_url}?token=", open_timeout=10),
        "bearer without bastion.v1": connect(
            world.ws_url, subprotocols=[Subprotocol(f"bearer.{world.project.keys['alice']}")]
        ),
    }
    for name, connecting in cases.items():
        async with connecting as ws:
            code, reason, seen = await until_closed(ws)
        assert (code, seen) == (4001, []), name
        assert reason.startswith("unauthenticated"), name
    assert len(world.fake.started) == before  # nothing reached the research agent
    denied = world.audit(
        lambda a: a.method == "research" and a.outcome == "denied:authenticate" and a.status == 401,
        at_least=len(cases),
    )
    assert len(denied) >= len(cases)


async def test_a_principal_without_the_grant_is_closed_4003_audited(world: World) -> None:
    async with world.connect("nobody") as ws:
        code, reason, seen = await until_closed(ws)
    assert (code, seen) == (4003, [])
    assert "gateway.research" in reason
    (record,) = world.audit(lambda a: a.principal == "nobody" and a.method == "research")
    assert (record.status, record.outcome) == (403, "denied:authorize")


async def test_pings_while_the_run_is_idle(world: World) -> None:
    world.fake.hold()
    try:
        async with world.connect("alice") as ws:
            await ws.send(json.dumps(QUESTION))
            assert (await recv(ws))["type"] == "conversation"
            pings = [await recv(ws, timeout=5) for _ in range(2)]
            assert [p["type"] for p in pings] == ["ping", "ping"]
            assert all(isinstance(p["at"], str) for p in pings)
            world.fake.release()
            code, _, rest = await until_closed(ws)
        assert code == 1000
        assert without_pings(rest)[-1]["type"] == "done"
    finally:
        world.fake.release()


async def test_a_client_that_leaves_cancels_its_run(world: World) -> None:
    world.fake.hold()
    world.fake.cancel_seen.clear()
    try:
        async with world.connect("alice") as ws:
            await ws.send(json.dumps(QUESTION))
            run_id = (await recv(ws))["id"]
        assert await asyncio.to_thread(world.fake.cancel_seen.wait, 5)
        assert run_id in world.fake.cancelled
        run = world.request("GET", f"/api/research/{run_id}").json()
        assert run["status"] == "cancelled"
    finally:
        world.fake.release()


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"message": ""}),
        json.dumps({"message": "hi", "mode": "deep"}),
        json.dumps({"question": "hi"}),
    ],
)
async def test_a_malformed_message_is_an_error_event_then_1008(world: World, message: str) -> None:
    before = len(world.fake.started)
    async with world.connect("alice") as ws:
        await ws.send(message)
        code, _, seen = await until_closed(ws)
    assert code == 1008
    assert [e["type"] for e in seen] == ["error"]
    assert seen[0]["message"]
    assert len(world.fake.started) == before


async def test_a_binary_message_is_closed_1003(world: World) -> None:
    async with world.connect("alice") as ws:
        await ws.send(b"\x00\x01")
        code, _, seen = await until_closed(ws)
    assert (code, seen) == (1003, [])


async def test_a_second_message_is_refused_and_the_run_cancelled(world: World) -> None:
    world.fake.hold()
    world.fake.cancel_seen.clear()
    try:
        async with world.connect("alice") as ws:
            await ws.send(json.dumps(QUESTION))
            run_id = (await recv(ws))["id"]
            await ws.send(json.dumps(QUESTION))
            code, _, seen = await until_closed(ws)
        assert code == 1008
        assert without_pings(seen)[-1]["type"] == "error"
        assert await asyncio.to_thread(world.fake.cancel_seen.wait, 5)
        assert run_id in world.fake.cancelled
    finally:
        world.fake.release()


async def test_another_principal_s_conversation_is_an_error_then_1008(world: World) -> None:
    theirs = world.ask("Alice's", principal="alice")["conversation_id"]
    async with world.connect("bob") as ws:
        await ws.send(json.dumps({"message": "and?", "conversation_id": theirs}))
        code, _, seen = await until_closed(ws)
    assert code == 1008
    assert [e["type"] for e in seen] == ["error"]
    assert "no conversation" in str(seen[0]["message"])


async def test_a_failed_run_ends_with_its_error_then_1000(world: World) -> None:
    world.fake.failure = "every provider failed"
    try:
        async with world.connect("alice") as ws:
            await ws.send(json.dumps(QUESTION))
            code, _, seen = await until_closed(ws)
    finally:
        world.fake.failure = None
    assert code == 1000
    events = without_pings(seen)
    assert [e["type"] for e in events] == ["conversation", "error"]
    assert events[-1]["message"] == "every provider failed"
    run = world.request("GET", f"/api/research/{events[0]['id']}").json()
    assert (run["status"], run["error"]) == ("failed", "every provider failed")


async def test_research_down_is_an_error_then_1013(world: World) -> None:
    settings = world.settings.model_copy(deep=True)
    settings.agents["research"] = AgentEndpoint(url=closed_port_url())
    settings.client.max_retries = 0
    with serve_in_thread(build_gateway(settings)) as gw:
        url = "ws" + gw.url.removeprefix("http") + "/ws/research"
        token = world.project.keys["alice"]
        async with connect(f"{url}?token={token}", open_timeout=10) as ws:
            await ws.send(json.dumps(QUESTION))
            code, _, seen = await until_closed(ws)
    assert code == 1013
    assert [e["type"] for e in seen] == ["error"]
    assert "unavailable" in str(seen[0]["message"])


async def test_a_withdrawn_grant_ends_the_stream_4003_and_cancels_the_run(world: World) -> None:
    world.fake.hold()
    world.fake.cancel_seen.clear()
    path = world.settings.path(world.settings.policy.file)
    original = path.read_text()
    try:
        async with world.connect("carol") as ws:
            await ws.send(json.dumps(QUESTION))
            run_id = (await recv(ws))["id"]
            policy = json.loads(original)
            policy["allow"]["carol"].remove("gateway.research")
            path.write_text(json.dumps(policy))
            code, reason, _ = await until_closed(ws)
        assert code == 4003
        assert "gateway.research" in reason
        assert await asyncio.to_thread(world.fake.cancel_seen.wait, 5)
        assert run_id in world.fake.cancelled
    finally:
        path.write_text(original)
        world.fake.release()


async def test_a_revoked_key_ends_the_stream_4001_and_cancels_the_run(world: World) -> None:
    store = build_api_key_store(world.settings)
    key = store.create("bob", label="revoked mid-run")
    key_id = parse_key_id(key)
    assert key_id is not None
    world.fake.hold()
    world.fake.cancel_seen.clear()
    try:
        async with connect(f"{world.ws_url}?token={key}", open_timeout=10) as ws:
            await ws.send(json.dumps(QUESTION))
            started = await recv(ws)
            assert started["type"] == "conversation"
            store.revoke(key_id)
            code, reason, seen = await until_closed(ws)
        assert code == 4001, (code, reason, seen)
        assert key not in reason
        # The run ends with the socket: leaving the stream cancels it, with no further call
        # (which the revoked key could no longer make).
        assert await asyncio.to_thread(world.fake.cancel_seen.wait, 5)
        assert started["id"] in world.fake.cancelled
    finally:
        world.fake.release()
