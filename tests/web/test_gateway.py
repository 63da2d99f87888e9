"""The gateway over real HTTP, with the archivist agent running, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.config import Settings
from bastion.pipeline.model import is_document_id
from bastion.testing import serve_in_thread
from bastion.testing.ports import closed_port_url
from bastion.web import build_gateway
from tests.pipeline.hostile import normal_pdf, png_renamed
from tests.web.conftest import Project, make_project, serve_archivist

LIMIT = 64 * 1024


@dataclass
class Gateway:
    project: Project
    url: str

    def request(
        self,
        method: str,
        path: str,
        principal: str | None = "submitter",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        h = {"X-API-Key": self.project.keys[principal]} if principal else {}
        h.update(headers or {})
        return httpx.request(method, self.url + path, headers=h, timeout=10, **kw)

    def upload(self, data: bytes, principal: str | None = "submitter", **kw: Any) -> httpx.Response:
        files = {"file": ("invoice.pdf", data, "application/pdf")}
        return self.request("POST", "/api/documents", principal, files=files, **kw)

    def audit(self, cid: str, agent: str = "gateway") -> list[Any]:
        return self.project.audit_records(lambda a: a.correlation_id == cid and a.agent == agent)


@contextmanager
def start(
    tmp_path: Path, db_url: str, configure: Callable[[Settings], None] | None = None
) -> Iterator[Gateway]:
    """The archivist and the gateway (upload limit LIMIT) on a fresh project."""

    def small(settings: Settings) -> None:
        settings.pipeline.max_upload_bytes = LIMIT
        # Room at the edge, so that the gateway's own limit is the one under test here (the
        # WAF's upload limit is tested in tests/edge).
        settings.waf.limits.routes = {"/api/documents": 4 * LIMIT}
        if configure is not None:
            configure(settings)

    project = make_project(tmp_path, db_url, small)
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as gw:
        yield Gateway(project, gw.url)


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """On SQLite and PostgreSQL."""
    with start(tmp_path, db_url) as gw:
        yield gw


@pytest.fixture
def edge(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    """For what the gateway refuses before the archive is involved, one backend is enough."""
    with start(tmp_path, sqlite_url) as gw:
        yield gw


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(r: httpx.Response) -> str:
    body = r.json()
    assert body["correlation_id"] == r.headers["x-correlation-id"]
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def multipart_chunks(data: bytes, boundary: str = "test-boundary-1") -> Iterator[bytes]:
    yield (
        f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=big.pdf\r\n"
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    for i in range(0, len(data), 16384):
        yield data[i : i + 16384]
    yield f"\r\n--{boundary}--\r\n".encode()


# -- upload -----------------------------------------------------------------------------------


def test_new_upload_is_queued_and_identical_bytes_are_one_document(gateway: Gateway) -> None:
    data = normal_pdf(b"gateway upload")
    cid = "upload-corr-0001"
    r = gateway.upload(data, headers={"X-Correlation-ID": cid})
    assert r.status_code == 202, r.text
    doc_id = r.json()["id"]
    assert is_document_id(doc_id) and doc_id != sha(data)
    expected = {"id": doc_id, "sha256": sha(data), "status": "queued", "correlation_id": cid}
    assert r.json() == expected
    assert r.headers["x-correlation-id"] == cid
    assert "ratelimit" in r.headers

    (message,) = gateway.project.queued()
    assert message.body == {
        "document_id": doc_id,
        "correlation_id": cid,
        "filename": "invoice.pdf",
    }
    (record,) = gateway.audit(cid)
    assert (record.principal, record.method, record.outcome, record.status) == (
        "submitter",
        "upload_document",
        "ok",
        202,
    )

    again = gateway.upload(data)
    assert again.status_code == 200
    assert again.json()["id"] == doc_id and again.json()["status"] == "queued"
    assert again.json()["sha256"] == sha(data)
    assert again.json()["correlation_id"] == again.headers["x-correlation-id"] != cid

    gateway.project.archive(doc_id, "valid", correlation_id=cid)
    done = gateway.upload(data)
    assert done.status_code == 200
    assert (done.json()["id"], done.json()["status"], done.json()["outcome"]) == (
        doc_id,
        "archived",
        "valid",
    )
    assert len(gateway.project.queued()) == 1


def test_oversized_uploads_are_413(edge: Gateway) -> None:
    cid = "too-big-declared"
    big = b"%PDF-1.7\n" + b"0" * (LIMIT * 3)
    r = edge.upload(big, headers={"X-Correlation-ID": cid})
    assert r.status_code == 413 and error_code(r) == "too_large"
    assert str(LIMIT) in r.json()["error"]["message"]
    (record,) = edge.audit(cid)
    assert (record.outcome, record.status, record.principal) == (
        "denied:size_limit",
        413,
        "submitter",
    )

    # Without a Content-Length the body is counted while it arrives.
    chunked = edge.request(
        "POST",
        "/api/documents",
        content=multipart_chunks(big),
        headers={"Content-Type": "multipart/form-data; boundary=test-boundary-1"},
    )
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and error_code(chunked) == "too_large"

    # Just over the limit: inside the allowance for the multipart framing, refused exactly.
    r = edge.upload(b"%PDF-1.7\n" + b"0" * (LIMIT - 8))
    assert r.status_code == 413 and error_code(r) == "too_large"
    assert edge.upload(b"%PDF-1.7\n" + b"0" * (LIMIT - 9)).status_code == 202
    assert len(edge.project.queued()) == 1


def test_what_is_not_a_pdf_upload_is_refused(edge: Gateway) -> None:
    r = edge.upload(png_renamed())
    assert r.status_code == 415 and error_code(r) == "not_pdf"
    r = edge.upload(b"")
    assert r.status_code == 400 and error_code(r) == "empty"
    r = edge.request("POST", "/api/documents", json={"file": "JVBERi0xLjQK"})
    assert r.status_code == 415 and error_code(r) == "unsupported_media_type"
    r = edge.request("POST", "/api/documents", files={"other": ("a.pdf", normal_pdf(), "x/y")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
    two = [("file", ("a.pdf", normal_pdf(b"1"), "application/pdf"))] * 2
    r = edge.request("POST", "/api/documents", files=two)
    assert r.status_code == 400 and error_code(r) == "invalid_request"
    assert edge.project.queued() == []


# -- authentication, authorization, rate limits ----------------------------------------------


def test_missing_or_bad_credentials_are_401_and_audited(edge: Gateway) -> None:
    forged = "bst_aaaaaaaaaaaa_" + "s3cr3t" * 10
    cases = [
        ("GET", "/api/documents", {}),
        ("POST", "/api/documents", {"X-API-Key": forged}),
        ("GET", "/api/documents/" + "0" * 64, {"Authorization": "Bearer not.a.jwt"}),
        ("DELETE", "/api/documents/" + "0" * 64, {"Authorization": "Basic YWRtaW46YWRtaW4="}),
    ]
    for i, (method, path, headers) in enumerate(cases):
        cid = f"no-auth-{i:04d}"
        r = edge.request(method, path, None, {**headers, "X-Correlation-ID": cid})
        assert r.status_code == 401 and error_code(r) == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "s3cr3t" not in r.text
        (record,) = edge.audit(cid)
        assert (record.outcome, record.status, record.principal) == (
            "denied:authenticate",
            401,
            "-",
        )


def test_rate_limited_callers_get_429(tmp_path: Path, sqlite_url: str) -> None:
    def limited(settings: Settings) -> None:
        settings.rate_limit.principals["submitter"] = "2/minute"

    with start(tmp_path, sqlite_url, limited) as gateway:
        statuses = [gateway.request("GET", "/api/documents").status_code for _ in range(2)]
        assert statuses == [200, 200]
        r = gateway.request("GET", "/api/documents")
        assert r.status_code == 429 and error_code(r) == "rate_limited"
        assert int(r.headers["retry-after"]) > 0


# -- reading ----------------------------------------------------------------------------------


def test_document_list_and_file_are_read_through_the_archivist(gateway: Gateway) -> None:
    docs = [normal_pdf(f"doc {i}".encode()) for i in range(5)]
    ids = []
    for data in docs:
        r = gateway.upload(data)
        assert r.status_code == 202
        ids.append(r.json()["id"])

    cid = "read-corr-0001"
    r = gateway.request("GET", f"/api/documents/{ids[0]}", headers={"X-Correlation-ID": cid})
    assert r.status_code == 200, r.text
    assert r.headers["x-correlation-id"] == cid
    doc = r.json()
    assert "metadata" not in doc  # the gateway's own quota at the archivist stays inside
    assert (doc["id"], doc["sha256"], doc["status"]) == (ids[0], sha(docs[0]), "queued")
    assert (doc["uploaded_by"], doc["owner"]) == ("submitter", "submitter")
    assert doc["correlation_id"] == doc["history"][0]["correlation_id"] != cid  # the upload's
    assert [h["event"] for h in doc["history"]] == ["received"]
    assert {"fields", "findings", "outcome"} <= set(doc)
    (own,) = gateway.audit(cid)
    (hop,) = gateway.audit(cid, agent="archivist")  # the same correlation ID, one hop on
    assert (own.principal, own.method) == ("submitter", "get_document")
    assert (hop.principal, hop.method, hop.outcome) == ("gateway", "get_document", "ok")

    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2, "status": "queued"}
    while True:
        page = gateway.request("GET", "/api/documents", params=query).json()
        assert len(page["documents"]) <= 2
        seen += [d["id"] for d in page["documents"]]
        if page["next_cursor"] is None:
            break
        query["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(ids)
    assert all(d["sha256"] == sha(docs[ids.index(d["id"])]) for d in page["documents"])

    f = gateway.request("GET", f"/api/documents/{ids[1]}/file")
    assert f.status_code == 200 and f.content == docs[1]
    assert f.headers["content-type"] == "application/pdf"
    assert f.headers["x-content-type-options"] == "nosniff"


def test_bad_reads_are_400_or_404(edge: Gateway) -> None:
    for unknown in ("ab" * 32, "doc_" + "a" * 26):
        for path in (f"/api/documents/{unknown}", f"/api/documents/{unknown}/file"):
            r = edge.request("GET", path)
            assert r.status_code == 404 and error_code(r) == "not_found"
    r = edge.request("GET", "/api/documents/" + "AB" * 32)
    assert r.status_code == 400 and error_code(r) == "invalid_request"
    for path in ("/api/documents/not-a-sha", "/api/documents/%2E%2E%2Fetc/file"):
        r = edge.request("GET", path)
        assert r.status_code in (400, 404), path
    for query in ({"cursor": "garbage"}, {"status": "lost"}, {"limit": "0"}, {"limit": "x"}):
        r = edge.request("GET", "/api/documents", params=query)
        assert r.status_code == 400 and error_code(r) == "invalid_request", query
    assert (
        "next_cursor"
        in edge.request("GET", "/api/documents", params={"cursor": "garbage"}).json()["error"][
            "message"
        ]
    )


def test_health_and_unknown_routes(edge: Gateway) -> None:
    assert httpx.get(edge.url + "/healthz").json() == {"status": "alive", "agent": "gateway"}
    r = httpx.get(edge.url + "/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = edge.request("PUT", "/api/documents")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    # A malformed correlation ID is replaced, not echoed.
    r = edge.request("GET", "/api/documents", headers={"X-Correlation-ID": "bad id; with spaces"})
    assert r.status_code == 200 and r.headers["x-correlation-id"] != "bad id; with spaces"
    assert r.json()["correlation_id"] == r.headers["x-correlation-id"]


def test_archivist_unreachable_is_503(tmp_path: Path, sqlite_url: str) -> None:
    dead = closed_port_url()
    project = make_project(tmp_path, sqlite_url)
    project.settings.agents["archivist"].url = dead
    project.settings.client.max_retries = 0
    with serve_in_thread(build_gateway(project.settings)) as gw:
        gateway = Gateway(project, gw.url)
        r = gateway.request("GET", "/api/documents")
        assert r.status_code == 503 and error_code(r) == "archive_unavailable"
        assert r.headers["retry-after"]
        assert "archive" in r.json()["error"]["message"]
        # Uploads are recorded by the archivist: refused the same way, and nothing is queued.
        r = gateway.upload(normal_pdf(b"offline"))
        assert r.status_code == 503 and error_code(r) == "archive_unavailable"
        assert r.headers["retry-after"]
        assert project.queued() == []


# -- delete -----------------------------------------------------------------------------------


def test_only_admin_deletes_and_a_tombstone_stays(gateway: Gateway) -> None:
    data = normal_pdf(b"to delete")
    doc_id = gateway.upload(data).json()["id"]
    path = f"/api/documents/{doc_id}"

    r = gateway.request("DELETE", path, headers={"X-Correlation-ID": "delete-by-submitter"})
    assert r.status_code == 403 and error_code(r) == "forbidden"
    (denied,) = gateway.audit("delete-by-submitter")
    assert (denied.outcome, denied.principal, denied.method) == (
        "denied:authorize",
        "submitter",
        "delete_document",
    )
    assert gateway.request("GET", path + "/file").status_code == 200

    r = gateway.request("DELETE", path, "admin", headers={"X-Correlation-ID": "delete-by-admin"})
    assert r.status_code == 200 and r.json()["deleted"] is True
    (record,) = gateway.audit("delete-by-admin")
    assert (record.outcome, record.principal) == ("ok", "admin")
    tomb = gateway.project.repo.get_document(doc_id)
    assert tomb is not None and tomb["deleted_at"] is not None
    assert tomb["history"][-1]["event"] == "deleted"
    assert tomb["history"][-1]["correlation_id"] == "delete-by-admin"

    assert gateway.request("GET", path + "/file").status_code == 404
    assert gateway.request("GET", path).status_code == 404
    assert gateway.request("DELETE", path, "admin").status_code == 404
    listed = gateway.request("GET", "/api/documents").json()["documents"]
    assert doc_id not in [d["id"] for d in listed]


# -- watched folder ---------------------------------------------------------------------------


def test_the_gateway_runs_the_watched_folder(tmp_path: Path, sqlite_url: str) -> None:
    def watch(settings: Settings) -> None:
        settings.pipeline.watch_dir = "inbox"
        settings.pipeline.watch_owner = "submitter"

    with start(tmp_path, sqlite_url, watch) as gateway:
        inbox = gateway.project.settings.path("inbox")
        inbox.mkdir(exist_ok=True)
        data = normal_pdf(b"dropped")
        (inbox / "dropped.pdf").write_bytes(data)
        deadline = time.monotonic() + 10
        while not (messages := gateway.project.queued()) and time.monotonic() < deadline:
            time.sleep(0.1)
        (message,) = messages
        records = gateway.project.audit_records(lambda a: a.method == "watch_ingest")
        assert [(a.principal, a.outcome) for a in records] == [("gateway:watch", "ok")]
        # `pipeline.watch_owner` owns it: the submitter reads it like its own upload.
        r = gateway.request("GET", f"/api/documents/{message.body['document_id']}")
        assert r.status_code == 200, r.text
        assert (r.json()["owner"], r.json()["uploaded_by"]) == ("submitter", "gateway:watch")
        assert r.json()["sha256"] == sha(data)
