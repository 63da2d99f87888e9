"""Traces of an app: turning tracing on, `GET /traces/{trace_id}`, gathering a whole trace.

`start_tracing(settings, agent)` is called once per process when an agent app or the gateway
app is built: it sets up the span buffer and, when `observability.otlp_endpoint` is set, the
OTLP export through the agent's egress policy (`agents.<agent>.egress`).

`traces_route(guard)` is `GET /traces/{trace_id}`, authorized as `<agent>.traces` (granted to
`gateway` and `monitoring` by the default policy): the spans of that trace this process holds.

`collect_trace(targets, trace_id, api_key)` asks every target's route at once (short timeout)
and merges their spans with this process's, sorted by start; a target that fails is skipped and
named in the result, never failing the whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.config import Settings
from bastion.core.context import CallContext, current_correlation_id, is_trace_id
from bastion.egress import egress_client, origin_policy
from bastion.observability.otlp import OtlpExport, parse_headers
from bastion.observability.tracing import Export, Tracing, current_tracing, setup_tracing
from bastion.protocol.http_errors import invalid
from bastion.runtime.http_guard import Guard
from bastion.runtime.outbound import agent_egress_policy
from bastion.security import SecretValue, resolve

log = structlog.get_logger("bastion.tracing")

TRACES_PATH = "/traces/{trace_id}"
TRACES_ACTION = "traces"
COLLECT_TIMEOUT_SECONDS = 2.0


def start_tracing(settings: Settings, agent: str) -> Tracing | None:
    """This process's tracing (made on the first call), or None when it is turned off."""

    def make_export() -> Export | None:
        obs = settings.observability
        if not obs.otlp_endpoint:
            return None
        headers = None
        if obs.otlp_headers:
            secret = resolve(obs.otlp_headers, settings.base_dir, settings.secrets)
            headers = parse_headers(secret.get())
        return OtlpExport(
            obs,
            service=obs.service_name or agent,
            policy=agent_egress_policy(settings, agent),
            headers=headers,
        )

    return setup_tracing(settings.observability, make_export)


def local_spans(trace_id: str) -> list[dict[str, Any]]:
    """The spans of `trace_id` this process holds (none when it does not trace)."""
    tracing = current_tracing()
    return tracing.buffer.trace(trace_id) if tracing is not None else []


def traces_route(guard: Guard) -> Route:
    """`GET /traces/{trace_id}`, authorized as `<guard's agent>.traces`."""

    async def traces(request: Request, call: CallContext) -> Response:
        trace_id = request.path_params["trace_id"]
        if not is_trace_id(trace_id):
            raise invalid("trace_id must be 32 lowercase hex digits (a W3C trace ID)")
        spans = local_spans(trace_id)
        return JSONResponse(
            {"trace_id": trace_id, "spans": spans, "correlation_id": call.correlation_id}
        )

    return Route(TRACES_PATH, guard.protect(TRACES_ACTION, traces), methods=["GET"])


@dataclass
class CollectedTrace:
    """A trace gathered from several processes: its spans by start time, and the targets that
    could not give theirs (name -> reason)."""

    trace_id: str
    spans: list[dict[str, Any]] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)


async def _fetch(
    http: httpx.AsyncClient, url: str, trace_id: str, api_key: SecretValue
) -> list[dict[str, Any]]:
    headers = {"X-API-Key": api_key.get(), "Accept": "application/json"}
    cid = current_correlation_id()
    if cid is not None:
        headers["X-Correlation-ID"] = cid
    resp = await http.get(f"{url.rstrip('/')}/traces/{trace_id}", headers=headers)
    if resp.status_code != 200:
        raise ValueError(f"answered {resp.status_code}")
    spans = resp.json().get("spans")
    if not isinstance(spans, list):
        raise ValueError("answered without a spans list")
    return [s for s in spans if isinstance(s, dict)]


async def collect_trace(
    targets: list[tuple[str, str]],
    trace_id: str,
    api_key: SecretValue,
    *,
    timeout: float = COLLECT_TIMEOUT_SECONDS,
) -> CollectedTrace:
    """The spans of `trace_id` held by every target `(name, base URL)` and by this process,
    fetched concurrently (through the egress perimeter, allowing exactly the targets' origins),
    merged (one copy of each span) and sorted by start."""
    if not is_trace_id(trace_id):
        raise ValueError("trace_id must be 32 lowercase hex digits (a W3C trace ID)")
    result = CollectedTrace(trace_id)
    answers: list[list[dict[str, Any]] | BaseException] = []
    if targets:
        policy = origin_policy(*(url for _, url in targets))
        async with egress_client(policy, principal="traces", timeout=timeout) as http:
            answers = await asyncio.gather(
                *(_fetch(http, url, trace_id, api_key) for _, url in targets),
                return_exceptions=True,
            )
    seen: set[str] = set()
    merged: list[dict[str, Any]] = []
    for (name, _url), answer in zip(targets, answers, strict=True):
        if isinstance(answer, BaseException):
            result.unreachable[name] = str(answer)[:200] or type(answer).__name__
            continue
        merged.extend(answer)
    merged.extend(local_spans(trace_id))
    for span in merged:
        key = f"{span.get('trace_id')}/{span.get('span_id')}"
        if key not in seen:
            seen.add(key)
            result.spans.append(span)
    result.spans.sort(key=lambda s: s.get("start") or 0.0)
    if result.unreachable:
        log.warning("trace incomplete", trace_id=trace_id, unreachable=sorted(result.unreachable))
    return result
