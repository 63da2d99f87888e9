"""OTLP/HTTP export of this process's spans, through the egress perimeter.

`OtlpExport` is called with each finished span on the event loop: it only appends to a bounded
queue (the newest spans are dropped when it is full) and wakes its thread when a batch is ready.
Its own daemon thread batches the queue every `otlp_interval_seconds` (or `otlp_batch_size`
spans), encodes them with the OpenTelemetry protobuf encoder and POSTs them to
`otlp_endpoint` with an `egress_sync_client` of the agent's egress policy. An unreachable
collector or an error answer drops that batch and is logged as a warning once per kind of
failure (then at debug level). A refusal by the egress policy is for good (the policy is the
configuration's): it is logged once and every span from then on is dropped without a try.
Tracing never fails nor blocks a request.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

import httpx
import structlog
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource

from bastion.config import ObservabilitySettings
from bastion.egress import EgressDenied, EgressPolicy, egress_sync_client
from bastion.observability.tracing import Hop, Span, resource_for

log = structlog.get_logger("bastion.tracing")

_PROTOBUF = "application/x-protobuf"


def parse_headers(value: str) -> dict[str, str]:
    """`name=value,name2=value2` (the OTEL_EXPORTER_OTLP_HEADERS form) as a dict."""
    headers: dict[str, str] = {}
    for item in value.split(","):
        name, sep, val = item.partition("=")
        if not sep or not name.strip():
            raise ValueError("otlp_headers must be name=value pairs separated by commas")
        headers[name.strip()] = val.strip()
    return headers


class OtlpExport:
    """Queues spans and sends them in batches from its own thread (see the module docstring)."""

    def __init__(
        self,
        settings: ObservabilitySettings,
        *,
        service: str,
        policy: EgressPolicy,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.endpoint = settings.otlp_endpoint
        self._batch = settings.otlp_batch_size
        self._interval = settings.otlp_interval_seconds
        self._queue: deque[Hop] = deque()
        self._max = settings.otlp_queue_size
        self.dropped = 0
        self.sent = 0
        self.refused = False  # by the egress policy: nothing is sent any more
        self._warned: set[str] = set()
        self._resource: Resource = resource_for(service)
        self._client = client or egress_sync_client(
            policy,
            principal=service,
            timeout=settings.otlp_timeout_seconds,
            headers={"Content-Type": _PROTOBUF, **(headers or {})},
        )
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one export at a time: the thread's or a flush's
        self._thread = threading.Thread(target=self._run, name="bastion-otlp", daemon=True)
        self._thread.start()

    def __call__(self, hop: Hop) -> None:
        queue = self._queue
        if len(queue) >= self._max or self.refused:
            self.dropped += 1
            return
        queue.append(hop)
        if len(queue) >= self._batch:
            self._wake.set()

    def flush(self) -> None:
        """Send everything queued now, after any export under way (blocking: call it off the
        event loop)."""
        with self._lock:
            while self._queue:
                if not self._send_batch():
                    break

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # a span that cannot be encoded: the thread goes on
                self._failed(type(exc).__name__, 0, f"export failed: {type(exc).__name__}")

    def _send_batch(self) -> bool:
        """Send up to one batch, the lock held; False when it failed (its spans are dropped)."""
        spans: list[Hop] = []
        queue = self._queue
        while queue and len(spans) < self._batch:
            spans.append(queue.popleft())
        if not spans:
            return True
        readable = [s.to_readable(self._resource) for hop in spans for s in Span.of(hop).flat()]
        body = encode_spans(readable).SerializeToString()
        try:
            resp = self._client.post(self.endpoint, content=body)
        except EgressDenied as exc:
            self.refused = True
            self.dropped += len(queue)
            queue.clear()
            return self._failed("egress", len(readable), f"refused by the egress policy: {exc}")
        except httpx.HTTPError as exc:
            return self._failed(type(exc).__name__, len(readable), type(exc).__name__)
        if resp.status_code >= 300:
            return self._failed(
                f"status:{resp.status_code}", len(readable), f"answered {resp.status_code}"
            )
        self.sent += len(readable)
        return True

    def _failed(self, kind: str, count: int, reason: str) -> bool:
        self.dropped += count
        report = log.debug if kind in self._warned else log.warning
        self._warned.add(kind)
        report(
            "span export failed, spans dropped",
            endpoint=self.endpoint,
            reason=reason[:300],
            dropped=count,
            hint=(
                "allow the collector in agents.<agent>.egress (allowed_hosts, allow_private)"
                if kind == "egress"
                else "check observability.otlp_endpoint and that the collector is up"
            ),
        )
        return False
