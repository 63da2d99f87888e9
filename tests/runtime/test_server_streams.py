"""A streaming method over real HTTP: its items arrive as SSE events, a client that leaves stops
the stream at once (the handler's own clean-up runs), and the call is audited by how it ended."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bastion.runtime import AgentDefinition, MethodRegistry
from tests.runtime.conftest import AgentEnv, make_env

ENDED = threading.Event()


def _definition() -> AgentDefinition:
    registry = MethodRegistry()

    @registry.method("count", streaming=True)
    async def count() -> AsyncIterator[int]:
        """Three numbers, then the end of the stream."""
        for n in range(3):
            yield n

    @registry.method("watch", streaming=True)
    async def watch() -> AsyncIterator[str]:
        """One item, then nothing until the client leaves."""
        try:
            yield "first"
            await asyncio.Event().wait()
        finally:
            ENDED.set()

    return AgentDefinition(name="streamer", description="streams", registry=registry)


@pytest.fixture
def streamer(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path, definition=_definition())


def _call(env: AgentEnv, method: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method}).encode()
    return {"X-API-Key": env.admin_key, "content-type": "application/json"}, body


def _events(env: AgentEnv, method: str) -> list[dict[str, object]]:
    headers, body = _call(env, method)
    response = httpx.post(env.url + "/message", content=body, headers=headers, timeout=10)
    assert response.headers["content-type"].startswith("text/event-stream")
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def test_items_arrive_as_events_and_the_call_is_audited_ok(streamer: AgentEnv) -> None:
    events = _events(streamer, "count")
    assert [e["result"] for e in events] == [0, 1, 2]
    assert all(e["id"] == 7 for e in events)
    rows = streamer.audit_records(lambda r: r.method == "count")
    assert [r.outcome for r in rows] == ["ok"]


def test_a_client_that_leaves_stops_the_stream_and_is_audited(streamer: AgentEnv) -> None:
    ENDED.clear()
    headers, body = _call(streamer, "watch")
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", streamer.url + "/message", content=body, headers=headers) as resp,
    ):
        first = next(resp.iter_lines())
        assert json.loads(first.removeprefix("data: "))["result"] == "first"
    # The connection is closed: the handler's clean-up runs without another item.
    assert ENDED.wait(5)
    rows = streamer.audit_records(lambda r: r.method == "watch")
    assert [r.outcome for r in rows] == ["client_disconnected"]
    # The server goes on serving.
    assert [e["result"] for e in _events(streamer, "count")] == [0, 1, 2]
