"""OTLP/HTTP export through the egress perimeter: a real receiver on a loopback port decodes
the protobuf an agent sends (the spans of a real call, flushed when the agent stops), and an
endpoint the egress policy does not allow drops the spans with one warning, never an error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from bastion.config import AgentEndpoint, ObservabilitySettings, Settings
from bastion.core.context import new_correlation_id
from bastion.egress import EgressPolicy, origin_policy
from bastion.observability import tracing as tracing_module
from bastion.observability.otlp import OtlpExport, parse_headers
from bastion.observability.tracing import Hop
from bastion.testing import serve_in_thread
from tests.runtime.conftest import make_env


class Receiver:
    """An OTLP/HTTP traces endpoint: decodes each request, keeps its spans and headers."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.got = threading.Event()

    async def traces(self, request: Request) -> Response:
        self.requests.append(ExportTraceServiceRequest.FromString(await request.body()))
        self.headers.append(dict(request.headers))
        self.got.set()
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[str, str, str, str]]:
        """(service, name, trace ID, parent span ID) of every span received."""
        out = []
        for req in self.requests:
            for rs in req.resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            (
                                attrs["service.name"],
                                s.name,
                                s.trace_id.hex(),
                                s.parent_span_id.hex(),
                            )
                        )
        return out


def hop() -> Hop:
    trace_id = new_correlation_id()
    return (
        trace_id,
        "1" * 16,
        None,
        "m",
        "echo",
        "server",
        1.0,
        2.0,
        "ok",
        200,
        "p",
        trace_id,
        None,
        (),
        None,
    )


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = Starlette(routes=[Route("/v1/traces", rec.traces, methods=["POST"])])
    with serve_in_thread(app) as srv:
        yield rec, srv.url + "/v1/traces"


@pytest.fixture
def fresh_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's tracing made anew by the next app (it is made once per process)."""
    monkeypatch.setattr(tracing_module, "_TRACING", [])


def test_an_agent_exports_its_spans_to_an_allowed_collector(
    receiver: tuple[Receiver, str], fresh_tracing: None, tmp_path: Path
) -> None:
    rec, endpoint = receiver
    headers_file = tmp_path / "otlp-headers"
    headers_file.write_text("x-collector-token=tok-123")

    def configure(settings: Settings) -> None:
        settings.observability.otlp_endpoint = endpoint
        settings.observability.otlp_headers = f"secret://file/{headers_file}"
        settings.observability.service_name = "echo-svc"
        settings.agents["echo"] = AgentEndpoint(
            url="http://127.0.0.1:1", egress=origin_policy(endpoint)
        )

    trace_id = new_correlation_id()
    for env in make_env(tmp_path, configure):
        r = env.rpc(
            "echo", {"message": "x"}, key=env.admin_key, headers={"X-Correlation-ID": trace_id}
        )
        assert r.status_code == 200
    # Stopping the agent flushed its queue.
    assert rec.got.is_set()
    mine = [s for s in rec.spans() if s[2] == trace_id]
    names = [name for _, name, _, _ in mine]
    assert names[0] == "echo" and set(names[1:]) == {
        "authenticate",
        "delegation",
        "authorize",
        "rate_limit",
    }
    assert {service for service, *_ in mine} == {"echo-svc"}
    assert rec.headers[0]["content-type"] == "application/x-protobuf"
    assert rec.headers[0]["x-collector-token"] == "tok-123"


def test_an_endpoint_the_egress_policy_refuses_drops_spans_with_one_warning(
    receiver: tuple[Receiver, str],
) -> None:
    rec, endpoint = receiver
    settings = ObservabilitySettings(otlp_endpoint=endpoint, otlp_interval_seconds=3600)
    export = OtlpExport(settings, service="echo", policy=EgressPolicy())  # allows nothing
    span = hop()
    with capture_logs() as logs:
        export(span)
        export.flush()
        export(span)
        export.flush()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    # The perimeter's own refusal line, and the exporter's: once each, no retry after it.
    assert [w["event"] for w in warnings] == [
        "egress.denied",
        "span export failed, spans dropped",
    ]
    assert "egress" in warnings[1]["reason"] and "agents.<agent>.egress" in warnings[1]["hint"]
    assert export.refused and export.dropped == 2 and export.sent == 0
    assert not rec.requests


def test_a_full_queue_drops_the_newest_without_blocking() -> None:
    settings = ObservabilitySettings(
        otlp_endpoint="http://127.0.0.1:9/v1/traces", otlp_queue_size=3, otlp_interval_seconds=3600
    )
    export = OtlpExport(settings, service="echo", policy=EgressPolicy())
    span = hop()
    for _ in range(5):
        export(span)
    assert export.dropped == 2


def test_otlp_headers_are_name_value_pairs() -> None:
    assert parse_headers("a=1, b = two") == {"a": "1", "b": "two"}
    with pytest.raises(ValueError, match="name=value"):
        parse_headers("no-equals-sign")
