"""Traces across real agents on loopback ports: W3C propagation from one agent's client span to
the next agent's server span, correlation IDs that are trace IDs (or kept beside them), a span
per security stage (a refused call's too), `GET /traces/{trace_id}` behind the guard, and
`collect_trace` gathering a trace from several processes while one is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.core.context import CallContext, is_trace_id, new_correlation_id, traceparent
from bastion.runtime import AgentApp, AgentClient, AgentDefinition, MethodRegistry, collect_trace
from bastion.security import SecretValue
from bastion.testing import serve_in_thread
from tests.runtime.conftest import AgentEnv, make_env

UPSTREAM_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[tuple[AgentEnv, str]]:
    """The echo agent, and a `front` agent of the same project whose `forward` calls it."""
    for env in make_env(tmp_path):
        policy_path = env.settings.path(env.settings.policy.file)
        policy = json.loads(policy_path.read_text())
        policy["allow"]["nosy"] = ["echo"]  # may call, may not read traces
        env.set_policy(policy)
        front = AgentApp(front_definition(env.url, env.admin_key), env.settings)
        with serve_in_thread(front) as srv:
            yield env, srv.url


def front_definition(echo_url: str, key: str) -> AgentDefinition:
    registry = MethodRegistry()

    @registry.method("forward")
    async def forward(ctx: CallContext) -> dict[str, Any]:
        async with AgentClient(echo_url, api_key=key, principal="front") as client:
            result: dict[str, Any] = await client.call("echo", {"message": "via front"})
        return result

    return AgentDefinition("front", "forwards", registry)


def trace_of(url: str, trace_id: str, key: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/traces/{trace_id}", headers={"X-API-Key": key}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trace_id"] == trace_id
    spans: list[dict[str, Any]] = body["spans"]
    return spans


def call(url: str, method: str, key: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if method == "echo":
        body["params"] = {"message": "x"}
    h = {"X-API-Key": key, **(headers or {})}
    return httpx.post(url + "/message", json=body, headers=h, timeout=10)


def one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, spans)
    return found[0]


def test_new_correlation_ids_are_w3c_trace_ids() -> None:
    ids = {new_correlation_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_trace_id(i) for i in ids)


def test_a_call_across_two_agents_is_one_trace(agents: tuple[AgentEnv, str]) -> None:
    echo, front = agents
    trace_id = new_correlation_id()
    r = call(
        front, "forward", echo.admin_key, {"traceparent": traceparent(trace_id, UPSTREAM_SPAN)}
    )
    assert r.status_code == 200 and r.json()["result"]["message"] == "via front"
    # Correlation ID == trace ID, answered with where the request's span is.
    assert r.headers["x-correlation-id"] == trace_id
    assert r.headers["traceresponse"].startswith(f"00-{trace_id}-")

    spans = trace_of(front, trace_id, echo.admin_key)
    assert {s["trace_id"] for s in spans} == {trace_id}
    forward = one(spans, name="forward", service="front")
    assert forward["parent_span_id"] == UPSTREAM_SPAN and forward["kind"] == "server"
    client = one(spans, name="echo", kind="client")
    assert client["parent_span_id"] == forward["span_id"]
    downstream = one(spans, name="echo", kind="server", service="echo")
    assert downstream["parent_span_id"] == client["span_id"]  # propagated in `traceparent`
    assert downstream["attributes"]["bastion.principal"] == "admin"
    assert downstream["attributes"]["bastion.outcome"] == "ok"
    assert downstream["attributes"]["bastion.status"] == 200
    assert "bastion.correlation_id" not in downstream["attributes"]
    stages = [s["name"] for s in spans if s["parent_span_id"] == downstream["span_id"]]
    assert stages == ["authenticate", "delegation", "authorize", "rate_limit"]
    assert [s["start"] for s in spans] == sorted(s["start"] for s in spans)
    for span in spans:
        assert span["duration_ms"] >= 0 and span["status"] == "ok"
        assert echo.admin_key not in json.dumps(span)
    # The downstream hop audited the trace ID as its correlation ID.
    rows = echo.audit_records(lambda r: r.correlation_id == trace_id and r.agent == "echo")
    assert rows and rows[0].method == "echo"


def test_a_correlation_id_as_trace_id_without_traceparent(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    cid = new_correlation_id()
    assert call(echo.url, "echo", echo.admin_key, {"X-Correlation-ID": cid}).status_code == 200
    span = one(trace_of(echo.url, cid, echo.admin_key), name="echo")
    assert span["parent_span_id"] is None


def test_a_foreign_correlation_id_is_kept_beside_a_fresh_trace(
    agents: tuple[AgentEnv, str],
) -> None:
    echo, front = agents
    cid = "order-4711-checkout"
    r = call(front, "forward", echo.admin_key, {"X-Correlation-ID": cid})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == cid
    trace_id = r.headers["traceresponse"].split("-")[1]
    assert is_trace_id(trace_id)
    spans = trace_of(front, trace_id, echo.admin_key)
    hops = [s for s in spans if s["kind"] in ("server", "client")]
    assert len(hops) == 3
    assert all(s["attributes"]["bastion.correlation_id"] == cid for s in hops)
    # Both hops audit the caller's correlation ID, as before traces.
    rows = echo.audit_records(lambda r: r.correlation_id == cid, at_least=2)
    assert {r.agent for r in rows} == {"front", "echo"}


def test_a_refused_call_has_an_authenticate_span_in_error(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    trace_id = new_correlation_id()
    r = call(echo.url, "echo", "bst_wrong", {"traceparent": traceparent(trace_id, UPSTREAM_SPAN)})
    assert r.status_code == 401
    spans = trace_of(echo.url, trace_id, echo.admin_key)
    hop = one(spans, name="echo", kind="server")
    assert hop["status"] == "error"
    assert hop["attributes"]["bastion.outcome"] == "denied:authenticate"
    assert hop["attributes"]["bastion.status"] == 401
    assert hop["attributes"]["bastion.principal"] == "-"
    stage = one(spans, name="authenticate")
    assert stage["status"] == "error" and stage["parent_span_id"] == hop["span_id"]
    assert [s["name"] for s in spans if s["parent_span_id"] == hop["span_id"]] == ["authenticate"]


def test_a_forbidden_call_has_an_authorize_span_in_error(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    trace_id = new_correlation_id()
    r = call(
        echo.url,
        "get_status",
        echo.key("nosy"),
        {"traceparent": traceparent(trace_id, UPSTREAM_SPAN)},
    )
    assert r.status_code == 403
    spans = trace_of(echo.url, trace_id, echo.admin_key)
    assert one(spans, name="authorize")["status"] == "error"
    assert one(spans, name="authenticate")["status"] == "ok"
    assert one(spans, name="get_status")["attributes"]["bastion.principal"] == "nosy"


def test_batch_elements_are_spans_of_their_own(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    trace_id = new_correlation_id()
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": m, "params": {"message": "x"}}
        for i, m in enumerate(["echo", "nope"])
    ]
    r = httpx.post(
        echo.url + "/message",
        json=batch,
        headers={"X-API-Key": echo.admin_key, "X-Correlation-ID": trace_id},
        timeout=10,
    )
    assert r.status_code == 200
    spans = trace_of(echo.url, trace_id, echo.admin_key)
    request = one(spans, name="(batch of 2)")
    assert [s["name"] for s in spans if s["parent_span_id"] == request["span_id"]] == [
        "authenticate",
        "delegation",
        "echo",
        "nope",
    ]
    assert one(spans, name="nope")["status"] == "error"


def test_the_traces_route_needs_a_key_and_the_grant(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    url = f"{echo.url}/traces/{new_correlation_id()}"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": "bst_nope"}, timeout=10).status_code == 401
    nosy = httpx.get(url, headers={"X-API-Key": echo.key("nosy")}, timeout=10)
    assert nosy.status_code == 403 and "spans" not in nosy.text
    monitoring = httpx.get(url, headers={"X-API-Key": echo.key("monitoring")}, timeout=10)
    assert monitoring.status_code == 200 and monitoring.json()["spans"] == []
    gateway = httpx.get(url, headers={"X-API-Key": echo.key("gateway")}, timeout=10)
    assert gateway.status_code == 200
    bad = httpx.get(f"{echo.url}/traces/NOT-A-TRACE", headers={"X-API-Key": echo.admin_key})
    assert bad.status_code == 400
    zero = httpx.get(f"{echo.url}/traces/{'0' * 32}", headers={"X-API-Key": echo.admin_key})
    assert zero.status_code == 400


async def test_collect_trace_merges_targets_and_names_the_one_down(
    agents: tuple[AgentEnv, str],
) -> None:
    echo, front = agents
    trace_id = new_correlation_id()
    r = call(front, "forward", echo.admin_key, {"X-Correlation-ID": trace_id})
    assert r.status_code == 200
    with serve_in_thread(_refusing_app()) as down_srv:
        down = down_srv.url
    targets = [("front", front), ("echo", echo.url), ("down", down)]
    got = await collect_trace(targets, trace_id, SecretValue(echo.admin_key))
    assert set(got.unreachable) == {"down"}
    assert echo.admin_key not in got.unreachable["down"]
    names = [(s["service"], s["name"]) for s in got.spans]
    assert ("front", "forward") in names and ("echo", "echo") in names
    assert len({s["span_id"] for s in got.spans}) == len(got.spans)  # one copy of each
    assert [s["start"] for s in got.spans] == sorted(s["start"] for s in got.spans)


def _refusing_app() -> Any:
    from starlette.applications import Starlette

    return Starlette()


def test_a_guarded_route_is_a_span_with_its_stages(agents: tuple[AgentEnv, str]) -> None:
    echo, _ = agents
    trace_id = new_correlation_id()
    r = httpx.get(
        f"{echo.url}/traces/{new_correlation_id()}",
        headers={"X-API-Key": echo.admin_key, "traceparent": traceparent(trace_id, UPSTREAM_SPAN)},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["traceresponse"].startswith(f"00-{trace_id}-")
    spans = trace_of(echo.url, trace_id, echo.admin_key)
    hop = one(spans, name="traces", kind="server")
    assert hop["parent_span_id"] == UPSTREAM_SPAN and hop["attributes"]["bastion.status"] == 200
    stages = [s["name"] for s in spans if s["parent_span_id"] == hop["span_id"]]
    assert stages == ["authenticate", "delegation", "authorize", "rate_limit"]
