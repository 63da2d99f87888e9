"""The console's Research view over real HTTP, in front of the fake research agent: the page and
its conversation list, a conversation with its citations linked and sources' credibility, a run
streamed over `WS /ws/research` with the session cookie, cancelling it with the CSRF token, and
every refusal (no session, no view grant, monitoring asking, another principal's conversation,
a foreign origin, a bad id, the research service down)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from bastion.web.console.views.research import PAGE_SIZE
from bastion.web.console.views.research_report import report_blocks, shown_sources
from tests.web.conftest import make_project
from tests.web.console.conftest import sign_in
from tests.web.research_world import World, research_world

QUESTION = "Who wrote the first program?"
UNKNOWN_CONVERSATION = "conv_" + "a" * 26
UNKNOWN_RUN = "run_" + "a" * 26
HOSTILE = '<img src=x onerror="alert(1)"> and </script><script>alert(2)</script>'


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with research_world(tmp_path) as w:
        w.project.keys["monitoring"] = build_api_key_store(w.settings).create("monitoring")
        yield w


@contextmanager
def browser(world: World, principal: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in as `principal`."""
    with httpx.Client(base_url=world.url, timeout=10, headers={"Origin": world.url}) as client:
        assert sign_in(client, world.project.keys[principal]).status_code == 303
        yield client


def ws_connect(world: World, client: httpx.Client, origin: str | None = None) -> ClientConnection:
    return connect(
        world.ws_url,
        additional_headers={"Cookie": f"bastion_session={client.cookies['bastion_session']}"},
        origin=origin or world.url,  # type: ignore[arg-type]
        subprotocols=["bastion.v1"],  # type: ignore[list-item]
        open_timeout=10,
    )


def read_until_closed(ws: ClientConnection) -> tuple[int, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    try:
        while True:
            event = json.loads(ws.recv(timeout=10))
            if event["type"] != "ping":
                events.append(event)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code, events


def ask(world: World, client: httpx.Client, message: str = QUESTION) -> list[dict[str, Any]]:
    """Ask over the WebSocket with the session cookie, as the page script does."""
    with ws_connect(world, client) as ws:
        ws.send(json.dumps({"message": message, "mode": "research"}))
        code, events = read_until_closed(ws)
    assert code == 1000, events
    return events


def test_the_page_has_the_form_and_lists_past_conversations(world: World) -> None:
    with browser(world, "admin") as b:
        empty = b.get("/console/research")
        assert empty.status_code == 200
        assert "No conversations yet" in empty.text
        events = ask(world, b)
        conversation = events[0]["conversation_id"]
        page = b.get("/console/research")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    text = page.text
    assert '<form id="research-form"' in text
    assert '<label for="research-question">' in text and 'id="research-question"' in text
    assert '<label for="research-mode">' in text
    assert all(f'<option value="{m}"' in text for m in ("auto", "chat", "research"))
    assert 'id="research-status" class="live" role="status" aria-live="polite"' in text
    assert 'id="research-cancel"' in text and 'id="research-ask"' in text
    assert 'data-view="research"' in text  # the page script loads research.js
    assert f'href="/console/research/conversations/{conversation}">{QUESTION}</a>' in text
    assert "<script>" not in text


def test_a_run_streams_over_the_websocket_with_the_session_cookie(world: World) -> None:
    with browser(world, "admin") as b:
        events = ask(world, b)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "conversation" and kinds[-1] == "done"
    assert {"progress", "plan", "source", "critique", "text"} <= set(kinds)
    sources = [e for e in events if e["type"] == "source"]
    assert {s["credibility"] for s in sources} == {0.9, 0.6}
    report = "".join(e["text"] for e in events if e["type"] == "text")
    assert report == events[-1]["result"]["report"]
    assert ("admin", {"message": QUESTION, "mode": "research"}) in world.fake.started
    asked = world.audit(lambda a: a.method == "research" and a.principal == "admin")
    assert asked[0].status == 101


def test_a_conversation_shows_citations_as_links_and_credibility(world: World) -> None:
    with browser(world, "admin") as b:
        conversation = ask(world, b)[0]["conversation_id"]
        page = b.get(f"/console/research/conversations/{conversation}")
    assert page.status_code == 200
    text = page.text
    assert f"<h1>{QUESTION}</h1>" in text
    assert f'<h2 id="turn-1-question">{QUESTION}</h2>' in text
    assert f"<h3>{QUESTION}</h3>" in text  # the report's own heading, below the turn's
    assert (
        '<a class="citation" href="https://www.britannica.com/ada" rel="noopener noreferrer"'
        ' title="Ada Lovelace - Encyclopaedia">[1]</a>'
    ) in text
    assert '<a class="citation" href="https://example.org/notes" rel="noopener noreferrer"' in text
    assert '<tr id="turn-1-source-1">' in text and "<code>src_1</code>" in text
    assert "0.90 (high)" in text and "0.60 (medium)" in text
    assert "Round 1: <strong>PASS</strong>" in text


def test_past_conversations_come_in_pages(world: World) -> None:
    for i in range(PAGE_SIZE + 1):
        world.ask(f"question {i}", principal="admin")
    with browser(world, "admin") as b:
        first = b.get("/console/research")
        older = re.search(r'href="(/console/research\?cursor=[^"]+)">Older', first.text)
        assert older is not None
        second = b.get(older.group(1).replace("&amp;", "&"))
        bad = b.get("/console/research", params={"cursor": "x" * 600})
    assert first.text.count("/console/research/conversations/conv_") == PAGE_SIZE
    assert second.status_code == 200
    assert second.text.count("/console/research/conversations/conv_") == 1
    assert "Newest conversations" in second.text and "Older conversations" not in second.text
    assert bad.status_code == 400


def test_a_follow_up_continues_the_conversation(world: World) -> None:
    with browser(world, "admin") as b:
        conversation = ask(world, b)[0]["conversation_id"]
        page = b.get(f"/console/research/conversations/{conversation}")
        assert f'id="research-conversation-id" name="conversation_id" value="{conversation}"' in (
            page.text
        )
        with ws_connect(world, b) as ws:
            follow_up = {"message": "And who built the engine?", "conversation_id": conversation}
            ws.send(json.dumps(follow_up))
            code, events = read_until_closed(ws)
        assert code == 1000 and events[0]["conversation_id"] == conversation
        page = b.get(f"/console/research/conversations/{conversation}")
    assert '<h2 id="turn-2-question">And who built the engine?</h2>' in page.text
    assert '<tr id="turn-2-source-2">' in page.text


def test_a_question_with_markup_is_shown_as_text(world: World) -> None:
    with browser(world, "admin") as b:
        conversation = ask(world, b, HOSTILE)[0]["conversation_id"]
        listing = b.get("/console/research")
        page = b.get(f"/console/research/conversations/{conversation}")
    for html in (listing.text, page.text):
        assert "<img" not in html and "<script>" not in html
        assert "&lt;img src=x onerror=" in html


def test_another_principals_conversation_is_not_found(world: World) -> None:
    with browser(world, "admin") as b:
        conversation = ask(world, b)[0]["conversation_id"]
        assert b.get(f"/console/research/conversations/{UNKNOWN_CONVERSATION}").status_code == 404
    with browser(world, "monitoring") as m:
        listing = m.get("/console/research")
        page = m.get(f"/console/research/conversations/{conversation}")
    assert listing.status_code == 200 and conversation not in listing.text
    assert page.status_code == 404
    assert "no conversation with this id" in page.text
    assert QUESTION not in page.text


@pytest.mark.parametrize("bad", ["nope", "conv_", "run_abcdefghijklmnop", "conv_%3Cx%3E"])
def test_a_malformed_conversation_id_is_refused(world: World, bad: str) -> None:
    with browser(world, "admin") as b:
        page = b.get(f"/console/research/conversations/{bad}")
    assert page.status_code == 400
    assert "not a conversation id" in page.text


def test_without_a_session_the_pages_send_to_sign_in(world: World) -> None:
    for path in ("/console/research", "/console/research/conversations/conv_x"):
        r = httpx.get(world.url + path, timeout=10)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=%2Fconsole%2Fresearch")


@pytest.mark.parametrize("principal", ["nobody", "alice"])
def test_a_principal_without_the_view_is_refused(world: World, principal: str) -> None:
    # alice may ask research through the API, but is not granted the console's Research view.
    with browser(world, principal) as b:
        page = b.get("/console/research")
    assert page.status_code == 403
    assert "research-form" not in page.text
    refused = world.audit(
        lambda a: a.method == "console_research" and a.principal == principal and a.status == 403
    )
    assert refused[0].outcome == "denied:authorize"


def test_monitoring_reads_the_view_but_cannot_ask(world: World) -> None:
    with browser(world, "monitoring") as m:
        page = m.get("/console/research")
        assert page.status_code == 200
        assert "research-form" not in page.text and 'id="research-question"' not in page.text
        assert 'id="research-ask-refused"' in page.text and "gateway.research" in page.text
        before = len(world.fake.started)
        with ws_connect(world, m) as ws:  # refused before any question is read
            code, events = read_until_closed(ws)
        cancel = m.post(
            f"/api/research/{UNKNOWN_RUN}/cancel",
            headers={"X-CSRF-Token": m.cookies["bastion_csrf"]},
        )
    assert (code, events) == (4003, [])
    assert len(world.fake.started) == before  # nothing reached the research agent
    assert cancel.status_code == 403


def test_a_session_socket_from_another_origin_is_refused(world: World) -> None:
    with browser(world, "admin") as b, ws_connect(world, b, "https://evil.example") as ws:
        code, events = read_until_closed(ws)
    assert (code, events) == (4003, [])
    assert world.fake.started == []


def test_the_cancel_button_call_needs_the_csrf_token_and_cancels(world: World) -> None:
    world.fake.hold()
    try:
        with browser(world, "admin") as b, ws_connect(world, b) as ws:
            ws.send(json.dumps({"message": QUESTION}))
            started = json.loads(ws.recv(timeout=10))
            assert started["type"] == "conversation"
            path = f"/api/research/{started['id']}/cancel"
            assert b.post(path).status_code == 403  # no CSRF token
            assert b.post(path, headers={"X-CSRF-Token": "forged"}).status_code == 403
            assert world.fake.cancelled == []
            ok = b.post(path, headers={"X-CSRF-Token": b.cookies["bastion_csrf"]})
            assert ok.status_code == 200 and ok.json()["status"] == "cancelled"
            code, events = read_until_closed(ws)
        assert code == 1000 and events[-1]["type"] == "cancelled"
        assert world.fake.cancelled == [started["id"]]
    finally:
        world.fake.release()


def test_the_page_says_so_when_research_is_unavailable(tmp_path: Path, sqlite_url: str) -> None:
    project = make_project(tmp_path, sqlite_url, lambda s: s.agents.pop("research", None))
    with serve_in_thread(build_gateway(project.settings)) as gw:
        client = httpx.Client(base_url=gw.url, timeout=10, headers={"Origin": gw.url})
        with client as b:
            assert sign_in(b, project.keys["admin"]).status_code == 303
            page = b.get("/console/research")
            conversation = b.get(f"/console/research/conversations/{UNKNOWN_CONVERSATION}")
    assert page.status_code == 200
    assert "Past conversations cannot be listed now" in page.text
    assert '<form id="research-form"' in page.text
    assert conversation.status_code == 503


def test_report_links_only_web_addresses() -> None:
    sources = shown_sources(
        [
            {"n": 1, "id": "doc_1", "title": "Archive", "url": None, "provider": "corpus"},
            {"n": 2, "id": "w", "title": "Bad", "url": "javascript:alert(1)", "provider": "web"},
            {"n": 3, "id": "w3", "title": "Web", "url": "https://a.example/x", "provider": "web"},
        ]
    )
    blocks = report_blocks("## Title [3]\n\nClaim [1] and [2], and [9].\nNext line.", sources, "t")
    assert [b.level for b in blocks] == [4, 0]
    cited = {c.n: c for b in blocks for c in b.segments if not isinstance(c, str)}
    assert (cited[3].href, cited[3].external) == ("https://a.example/x", True)
    assert (cited[1].href, cited[1].external) == ("#t-source-1", False)
    assert (cited[2].href, cited[2].external) == ("#t-source-2", False)
    assert cited[9].href == "#t-source-9" and cited[9].title == "not among the sources"
    assert re.search(r"Next line", "".join(s for s in blocks[1].segments if isinstance(s, str)))


def test_the_page_script_is_served_and_finds_its_elements(world: World) -> None:
    with browser(world, "admin") as b:
        script = b.get("/static/research.js")
        page = b.get("/console/research")
        conversation = ask(world, b)[0]["conversation_id"]
        follow_up = b.get(f"/console/research/conversations/{conversation}")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert ".innerHTML" not in script.text and "eval(" not in script.text
    wanted = set(re.findall(r'querySelector\("#([a-z-]+)', script.text))
    assert wanted and all(f'id="{name}"' in follow_up.text for name in wanted)
    # The conversation's id is on its page only: a question there is a follow-up.
    assert all(f'id="{name}"' in page.text for name in wanted - {"research-conversation-id"})
    assert 'id="research-conversation-id"' not in page.text
