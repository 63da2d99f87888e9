"""`WS /ws/events` through a real uvicorn-served gateway: credentials in both forms, every
refusal (closed after the handshake, before any event), who sees which documents, expiry,
limits, client messages and pings."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, insert
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bastion.config import Settings
from bastion.security.stack import build_api_key_store
from bastion.storage.pipeline_models import HistoryRow
from tests.web.events_client import Gateway, closed, next_event, start

BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64


@pytest.fixture
def gw(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    with start(tmp_path, sqlite_url, max_message_bytes=128) as gateway:
        yield gateway


def grant(
    gw: Gateway,
    principals: list[str],
    roles: dict[str, list[str]] | None = None,
    action: str = "gateway.events",
) -> None:
    """Allow `action` to more principals or roles (the policy is reloaded on the next call)."""
    path = gw.project.settings.path(gw.project.settings.policy.file)
    policy = json.loads(path.read_text())
    for principal in principals:
        policy["allow"].setdefault(principal, []).append(action)
    policy["roles"].update(roles or {})
    path.write_text(json.dumps(policy))


def key(gw: Gateway, principal: str) -> str:
    return build_api_key_store(gw.project.settings).create(principal, label="test")


def tampered(token: str) -> str:
    """The token with its subject changed to admin, the signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_both_token_forms_stream_events(gw: Gateway) -> None:
    submitter = gw.project.keys["submitter"]
    jwt = gw.jwt("submitter", exp=time.time() + 300)
    async with (
        gw.connect_query(submitter) as by_query,
        gw.connect_subprotocol(submitter) as by_subprotocol,
        gw.connect_subprotocol(jwt) as by_jwt,
    ):
        assert by_query.subprotocol is None
        assert by_subprotocol.subprotocol == "bastion.v1"
        assert by_jwt.subprotocol == "bastion.v1"
        doc = gw.received("submitter", "cid-both-forms")
        for ws in (by_query, by_subprotocol, by_jwt):
            event = await next_event(ws)
            assert set(event) == {"type", "document_id", "status", "correlation_id", "at"}
            assert event["type"] == "document.received"
            assert event["document_id"] == doc
            assert event["status"] == "queued"
            assert event["correlation_id"] == "cid-both-forms"
            assert datetime.fromisoformat(event["at"]).tzinfo is not None
    records = gw.project.audit_records(
        lambda a: a.method == "events" and a.outcome == "ok", at_least=3
    )
    assert {r.status for r in records} == {101}
    assert {r.auth_method for r in records} == {"api_key", "jwt"}


async def test_bad_credentials_close_4001_before_any_event(gw: Gateway) -> None:
    submitter = gw.project.keys["submitter"]
    valid_jwt = gw.jwt("submitter", exp=time.time() + 300)
    cases = {
        "no token": gw.connect_query(""),
        "no credential at all": connect(gw.ws_url),
        "unknown key": gw.connect_query(BAD_KEY),
        "unknown key (subprotocol)": gw.connect_subprotocol(BAD_KEY),
        "garbage": gw.connect_subprotocol("not-a-token"),
        "forged jwt": gw.connect_subprotocol(tampered(valid_jwt)),
        "expired jwt": gw.connect_subprotocol(gw.jwt("submitter", exp=time.time() - 3600)),
        "jwt expired within the leeway": gw.connect_query(gw.jwt("submitter", exp=time.time())),
        "two credentials": connect(
            f"{gw.ws_url}?token={submitter}",
            subprotocols=[Subprotocol("bastion.v1"), Subprotocol(f"bearer.{submitter}")],
        ),
        "bearer without bastion.v1": connect(
            gw.ws_url, subprotocols=[Subprotocol(f"bearer.{submitter}")]
        ),
    }
    for name, connecting in cases.items():
        async with connecting as ws:
            # Events are flowing meanwhile: none may reach an unauthenticated client.
            gw.received("submitter")
            code, reason, seen = await closed(ws)
        assert (code, seen) == (4001, []), name
        assert reason.startswith("unauthenticated") or "expired" in reason, name
        assert submitter not in reason
    denied = gw.project.audit_records(
        lambda a: a.method == "events" and a.outcome == "denied:authenticate", at_least=len(cases)
    )
    assert {r.status for r in denied} == {401}


async def test_forbidden_principal_closes_4003(gw: Gateway) -> None:
    async with gw.connect_subprotocol(key(gw, "outsider")) as ws:
        assert ws.subprotocol == "bastion.v1"
        code, reason, seen = await closed(ws)
    assert (code, seen) == (4003, [])
    assert "gateway.events" in reason
    gw.project.audit_records(lambda a: a.method == "events" and a.outcome == "denied:authorize")


async def test_rate_limited_closes_4029(tmp_path: Path, sqlite_url: str) -> None:
    def configure(settings: Settings) -> None:
        settings.rate_limit.principals["limited"] = "1/minute"

    with start(tmp_path, sqlite_url, configure) as gw:
        grant(gw, ["limited"])
        limited = key(gw, "limited")
        async with gw.connect_query(limited) as first:
            async with gw.connect_query(limited) as second:
                code, reason, seen = await closed(second)
            assert (code, seen) == (4029, [])
            assert "rate limited" in reason
            await first.send(json.dumps({"subscribe": []}))
            assert (await next_event(first))["type"] == "subscribed"
        gw.project.audit_records(
            lambda a: a.method == "events" and a.outcome == "denied:rate_limit"
        )


@pytest.fixture
def both(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """On SQLite and PostgreSQL."""
    with start(tmp_path, db_url) as gateway:
        yield gateway


async def test_subscribers_see_only_what_they_may_read(both: Gateway) -> None:
    gw = both
    grant(gw, ["other", "alice"], roles={"alice": ["auditors"]})
    grant(gw, ["auditors"], action="gateway.read_all_documents")
    monitoring = key(gw, "monitoring")
    async with (
        gw.connect_query(gw.project.keys["submitter"]) as submitter,
        gw.connect_query(key(gw, "other")) as other,
        gw.connect_query(gw.project.keys["admin"]) as admin,
        gw.connect_subprotocol(monitoring) as monitor,
        gw.connect_subprotocol(key(gw, "alice")) as alice,
    ):
        theirs = gw.received("other")
        mine = gw.received("submitter")
        assert (await next_event(submitter))["document_id"] == mine
        assert (await next_event(other))["document_id"] == theirs
        # `gateway.read_all_documents` (admin's `*`, alice's through a role) sees all ...
        for ws in (admin, alice):
            assert (await next_event(ws))["document_id"] == theirs
            assert (await next_event(ws))["document_id"] == mine
        # ... a role name does not: `monitoring` gets only its own documents' events.
        own = gw.received("monitoring")
        assert (await next_event(monitor))["document_id"] == own
        # Later steps of a document, written by other principals, follow its uploader.
        gw.project.repo.set_status(mine, "processing", principal="worker")
        gw.project.repo.set_status(theirs, "failed", reason="encrypted", principal="worker")
        gw.project.repo.set_status(mine, "failed", reason="encrypted", principal="worker")
        event = await next_event(submitter)
        assert (event["type"], event["status"], event["document_id"]) == (
            "document.processing",
            "processing",
            mine,
        )
        assert (await next_event(submitter))["type"] == "document.failed"
        event = await next_event(other)
        assert (event["type"], event["status"], event["document_id"]) == (
            "document.failed",
            "failed",
            theirs,
        )


async def test_token_expiry_mid_stream_closes_4001(gw: Gateway) -> None:
    token = gw.jwt("submitter", exp=time.time() + 3)
    async with gw.connect_subprotocol(token) as ws:
        doc = gw.received("submitter")
        assert (await next_event(ws))["document_id"] == doc
        code, reason, _ = await closed(ws, timeout=15)
    assert code == 4001
    assert "expired" in reason


async def test_subscription_limit_closes_4029(tmp_path: Path, sqlite_url: str) -> None:
    with start(tmp_path, sqlite_url, max_subscriptions_per_principal=2) as gw:
        submitter = gw.project.keys["submitter"]
        async with gw.connect_query(submitter) as first, gw.connect_query(submitter) as second:
            async with gw.connect_subprotocol(submitter) as third:
                code, reason, seen = await closed(third)
            assert (code, seen) == (4029, [])
            assert "too many open event streams" in reason
            # Other principals have their own allowance.
            async with gw.connect_query(gw.project.keys["admin"]) as admin:
                doc = gw.received("submitter")
                for ws in (first, second, admin):
                    assert (await next_event(ws))["document_id"] == doc
            await second.close()
            await asyncio.sleep(0)
        # A closed stream frees its place.
        async with gw.connect_query(submitter) as again:
            doc = gw.received("submitter")
            assert (await next_event(again))["document_id"] == doc
        gw.project.audit_records(
            lambda a: a.method == "events" and a.outcome == "denied:subscriptions"
        )


async def test_client_messages(gw: Gateway) -> None:
    submitter = gw.project.keys["submitter"]
    async with gw.connect_query(submitter) as ws:
        await ws.send("x" * 129)  # over events.max_message_bytes (128)
        code, reason, _ = await closed(ws)
    assert (code, reason) == (1009, "message too large: the limit is 128 bytes")
    for message, expected in ((b"\x00", 1003), ("not json", 1008), ('{"subscribe": ["x"]}', 1008)):
        async with gw.connect_query(submitter) as ws:
            await ws.send(message)
            assert (await closed(ws))[0] == expected, message
    # `subscribe` narrows the stream to the given documents.
    wanted = gw.received("submitter")
    async with gw.connect_query(submitter) as ws:
        await ws.send(json.dumps({"subscribe": [wanted, "ab" * 32]}))  # a pre-0004 id too
        assert await next_event(ws) == {"type": "subscribed", "documents": 2}
        gw.received("submitter")
        gw.project.repo.set_status(wanted, "processing", principal="worker")
        assert (await next_event(ws))["document_id"] == wanted


async def test_idle_connection_gets_pings(tmp_path: Path, sqlite_url: str) -> None:
    with start(tmp_path, sqlite_url, ping_interval_seconds=0.2) as gw:
        async with gw.connect_query(gw.project.keys["submitter"]) as ws:
            for _ in range(2):
                ping = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert ping["type"] == "ping"
                assert datetime.fromisoformat(ping["at"]).tzinfo is not None


async def test_slow_subscriber_is_closed_4008(tmp_path: Path, sqlite_url: str) -> None:
    """A client that stops reading: once the server's buffers are full, its queue fills and
    it is closed; the stream's place is freed at once, and memory stays bounded."""
    settings = {"queue_size": 100, "poll_interval_seconds": 0.01}
    with start(tmp_path, sqlite_url, max_subscriptions_per_principal=1, **settings) as gw:
        submitter = gw.project.keys["submitter"]
        doc = gw.received("submitter")
        table = cast(Table, HistoryRow.__table__)
        row = {"document_id": doc, "at": time.time(), "event": "processing"}
        # The client reads one message into its own buffer, then stops reading the socket.
        async with gw.connect_query(submitter, max_queue=1) as slow:
            for _ in range(100):
                with gw.project.repo.engine.begin() as conn:
                    conn.execute(insert(table), [row] * 2000)
                async with gw.connect_query(submitter) as probe:
                    try:
                        await probe.send(json.dumps({"subscribe": []}))
                        if (await next_event(probe))["type"] == "subscribed":
                            break  # the slow stream was dropped: its place is free
                    except ConnectionClosed as exc:
                        assert exc.rcvd is not None and exc.rcvd.code == 4029
            else:
                pytest.fail("the slow subscriber was never dropped")
            code, reason, seen = await closed(slow, timeout=30)
        assert code == 4008
        assert reason.startswith("too slow")
        assert seen and all(e["type"] == "document.processing" for e in seen[1:])
