"""The span buffer and the IDs of traces: W3C `traceparent` parsing (every malformed form is
ignored), the buffer's bound (stage spans count), stable stage span IDs, SDK spans kept too."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from bastion.config import ObservabilitySettings
from bastion.core.context import incoming_ids, new_correlation_id, parse_traceparent, traceparent
from bastion.observability.tracing import Hop, Span, SpanBuffer, Tracing, resource_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_a_valid_traceparent_gives_trace_and_parent() -> None:
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-01") == (TRACE, PARENT)
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-00") == (TRACE, PARENT)  # not sampled
    # A later version may add fields after the flags.
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-01-extra") == (TRACE, PARENT)
    assert parse_traceparent(traceparent(TRACE, PARENT)) == (TRACE, PARENT)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace ID
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper case
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00_{TRACE}_{PARENT}_01",
    ],
)
def test_a_malformed_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None
    headers = {"traceparent": value} if value is not None else {}
    cid, trace_id, parent = incoming_ids(headers)
    assert cid == trace_id and parent is None and trace_id != TRACE


def test_incoming_ids_by_header() -> None:
    tp = traceparent(TRACE, PARENT)
    assert incoming_ids({"traceparent": tp}) == (TRACE, TRACE, PARENT)
    # Both: the trace from traceparent, the caller's correlation ID kept for the audit.
    assert incoming_ids({"traceparent": tp, "x-correlation-id": "order-1234"}) == (
        "order-1234",
        TRACE,
        PARENT,
    )
    assert incoming_ids({"x-correlation-id": TRACE}) == (TRACE, TRACE, None)
    cid, trace_id, parent = incoming_ids({"x-correlation-id": "order-1234"})
    assert cid == "order-1234" and trace_id != cid and parent is None
    cid, trace_id, _ = incoming_ids({"x-correlation-id": "bad id with spaces"})
    assert cid == trace_id != "bad id with spaces"


def hop(trace_id: str, stages: int = 0) -> Hop:
    timings = tuple((f"stage{i}", 1.0, 2.0, False) for i in range(stages))
    return (
        trace_id,
        "1" * 16,
        None,
        "m",
        "svc",
        "server",
        1.0,
        3.0,
        "ok",
        200,
        "p",
        trace_id,
        None,
        timings,
        None,
    )


def test_the_buffer_keeps_the_last_spans_stage_spans_counted() -> None:
    buffer = SpanBuffer(10)
    old = new_correlation_id()
    buffer.add(hop(old, stages=4))  # 5 spans
    assert len(buffer) == 5 and len(buffer.trace(old)) == 5
    for _ in range(5):
        buffer.add(hop(new_correlation_id()))
    assert len(buffer) == 10 and len(buffer.trace(old)) == 5
    newest = new_correlation_id()
    buffer.add(hop(newest, stages=1))  # the oldest hop goes, with its stages
    assert len(buffer) <= 10
    assert buffer.trace(old) == [] and len(buffer.trace(newest)) == 2


def test_stage_spans_have_stable_distinct_ids() -> None:
    span = Span.of(hop(TRACE, stages=4))
    first = [s.span_id for s in span.flat()]
    assert first == [s.span_id for s in span.flat()]
    assert len(set(first)) == 5 and all(len(i) == 16 for i in first)
    assert all(s.parent_span_id == span.span_id for s in list(span.flat())[1:])


def test_sdk_spans_are_kept_beside_bastion_s() -> None:
    tracing = Tracing(ObservabilitySettings())
    provider = TracerProvider(resource=resource_for("other"))
    provider.add_span_processor(tracing.buffer)
    with provider.get_tracer("t").start_as_current_span("sdk-work") as sdk_span:
        trace_id = f"{sdk_span.get_span_context().trace_id:032x}"
    (span,) = tracing.buffer.trace(trace_id)
    assert span["name"] == "sdk-work" and span["service"] == "other"
    assert span["duration_ms"] >= 0 and span["status"] == "ok"
