"""`bastion_http_responses_total{agent, route, status_class}` over real HTTP and WebSockets: an
app's routes by template (a Mount's joined), fixed paths, `unmatched` for unknown paths (never
the raw path), every status class, WebSocket handshakes accepted and refused, an app that fails
before answering; an agent's answers in its own `/metrics`, and the WAF's refusals counted when
the counter sits outside it (a public agent, the gateway)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bastion.config import Settings
from bastion.edge.middleware import protect
from bastion.runtime import count_responses
from bastion.runtime.http_metrics import UNMATCHED, RouteTemplates, status_class
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.web.gateway import NAME, Gateway
from bastion.web.ws_auth import hide_query_token
from tests.observability.scrape import Scrape, scrape
from tests.runtime.conftest import AgentEnv, make_env, public
from tests.web.conftest import make_project, serve_archivist

FAMILY = "bastion_http_responses_total"


def counted(agent: str, route: str, cls: str) -> float:
    value = REGISTRY.get_sample_value(FAMILY, {"agent": agent, "route": route, "status_class": cls})
    return value or 0.0


def refused(url: str, **kw: Any) -> int:
    """The HTTP status a WebSocket handshake to `url` is refused with."""
    with pytest.raises(InvalidStatus) as refusal, connect(url, open_timeout=10, **kw):
        pass
    return refusal.value.response.status_code


def routes_counted(agent: str) -> set[str]:
    """Every route label counted for `agent` in this process."""
    return {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == FAMILY.removesuffix("_total")
        for sample in family.samples
        if sample.name == FAMILY and sample.labels["agent"] == agent
    }


# -- a plain app ------------------------------------------------------------------------------


async def item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["id"]})


async def created(_request: Request) -> Response:
    return PlainTextResponse("made", status_code=201)


async def moved(_request: Request) -> Response:
    return Response(status_code=308, headers={"Location": "/items/1"})


async def fails(_request: Request) -> Response:
    raise RuntimeError("the handler fails before answering")


async def thing(request: Request) -> Response:
    return PlainTextResponse(str(request.path_params["n"]))


async def accept(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("hello")
    await ws.close()


async def refuse(ws: WebSocket) -> None:
    await ws.close(code=1008)


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("served outside the router")(scope, receive, send)


def plain_app() -> Starlette:
    inner = [Route("/things/{n:int}", thing, methods=["GET"])]
    routes = [
        Route("/items/{id}", item, methods=["GET"]),
        Route("/items", created, methods=["POST"]),
        Route("/old", moved, methods=["GET"]),
        Route("/fails", fails, methods=["GET"]),
        Mount("/sub", routes=inner),
        WebSocketRoute("/ws/accept", accept),
        WebSocketRoute("/ws/refuse", refuse),
    ]
    return Starlette(routes=routes)


@contextmanager
def plain_server(agent: str) -> Iterator[str]:
    app = plain_app()

    async def outside(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/raw":
            await raw(scope, receive, send)
        else:
            await app(scope, receive, send)

    with serve_in_thread(count_responses(outside, agent, router=app, paths=["/raw"])) as srv:
        yield srv.url


def test_responses_are_counted_by_route_template_and_status_class() -> None:
    agent = f"plain-{uuid.uuid4().hex[:8]}"
    with plain_server(agent) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/items/42").status_code == 200
        assert http.get("/items/43").status_code == 200
        assert http.post("/items").status_code == 201
        assert http.get("/old").status_code == 308
        assert http.delete("/items/42").status_code == 405  # path matched, method not
        assert http.get("/sub/things/7").status_code == 200
        assert http.get("/sub/things/seven").status_code == 404  # the converter refuses it
        assert http.get("/raw").status_code == 200
        assert http.get("/fails").status_code == 500
    assert counted(agent, "/items/{id}", "2xx") == 2
    assert counted(agent, "/items", "2xx") == 1
    assert counted(agent, "/old", "3xx") == 1
    assert counted(agent, "/items/{id}", "4xx") == 1
    assert counted(agent, "/sub/things/{n:int}", "2xx") == 1
    assert counted(agent, UNMATCHED, "4xx") == 1
    assert counted(agent, "/raw", "2xx") == 1
    assert counted(agent, "/fails", "5xx") == 1


def test_unknown_paths_share_one_label_whatever_they_are() -> None:
    agent = f"scan-{uuid.uuid4().hex[:8]}"
    probes = ["/admin", "/.env", "/wp-login.php", "/items", "/items/1/2", "/%2e%2e/etc/passwd"]
    probes += [f"/random/{uuid.uuid4().hex}" for _ in range(20)]
    with plain_server(agent) as url, httpx.Client(base_url=url, timeout=10) as http:
        for path in probes:
            assert http.get(path).status_code in (404, 405)
    # `/items` exists for POST only: a GET there is a 405 of its route, not an unknown path.
    assert routes_counted(agent) == {UNMATCHED, "/items"}
    assert counted(agent, UNMATCHED, "4xx") == len(probes) - 1


def test_websocket_handshakes_count_as_their_route() -> None:
    agent = f"ws-{uuid.uuid4().hex[:8]}"
    with plain_server(agent) as url:
        ws_url = url.replace("http://", "ws://")
        with connect(ws_url + "/ws/accept") as ws:
            assert ws.recv(timeout=10) == "hello"
        assert refused(ws_url + "/ws/refuse") == 403  # closed before it was accepted
        assert refused(ws_url + "/ws/nowhere") == 403
    assert counted(agent, "/ws/accept", "1xx") == 1
    assert counted(agent, "/ws/refuse", "4xx") == 1
    assert counted(agent, UNMATCHED, "4xx") == 1


def test_status_classes_and_route_lookups() -> None:
    assert [status_class(s) for s in (101, 204, 304, 429, 503)] == [
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
    ]
    assert status_class(0) == status_class(999) == "5xx"  # never a new label value
    templates = RouteTemplates(plain_app(), ["/message"])

    def label(path: str, kind: str = "http", method: str = "GET") -> str:
        return templates.label({"type": kind, "path": path, "method": method, "root_path": ""})

    assert label("/message") == "/message"
    assert label("/items/9") == label("/items/9") == "/items/{id}"  # the second from the cache
    assert label("/ws/accept") == UNMATCHED  # a WebSocket route does not serve HTTP
    assert label("/ws/accept", kind="websocket") == "/ws/accept"
    assert label("/sub/things/3") == "/sub/things/{n:int}"
    assert label("/sub/nothing") == UNMATCHED


# -- an agent ---------------------------------------------------------------------------------


def monitor(env: AgentEnv) -> Scrape:
    return scrape(env.url, {"X-API-Key": env.admin_key})


def test_an_agent_counts_its_answers_in_its_own_metrics(agent: AgentEnv) -> None:
    name = agent.app.definition.name
    before = monitor(agent)
    assert agent.rpc("echo", {"message": "hi"}, key=agent.admin_key).status_code == 200
    assert agent.rpc("echo", {"message": "hi"}, key="bst_nope").status_code == 401
    assert httpx.get(agent.url + "/healthz", timeout=10).status_code == 200
    assert httpx.get(agent.url + "/no/such/path", timeout=10).status_code == 404
    after = monitor(agent)

    def delta(route: str, cls: str) -> float:
        return after.since(before, FAMILY, agent=name, route=route, status_class=cls)

    assert delta("/message", "2xx") == 1
    assert delta("/message", "4xx") == 1
    assert delta("/healthz", "2xx") == 1
    assert delta(UNMATCHED, "4xx") == 1
    assert delta("/metrics", "2xx") == 1  # the first scrape, seen by the second
    assert "/no/such/path" not in after.label_values("route")


@pytest.fixture
def public_agent(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path, public)


def test_a_public_agent_counts_the_waf_refusals(public_agent: AgentEnv) -> None:
    env, name = public_agent, public_agent.app.definition.name
    before = monitor(env)
    assert httpx.get(env.url + "/admin", timeout=10).status_code == 404  # WAF rule 0
    too_big = env.post(b"x" * (1024 * 1024 + 1), key=env.admin_key)
    assert too_big.status_code == 413  # the WAF's size rule, before the agent reads it
    after = monitor(env)

    def delta(route: str, cls: str) -> float:
        return after.since(before, FAMILY, agent=name, route=route, status_class=cls)

    assert delta(UNMATCHED, "4xx") == 1
    assert delta("/message", "4xx") == 1


# -- the gateway, with the counter outermost ---------------------------------------------------


def counted_gateway(settings: Settings) -> object:
    """The gateway as `build_gateway` composes it, with the response counter outermost."""
    gateway = Gateway(settings)
    router = gateway.app()
    app = protect(router, settings, agent=NAME, audit=gateway.stack.audit)
    return count_responses(hide_query_token(app), NAME, router=router)


def test_the_gateway_counts_routes_websockets_and_waf_refusals(
    tmp_path: Path, sqlite_url: str
) -> None:
    def one_burst(settings: Settings) -> None:
        settings.waf.rate_limit = 8

    project = make_project(tmp_path, sqlite_url, one_burst)
    monitoring = build_api_key_store(project.settings).create("monitoring")
    key = {"X-API-Key": project.keys["submitter"]}
    before = {
        (route, cls): counted(NAME, route, cls)
        for route in ("/api/documents/{id}", "/ws/events", "/healthz", UNMATCHED, "/metrics")
        for cls in ("1xx", "2xx", "4xx")
    }
    with serve_archivist(project), serve_in_thread(counted_gateway(project.settings)) as srv:
        http = httpx.Client(base_url=srv.url, timeout=10)
        missing = http.get("/api/documents/no-such-document", headers=key)
        assert missing.status_code // 100 == 4  # the gateway's own answer
        assert http.get("/api/documents/1", params={"q": "' OR 1=1--"}).status_code == 403
        ws_url = srv.url.replace("http://", "ws://")
        with connect(ws_url + "/ws/events", additional_headers=key):
            pass
        # The WAF refuses these handshakes: its bot rules, its allow-list.
        assert refused(ws_url + "/ws/events", user_agent_header="sqlmap/1.8") // 100 == 4
        assert refused(ws_url + "/ws/nowhere") // 100 == 4
        assert http.get("/nowhere").status_code == 404
        scrape(srv.url, {"X-API-Key": monitoring})  # answers 200
        codes = [http.get("/healthz").status_code for _ in range(8)]
        http.close()
    assert codes[-1] == 429  # the WAF's per-address rate ran out within the burst

    def delta(route: str, cls: str) -> float:
        return counted(NAME, route, cls) - before[(route, cls)]

    assert delta("/api/documents/{id}", "4xx") == 2  # the gateway's 404 and the WAF's 403
    assert delta("/ws/events", "1xx") == 1
    assert delta("/ws/events", "4xx") == 1
    assert delta(UNMATCHED, "4xx") == 2
    assert delta("/metrics", "2xx") == 1
    assert delta("/healthz", "2xx") + delta("/healthz", "4xx") == 8
    assert delta("/healthz", "4xx") >= 1
