"""The gateway's research routes over real HTTP, in front of the fake research agent: every
route's authentication and authorization (audited), body validation, runs and conversations
kept to their principal (delegation), and a research service that is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.config import AgentEndpoint
from bastion.research.model import (
    RunStatus,
    is_conversation_id,
    is_run_id,
    new_conversation_id,
    new_run_id,
)
from bastion.storage.models import AuditRecord
from bastion.testing import serve_in_thread
from bastion.testing.ports import closed_port_url
from bastion.web import build_gateway
from tests.web.research_world import World, research_world

BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64
RUN = new_run_id()
CONV = new_conversation_id()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with research_world(tmp_path_factory.mktemp("research-api")) as w:
        yield w


def done(world: World, run_id: str, principal: str = "alice") -> dict[str, object]:
    """The run once the fake has finished it."""
    deadline = time.monotonic() + 10
    while True:
        body = world.request("GET", f"/api/research/{run_id}", principal).json()
        if body["status"] != "running" or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.02)


def audited(world: World, cid: str) -> list[AuditRecord]:
    """The gateway's audit records of one request."""
    return world.audit(lambda a: a.correlation_id == cid and a.agent == "gateway")


def routes(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    started = world.ask()
    run, conv = started["id"], started["conversation_id"]
    return [
        ("POST", "/api/research", {"json": {"message": "hello"}}),
        ("GET", f"/api/research/{run}", {}),
        ("POST", f"/api/research/{run}/cancel", {}),
        ("GET", "/api/conversations", {}),
        ("GET", f"/api/conversations/{conv}", {}),
    ]


def test_start_answers_202_then_the_run_has_its_result(world: World) -> None:
    started = world.ask("Who wrote the first program?", mode="research")
    assert is_run_id(started["id"]) and is_conversation_id(started["conversation_id"])
    assert started["status"] == "running"
    assert started["correlation_id"]
    body = done(world, started["id"])
    RunStatus.model_validate({k: v for k, v in body.items() if k != "correlation_id"})
    assert body["status"] == "done"
    result = body["result"]
    assert isinstance(result, dict)
    assert result["id"] == started["id"]
    assert result["question"] == "Who wrote the first program?"
    # The research agent was asked for alice (the delegation's subject), with the body's fields.
    assert ("alice", {"message": "Who wrote the first program?", "mode": "research"}) in (
        world.fake.started
    )


def test_every_route_refuses_a_missing_or_bad_key_401_audited(world: World) -> None:
    for method, path, kw in routes(world):
        for headers in ({}, {"X-API-Key": BAD_KEY}):
            resp = world.request(method, path, None, headers=headers, **kw)
            assert resp.status_code == 401, (method, path, resp.text)
            assert resp.json()["error"]["code"] == "unauthenticated"
            (record,) = audited(world, resp.headers["x-correlation-id"])
            assert (record.status, record.outcome) == (401, "denied:authenticate")


def test_every_route_refuses_a_principal_without_the_grant_403_audited(world: World) -> None:
    for method, path, kw in routes(world):
        resp = world.request(method, path, "nobody", **kw)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"]["code"] == "forbidden"
        (record,) = audited(world, resp.headers["x-correlation-id"])
        assert (record.principal, record.status, record.outcome) == (
            "nobody",
            403,
            "denied:authorize",
        )
    assert all(subject != "nobody" for subject, _ in world.fake.started)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "x" * 4001}, "message"),
        ({"message": "hi", "mode": "deep"}, "mode"),
        ({"message": "hi", "conversation_id": "c1"}, "conversation_id"),
        ({"message": "hi", "extra": 1}, "extra"),
        ({"message": 42}, "message"),
        (["hi"], "JSON object"),
    ],
)
def test_a_bad_body_is_400_naming_the_problem(world: World, body: object, problem: str) -> None:
    before = len(world.fake.started)
    resp = world.request("POST", "/api/research", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    assert problem in error["message"]
    assert len(world.fake.started) == before  # never reached the research agent


def test_a_body_that_is_not_json_is_400(world: World) -> None:
    resp = world.request("POST", "/api/research", content=b"{nope")
    assert resp.status_code == 400
    assert "not JSON" in resp.json()["error"]["message"]


def test_malformed_ids_are_400(world: World) -> None:
    for path in ("/api/research/nope", "/api/research/nope/cancel", "/api/conversations/x"):
        method = "POST" if path.endswith("cancel") else "GET"
        resp = world.request(method, path)
        assert resp.status_code == 400, path
        assert resp.json()["error"]["code"] == "invalid_request"
    resp = world.request("GET", "/api/conversations?limit=0")
    assert resp.status_code == 400
    assert "limit" in resp.json()["error"]["message"]


def test_another_principal_s_run_and_conversation_are_404_like_missing_ones(
    world: World,
) -> None:
    mine = world.ask("Alice's question", principal="alice")
    run, conv = mine["id"], mine["conversation_id"]
    for method, path, missing in [
        ("GET", f"/api/research/{run}", f"/api/research/{RUN}"),
        ("POST", f"/api/research/{run}/cancel", f"/api/research/{RUN}/cancel"),
        ("GET", f"/api/conversations/{conv}", f"/api/conversations/{CONV}"),
    ]:
        theirs = world.request(method, path, "bob")
        absent = world.request(method, missing, "bob")
        assert theirs.status_code == absent.status_code == 404, (path, theirs.text)
        assert theirs.json()["error"] == absent.json()["error"]
    # Continuing alice's conversation as bob is the same 404.
    resp = world.request(
        "POST", "/api/research", "bob", json={"message": "and then?", "conversation_id": conv}
    )
    assert resp.status_code == 404
    # Bob's list does not show alice's conversation; alice's does, with its title.
    theirs = world.request("GET", "/api/conversations", "bob").json()["conversations"]
    assert conv not in {c["id"] for c in theirs}
    listed = world.request("GET", "/api/conversations?limit=100", "alice").json()
    assert {"id": conv, "title": "Alice's question"}.items() <= next(
        c for c in listed["conversations"] if c["id"] == conv
    ).items()
    # Alice's run was not cancelled by bob's attempt.
    assert run not in world.fake.cancelled


def test_a_follow_up_joins_the_conversation(world: World) -> None:
    first = world.ask("Who wrote the first program?")
    second = world.ask("And when?", conversation_id=first["conversation_id"])
    assert second["conversation_id"] == first["conversation_id"]
    done(world, second["id"])
    conv = world.request("GET", f"/api/conversations/{first['conversation_id']}").json()
    assert conv["owner"] == "alice"
    assert [t["run_id"] for t in conv["turns"]] == [first["id"], second["id"]]


def test_cancel_answers_the_run_s_status(world: World) -> None:
    world.fake.hold()
    try:
        started = world.ask("A long question")
        resp = world.request("POST", f"/api/research/{started['id']}/cancel")
    finally:
        world.fake.release()
    assert resp.status_code == 200, resp.text
    assert (resp.json()["id"], resp.json()["status"]) == (started["id"], "cancelled")
    assert started["id"] in world.fake.cancelled


def test_research_down_is_503_with_retry_after(world: World) -> None:
    settings = world.settings.model_copy(deep=True)
    settings.agents["research"] = AgentEndpoint(url=closed_port_url())
    settings.client.max_retries = 0
    with serve_in_thread(build_gateway(settings)) as gw:
        for method, path in [
            ("POST", "/api/research"),
            ("GET", f"/api/research/{RUN}"),
            ("GET", "/api/conversations"),
        ]:
            kw: dict[str, Any] = {"json": {"message": "hi"}} if method == "POST" else {}
            key = {"X-API-Key": world.project.keys["alice"]}
            resp = httpx.request(method, gw.url + path, headers=key, timeout=10, **kw)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["error"]["code"] == "research_unavailable"
            assert int(resp.headers["retry-after"]) > 0
