"""Every way the gateway (and the WAF in front of it) refuses or fails a request leaves exactly
one audit record.

The gateway runs behind the real WAF; its archivist is a stand-in in front of a real one that
answers `list_documents` with a result of the wrong shape, so that reading the document list
fails inside the handler, and passes every other call on. "Exactly
one" is checked after a later request's record has arrived: records are written before the
answer is sent and the writer keeps their order, so a second record would be there by then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import jwt as pyjwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.config import Settings
from bastion.storage.database import migrate
from bastion.storage.models import AuditRecord
from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from tests.pipeline.hostile import normal_pdf
from tests.web.conftest import Project, make_project, serve_archivist

LIMIT = 16 * 1024
SOME_ID = "ab" * 32


def _wrong_list_shape(real_url: str) -> Starlette:
    async def message(request: Request) -> Response:
        body = await request.body()
        call = orjson.loads(body)
        if call.get("method") == "list_documents":
            return JSONResponse({"jsonrpc": "2.0", "id": call.get("id"), "result": 42})
        passed = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as client:
            answer = await client.post(real_url + "/message", content=body, headers=passed)
        return Response(answer.content, answer.status_code, media_type="application/json")

    return Starlette(routes=[Route("/message", message, methods=["POST"])])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Project]]:
    tmp = tmp_path_factory.mktemp("gateway-refusals")
    db_url = f"sqlite:///{tmp / 'bastion.db'}"
    migrate(db_url)

    def configure(settings: Settings) -> None:
        settings.pipeline.max_upload_bytes = LIMIT
        settings.waf.limits.routes = {"/api/documents": 4 * LIMIT}
        settings.rate_limit.principals["admin"] = "1/minute"

    project = make_project(tmp, db_url, configure)
    with serve_archivist(project) as real, serve_in_thread(_wrong_list_shape(real.url)) as fake:
        project.settings.agents["archivist"].url = fake.url
        with serve_in_thread(build_gateway(project.settings)) as gw:
            yield gw.url, project


def only_record(url: str, project: Project, cid: str) -> AuditRecord:
    """The one gateway audit record of `cid` (see the module docstring)."""
    marker = f"{cid}-next"
    headers = {"X-API-Key": project.keys["submitter"], "X-Correlation-ID": marker}
    httpx.get(url + "/api/documents/not-an-id", headers=headers, timeout=10)
    assert project.audit_records(lambda a: a.correlation_id == marker)
    rows = project.audit_records(lambda a: a.correlation_id == cid and a.agent == "gateway")
    assert len(rows) == 1, [(r.agent, r.method, r.outcome) for r in rows]
    return rows[0]


def _forged_jwt() -> str:
    claims = {"iss": "bastion", "aud": "bastion", "sub": "admin", "exp": int(time.time()) + 60}
    return pyjwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")


Send = Callable[[str, Project, dict[str, str]], httpx.Response]


def _as(principal: str, project: Project, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "X-API-Key": project.keys[principal]}


def _get(path: str, principal: str | None = "submitter") -> Send:
    def send(url: str, project: Project, headers: dict[str, str]) -> httpx.Response:
        if principal is not None:
            headers = _as(principal, project, headers)
        return httpx.get(url + path, headers=headers, timeout=10)

    return send


def _rate_limited(url: str, project: Project, headers: dict[str, str]) -> httpx.Response:
    first = httpx.get(url + "/api/documents?limit=x", headers=_as("admin", project, {}))
    assert first.status_code == 400  # the one request of the minute, refused by the handler
    return _get("/api/documents?limit=x", "admin")(url, project, headers)


CASES: dict[str, tuple[Send, int, str]] = {
    "bad key": (
        lambda url, project, headers: httpx.get(
            url + "/api/documents",
            headers={**headers, "X-API-Key": "bst_aaaaaaaaaaaa_" + "0" * 64},
        ),
        401, "denied:authenticate",
    ),
    "forged jwt": (
        lambda url, project, headers: httpx.get(
            url + "/api/documents",
            headers={**headers, "Authorization": f"Bearer {_forged_jwt()}"},
        ),
        401, "denied:authenticate",
    ),
    "forbidden action": (
        lambda url, project, headers: httpx.delete(
            url + f"/api/documents/{SOME_ID}", headers=_as("submitter", project, headers)
        ),
        403, "denied:authorize",
    ),
    "rate limit": (_rate_limited, 429, "denied:rate_limit"),
    "oversized upload": (
        lambda url, project, headers: httpx.post(
            url + "/api/documents",
            files={"file": ("big.pdf", b"%PDF-1.7\n" + b"0" * 2 * LIMIT, "application/pdf")},
            headers=_as("submitter", project, headers),
        ),
        413, "denied:size_limit",
    ),
    "malformed request after auth": (_get("/api/documents?limit=x"), 400, "error:invalid_request"),
    "handler error": (_get("/api/documents"), 500, "error:internal_error"),
    "waf block": (
        _get("/api/documents?status=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
        403, "denied:waf",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_leaves_exactly_one_audit_record(
    gateway: tuple[str, Project], case: str
) -> None:
    url, project = gateway
    send, status, outcome = CASES[case]
    cid = "gateway-refusal-" + case.replace(" ", "-")
    r = send(url, project, {"X-Correlation-ID": cid})
    assert r.status_code == status, r.text
    assert r.json()["correlation_id"] == cid
    record = only_record(url, project, cid)
    assert (record.agent, record.outcome, record.status) == ("gateway", outcome, status)


def test_an_upload_that_passes_is_one_record_too(gateway: tuple[str, Project]) -> None:
    url, project = gateway
    cid = "gateway-upload-passes"
    files = {"file": ("ok.pdf", normal_pdf(b"one record"), "application/pdf")}
    headers = _as("submitter", project, {"X-Correlation-ID": cid})
    assert httpx.post(url + "/api/documents", files=files, headers=headers).status_code == 202
    assert only_record(url, project, cid).outcome == "ok"
