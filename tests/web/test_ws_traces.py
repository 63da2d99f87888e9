"""WebSocket admissions are traced: one server span per handshake, named by the action, in the
trace of the client's `traceparent`, with a span per security stage (a refusal's in error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bastion.core.context import new_correlation_id, traceparent
from bastion.observability.tracing import current_tracing
from tests.web.events_client import Gateway, closed, next_event, start

BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def gw(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    with start(tmp_path, sqlite_url) as gateway:
        yield gateway


def spans_of(trace_id: str) -> list[dict[str, Any]]:
    tracing = current_tracing()  # the archivist served in this process set it up
    assert tracing is not None
    return tracing.buffer.trace(trace_id)


async def test_a_refused_handshake_is_a_span_with_its_authenticate_stage(gw: Gateway) -> None:
    trace_id = new_correlation_id()
    headers = {"traceparent": traceparent(trace_id, CALLER_SPAN)}
    async with connect(f"{gw.ws_url}?token={BAD_KEY}", additional_headers=headers) as ws:
        code, _reason, _seen = await closed(ws)
    assert code == 4001
    spans = spans_of(trace_id)
    (hop,) = [s for s in spans if s["kind"] == "server"]
    assert hop["name"] == "events" and hop["service"] == "gateway"
    assert hop["parent_span_id"] == CALLER_SPAN and hop["status"] == "error"
    assert hop["attributes"]["bastion.status"] == 401
    (stage,) = [s for s in spans if s["parent_span_id"] == hop["span_id"]]
    assert stage["name"] == "authenticate" and stage["status"] == "error"
    assert BAD_KEY not in str(spans)


async def test_an_admitted_stream_is_a_span_with_every_stage(gw: Gateway) -> None:
    trace_id = new_correlation_id()
    headers = {"X-Correlation-ID": trace_id}
    async with connect(
        f"{gw.ws_url}?token={gw.project.keys['submitter']}", additional_headers=headers
    ) as ws:
        gw.received("submitter")
        await next_event(ws)
    spans = spans_of(trace_id)
    (hop,) = [s for s in spans if s["kind"] == "server"]
    assert hop["status"] == "ok" and hop["attributes"]["bastion.status"] == 101
    children = [s for s in spans if s["parent_span_id"] == hop["span_id"]]
    stages = [s["name"] for s in children if s["kind"] == "internal"]
    assert stages == ["authenticate", "delegation", "authorize", "rate_limit"]
    # Calls the stream makes (the archive's event feed) are its children, traced onward.
    assert all(s["kind"] == "client" for s in children if s["kind"] != "internal")
