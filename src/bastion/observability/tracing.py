"""Traces: this process's spans, kept in a bounded buffer and optionally exported by OTLP.

One span per hop (an agent's JSON-RPC call, a gateway action, an agent client call), with a
child span per security stage. The hot path records a hop as one plain tuple (`Hop`) holding
its stages' timings (`bastion.core.context.StageTiming`) and nothing else: no OpenTelemetry SDK
span is built per request (that costs tens of microseconds per span); the `Span` objects, their
attributes, the stage children and the SDK form (`ReadableSpan`, for the OTLP encoder) are made
only when read. Span IDs of stage spans are derived from their hop's, so every read gives the
same IDs.

`setup_tracing` is called once per process by the agent app and the gateway app
(`observability` settings); `current_tracing()` is then what the server, the guard and the
agent client record into. `SpanBuffer` keeps the last `span_buffer_size` spans (stage spans
count) for `GET /traces/{trace_id}`; it is also an OpenTelemetry `SpanProcessor`, so spans of
the SDK (other instrumentations) can be kept with Bastion's.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from bastion._version import __version__
from bastion.config import ObservabilitySettings
from bastion.core.context import StageTiming

# `time.perf_counter()` seconds + this = epoch seconds (spans are timed with perf_counter).
_EPOCH = time.time() - time.perf_counter()
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_SCOPE = InstrumentationScope("bastion", __version__)
_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
_OK = Status(StatusCode.OK)
_ERROR = Status(StatusCode.ERROR)

Attributes = dict[str, str | int]

# One hop as the hot path records it, in this order: trace ID, span ID, parent span ID, name
# (method or action), service (agent), kind ("server" | "client"), start and end
# (`time.perf_counter` seconds), outcome ("ok", "denied:<stage>", "error:<code>"), HTTP status
# (0: no answer), principal, correlation ID, target (a client span's agent URL, else None), the
# stages' timings, and the attributes of a span that came from the OpenTelemetry SDK (else None:
# the attributes are made from the fields when read).
Hop = tuple[
    str,
    str,
    str | None,
    str,
    str,
    str,
    float,
    float,
    str,
    int,
    str,
    str,
    str | None,
    Sequence[StageTiming],
    Mapping[str, str | int] | None,
]


@dataclass(slots=True)
class Span:
    """One span as read: a hop (with its stages' timings) or one of its stage spans."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start: float  # perf_counter seconds
    end: float
    error: bool
    attributes: Attributes
    stages: Sequence[StageTiming] = ()

    @classmethod
    def of(cls, hop: Hop) -> Span:
        """The span of a recorded hop, with its attributes: the agent, method, principal,
        outcome, HTTP status, a client span's target and, when it differs from the trace ID,
        the caller's correlation ID."""
        (trace_id, span_id, parent, name, service, kind, start, end) = hop[:8]
        outcome, status, principal, correlation_id, target, stages, given = hop[8:]
        attributes: Attributes
        if given is not None:
            attributes = dict(given)
        else:
            attributes = {
                "bastion.agent": service,
                "bastion.method": name,
                "bastion.principal": principal,
                "bastion.outcome": outcome,
                "bastion.status": status,
            }
            if correlation_id != trace_id:
                attributes["bastion.correlation_id"] = correlation_id
            if target is not None:
                attributes["bastion.target"] = target
        return cls(
            trace_id,
            span_id,
            parent,
            name,
            service,
            kind,
            start,
            end,
            outcome != "ok",
            attributes,
            stages,
        )

    def stage_span_id(self, index: int) -> str:
        """The span ID of stage `index`: derived from the hop's, the same on every read."""
        value = (int(self.span_id, 16) ^ ((index + 1) * _GOLDEN)) & _MASK
        return f"{value or 1:016x}"

    def flat(self) -> Iterator[Span]:
        """The hop span, then one span per stage (a child of the hop)."""
        yield self
        for i, (stage, started, ended, refused) in enumerate(self.stages):
            yield Span(
                self.trace_id,
                self.stage_span_id(i),
                self.span_id,
                stage,
                self.service,
                "internal",
                started,
                ended,
                refused,
                {"bastion.stage": stage, "bastion.outcome": "denied" if refused else "ok"},
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "service": self.service,
            "kind": self.kind,
            "start": self.start + _EPOCH,
            "duration_ms": round((self.end - self.start) * 1000.0, 3),
            "status": "error" if self.error else "ok",
            "attributes": dict(self.attributes),
        }

    def to_readable(self, resource: Resource) -> ReadableSpan:
        """The OpenTelemetry SDK form of this one span (not its stages), for exporters."""
        parent = None
        if self.parent_span_id is not None:
            parent = _context(self.trace_id, self.parent_span_id, remote=True)
        return ReadableSpan(
            name=self.name,
            context=_context(self.trace_id, self.span_id),
            parent=parent,
            resource=resource,
            attributes=self.attributes,
            kind=_KINDS.get(self.kind, SpanKind.INTERNAL),
            status=_ERROR if self.error else _OK,
            start_time=int((self.start + _EPOCH) * 1e9),
            end_time=int((self.end + _EPOCH) * 1e9),
            instrumentation_scope=_SCOPE,
        )


def hop_of_readable(span: ReadableSpan) -> Hop:
    """A span of the OpenTelemetry SDK, as this module keeps spans."""
    ctx = span.context
    parent = span.parent
    resource = span.resource.attributes if span.resource is not None else {}
    trace_id = f"{ctx.trace_id:032x}" if ctx is not None else "0" * 32
    error = span.status.status_code is StatusCode.ERROR
    return (
        trace_id,
        f"{ctx.span_id:016x}" if ctx is not None else "0" * 16,
        f"{parent.span_id:016x}" if parent is not None else None,
        span.name,
        str(resource.get("service.name", "")),
        span.kind.name.lower(),
        (span.start_time or 0) / 1e9 - _EPOCH,
        (span.end_time or span.start_time or 0) / 1e9 - _EPOCH,
        "error" if error else "ok",
        0,
        "-",
        trace_id,
        None,
        (),
        {k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int)},
    )


def _context(trace_id: str, span_id: str, *, remote: bool = False) -> SpanContext:
    return SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=remote, trace_flags=TraceFlags(1)
    )


class SpanBuffer(SpanProcessor):
    """The last `size` spans of this process (a hop's stage spans count with it).

    `add` is called on the event loop; `on_end` (SDK spans) may be called from other threads:
    `deque` appends are atomic, and the count is only ever a bound, never an index.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._spans: deque[Hop] = deque()
        self._count = 0

    def add(self, hop: Hop) -> None:
        spans = self._spans
        spans.append(hop)
        self._count += 1 + len(hop[13])
        while self._count > self.size and spans:
            self._count -= 1 + len(spans.popleft()[13])

    def __len__(self) -> int:
        """How many spans are held, stage spans included."""
        return self._count

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of `trace_id` held here, as JSON objects, by start time."""
        hops = [hop for hop in list(self._spans) if hop[0] == trace_id]
        found = [s for hop in hops for s in Span.of(hop).flat()]
        found.sort(key=lambda s: s.start)
        return [s.to_json() for s in found]

    def on_end(self, span: ReadableSpan) -> None:
        self.add(hop_of_readable(span))


Export = Callable[[Hop], None]


class Tracing:
    """This process's tracing: the span buffer and, when configured, the OTLP exporter."""

    def __init__(self, settings: ObservabilitySettings, export: Export | None = None) -> None:
        self.settings = settings
        self.buffer = SpanBuffer(settings.span_buffer_size)
        self._export = export
        # Keep a finished hop (and queue it for export): never blocks, never raises. Called
        # once per request with a tuple the caller built: without export, the buffer's own add.
        self.hop: Callable[[Hop], None] = self.buffer.add if export is None else self._keep

    def flush(self) -> None:
        """Send the spans waiting for export (blocking: call it off the event loop)."""
        flush = getattr(self._export, "flush", None)
        if flush is not None:
            flush()

    def _keep(self, hop: Hop) -> None:
        self.buffer.add(hop)
        if self._export is not None:
            self._export(hop)


_TRACING: list[Tracing] = []


def setup_tracing(
    settings: ObservabilitySettings, make_export: Callable[[], Export | None] | None = None
) -> Tracing | None:
    """This process's tracing, made on the first call (later calls return the same one); None
    when `tracing_enabled` is off. `make_export` builds the OTLP export on the first call."""
    if not settings.tracing_enabled:
        return None
    if not _TRACING:
        _TRACING.append(Tracing(settings, make_export() if make_export is not None else None))
    return _TRACING[0]


def current_tracing() -> Tracing | None:
    """The tracing `setup_tracing` made in this process, if any."""
    return _TRACING[0] if _TRACING else None


def resource_for(service: str, extra: Mapping[str, str] | None = None) -> Resource:
    """The OpenTelemetry resource of exported spans: `service.name` and Bastion's version."""
    return Resource.create(
        {"service.name": service, "service.version": __version__, **(extra or {})}
    )
