"""The gateway behind the WAF, over real HTTP with the archivist running, and a public agent
behind it called by Bastion's own client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bastion.agents.echo import echo_definition
from bastion.config import Settings, load_settings
from bastion.edge.middleware import WafMiddleware, protect
from bastion.project import init_project
from bastion.runtime.agent import AgentApp
from bastion.runtime.client import AgentClient
from bastion.testing import serve_in_thread
from bastion.web.gateway import NAME, Gateway, build_gateway
from tests.edge.conftest import FAKE
from tests.pipeline.hostile import normal_pdf
from tests.runtime.conftest import AgentEnv, make_env, public
from tests.web.conftest import Project, make_project, serve_archivist

SQLI = "1' OR 1=1--"


@contextmanager
def gateway(
    tmp_path: Path, sqlite_url: str, *, fake: bool = False
) -> Iterator[tuple[str, Project]]:
    """The archivist and the gateway behind the WAF (real detectors unless `fake`)."""
    project = make_project(tmp_path, sqlite_url)
    with serve_archivist(project):
        if fake:
            gw = Gateway(project.settings)
            app = protect(
                gw.app(), project.settings, agent=NAME, audit=gw.stack.audit, detectors=FAKE
            )
        else:
            app = build_gateway(project.settings)
        with serve_in_thread(app) as srv:
            yield srv.url, project


def test_gateway_is_served_behind_the_waf(tmp_path: Path, sqlite_url: str) -> None:
    def one_request(settings: Settings) -> None:
        settings.waf.rate_limit = 1

    project = make_project(tmp_path, sqlite_url, one_request)
    with serve_in_thread(build_gateway(project.settings)) as srv:
        codes = [httpx.get(srv.url + "/healthz", timeout=10).status_code for _ in range(2)]
        assert codes == [200, 429]
    project.settings.waf.enabled = False
    with serve_in_thread(build_gateway(project.settings)) as srv:
        codes = [httpx.get(srv.url + "/healthz", timeout=10).status_code for _ in range(2)]
        assert codes == [200, 200]


def test_every_gateway_route_is_allowed_and_nothing_else(tmp_path: Path, sqlite_url: str) -> None:
    with gateway(tmp_path, sqlite_url) as (url, project):
        app = Gateway(project.settings).app()
        http_paths = [r.path for r in app.routes if isinstance(r, Route)]
        ws_paths = [r.path for r in app.routes if isinstance(r, WebSocketRoute)]
        assert "/api/documents" in http_paths
        for path in http_paths:
            r = httpx.get(url + path.replace("{id}", "a" * 64), timeout=10)
            assert r.status_code != 404 or r.json()["error"]["message"].startswith("no document")
        for path in ws_paths:
            try:
                with connect(url.replace("http", "ws") + path, open_timeout=10):
                    pass
            except InvalidStatus as refused:
                assert refused.response.status_code != 404
        r = httpx.get(url + "/wp-login.php", timeout=10)
        assert r.status_code == 404
        assert set(r.json()) == {"error", "correlation_id"}


def test_uploads_and_reads_pass_with_the_waf_on(tmp_path: Path, sqlite_url: str) -> None:
    with gateway(tmp_path, sqlite_url) as (url, project):
        key = {"X-API-Key": project.keys["submitter"]}
        files = {"file": ("invoice.pdf", normal_pdf(b"' OR 1=1-- <script>"), "application/pdf")}
        r = httpx.post(url + "/api/documents", files=files, headers=key, timeout=10)
        assert r.status_code == 202, r.text
        doc_id = r.json()["id"]
        assert (
            httpx.get(url + f"/api/documents/{doc_id}", headers=key, timeout=10).status_code == 200
        )
        listed = httpx.get(
            url + "/api/documents", params={"status": "queued"}, headers=key, timeout=10
        )
        assert listed.status_code == 200


def test_blocked_attack_is_audited_in_the_gateway_chain(tmp_path: Path, sqlite_url: str) -> None:
    with gateway(tmp_path, sqlite_url, fake=True) as (url, project):
        cid = "waf-audit-trace-01"
        r = httpx.get(
            url + "/api/documents",
            params={"status": SQLI},
            headers={"X-API-Key": project.keys["submitter"], "X-Correlation-ID": cid},
            timeout=10,
        )
        assert r.status_code == 403
        assert r.json()["rule_ids"] == ["managed.sqli.test"]
        [row] = project.audit_records(lambda a: a.correlation_id == cid)
        assert (row.agent, row.outcome, row.status) == ("gateway", "denied:waf", 403)
        assert (row.method, row.client) == ("waf.managed", "127.0.0.1")
        assert SQLI not in (row.detail or "")


def test_upload_over_the_route_limit_is_refused_by_the_waf(tmp_path: Path, sqlite_url: str) -> None:
    def small(settings: Settings) -> None:
        settings.pipeline.max_upload_bytes = 1000

    project = make_project(tmp_path, sqlite_url, small)
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as srv:
        key = {"X-API-Key": project.keys["submitter"]}
        big = {"file": ("a.pdf", b"%PDF-" + b"0" * 100_000, "application/pdf")}
        r = httpx.post(srv.url + "/api/documents", files=big, headers=key, timeout=10)
        assert r.status_code == 413
        assert "over this endpoint's limit" in r.json()["error"]["message"]
        # Within the WAF's bound, the gateway's own exact check answers.
        r = httpx.post(
            srv.url + "/api/documents",
            files={"file": ("a.pdf", b"%PDF-" + b"0" * 2000, "application/pdf")},
            headers=key,
            timeout=10,
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"


def test_real_detectors_refuse_attacks_and_bots_at_the_gateway(
    tmp_path: Path, sqlite_url: str
) -> None:
    with gateway(tmp_path, sqlite_url) as (url, project):
        key = project.keys["submitter"]
        cid = "waf-real-trace-01"
        r = httpx.get(
            url + "/api/documents",
            params={"status": "1' UNION SELECT password FROM users--"},
            headers={"X-API-Key": key, "X-Correlation-ID": cid},
            timeout=10,
        )
        assert r.status_code == 403
        body = r.json()
        assert body["rule_ids"] and all(i.startswith("managed.sqli.") for i in body["rule_ids"])
        assert body["correlation_id"] == cid
        [row] = project.audit_records(lambda a: a.correlation_id == cid)
        assert (row.agent, row.outcome, row.method) == ("gateway", "denied:waf", "waf.managed")
        scanner = httpx.get(url + "/healthz", headers={"User-Agent": "sqlmap/1.8"}, timeout=10)
        assert scanner.status_code == 403
        assert scanner.json()["rule_ids"] == ["bot.scanner_user_agent"]
        with httpx.Client(timeout=10) as client:
            del client.headers["user-agent"]
            assert client.get(url + "/healthz").json()["rule_ids"] == ["bot.missing_user_agent"]
        for ua in ("curl/8.5.0", "python-requests/2.32.3", "Mozilla/5.0 (X11; Linux x86_64)"):
            assert httpx.get(url + "/healthz", headers={"User-Agent": ua}).status_code == 200


def test_large_pdf_with_attack_like_bytes_passes_the_real_detectors(
    tmp_path: Path, sqlite_url: str
) -> None:
    filler = b"% ' OR 1=1-- <script>alert(1)</script> ../../etc/passwd ${jndi:ldap://x}\n"
    pdf = b"%PDF-1.7\n" + filler * (3 * 1024 * 1024 // len(filler)) + b"%%EOF\n"
    with gateway(tmp_path, sqlite_url) as (url, project):
        key = {"X-API-Key": project.keys["submitter"]}
        files = {"file": ("scan.pdf", pdf, "application/pdf")}
        r = httpx.post(url + "/api/documents", files=files, headers=key, timeout=30)
        # Past the WAF: the gateway's own checks answer (this is not a readable PDF, but it
        # is stored and queued; the extractor would fail it later).
        assert r.status_code in (200, 202), r.text
        assert r.json()["id"]


# -- a public agent ---------------------------------------------------------------------------


@pytest.fixture
def public_agent(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path, public)


async def test_our_agent_client_is_never_blocked_by_a_public_agent(public_agent: AgentEnv) -> None:
    assert isinstance(public_agent.app.edge, WafMiddleware)
    async with AgentClient(public_agent.url, api_key=public_agent.admin_key) as client:
        for _ in range(3):  # tokens, card and calls all go through the WAF
            result = await client.call("echo", {"message": "hello from Bastion"})
            assert result["message"] == "hello from Bastion"


def test_public_agent_rejections(public_agent: AgentEnv) -> None:
    url = public_agent.url
    assert httpx.get(url + "/admin", timeout=10).status_code == 404
    assert httpx.get(url + "/.well-known/agent-card.json", timeout=10).status_code == 200
    r = public_agent.post(b"x" * (1024 * 1024 + 1), key=public_agent.admin_key)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_agents_not_public_are_not_wrapped(tmp_path: Path) -> None:
    settings = load_settings(init_project(tmp_path / "proj").config)
    app = AgentApp(echo_definition(), settings)
    assert app.edge is app.server
    public(settings)
    assert isinstance(AgentApp(echo_definition(), settings).edge, WafMiddleware)
