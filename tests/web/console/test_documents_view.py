"""The console's Documents view over real HTTP (gateway + served archivist on SQLite): counts,
list, search, pagination, the detail with evidence, the audit path and trace sections, owner
scoping, and every refusal."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.pipeline.extract import extract_document
from bastion.pipeline.model import ExtractedField, Finding, ValidationResult
from bastion.web import gateway
from bastion.web.console.pages import CSP
from tests.cli.test_extract_cli import invoice
from tests.research.test_corpus import pdf_bytes
from tests.web.console.conftest import ConsoleSite, csrf_of

PAGE_SIZE = 2
ROW_RE = re.compile(r'<tr id="doc-([^"]+)"')
Source = Callable[[str], Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def console(site: ConsoleSite) -> ConsoleSite:
    """The console with pages of PAGE_SIZE rows; `submitter` may open the Documents view."""
    site.project.settings.console.page_size = PAGE_SIZE  # read by the view on each request
    grant(site, "submitter", "gateway.console_session", "gateway.console_documents")
    return site


def grant(site: ConsoleSite, principal: str, *actions: str) -> None:
    """Add `actions` to `principal`'s grants in the policy file (read again on each request)."""
    path = site.project.settings.path(site.project.settings.policy.file)
    policy = json.loads(path.read_text())
    policy["allow"].setdefault(principal, []).extend(actions)
    path.write_text(json.dumps(policy))


def wired_site(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, **sources: Source
) -> ConsoleSite:
    """The `site` fixture's console with `sources` (audit_path, trace) in its deps."""
    factories = {"trace": "trace_source", "audit_path": "audit_path_source"}
    for name, source in sources.items():
        monkeypatch.setattr(gateway, factories[name], partial(_given, source))
    site: ConsoleSite = request.getfixturevalue("site")
    return site


def _given(source: Source, *_args: object) -> Source:
    return source


def upload(site: ConsoleSite, principal: str, data: bytes, filename: str) -> str:
    r = httpx.post(
        site.url + "/api/documents",
        headers={"X-API-Key": site.project.keys[principal]},
        files={"file": (filename, data, "application/pdf")},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    doc_id: str = r.json()["id"]
    return doc_id


class Docs:
    """Three uploads of `submitter` (one archived with fields and evidence) and one of
    `admin`'s, newest last."""

    def __init__(self, site: ConsoleSite, tmp_path: Path) -> None:
        data = invoice(tmp_path / "inv.pdf").read_bytes()
        self.archived = upload(site, "submitter", data, "harbour.pdf")
        self.first = upload(site, "submitter", pdf_bytes("Quarterly freight report"), "a.pdf")
        self.second = upload(site, "submitter", pdf_bytes("Meeting minutes"), "b.pdf")
        self.admins = upload(site, "admin", pdf_bytes("Zebra Logistics memo"), "zebra.pdf")
        self.result = extract_document(data)
        self.result.fields["line_items"] = ExtractedField(
            value=[{"description": "Rope, 20 m", "quantity": 2, "unit_price": 50, "amount": 100}],
            confidence=0.8,
        )
        findings = [
            Finding(rule_id="totals.sum", severity="warning", message="check", field="total")
        ]
        site.project.repo.archive(
            self.archived,
            self.result,
            ValidationResult(outcome="needs_review", findings=findings),
            correlation_id=None,
            principal="orchestrator",
        )


@pytest.fixture
def docs(console: ConsoleSite, tmp_path: Path) -> Docs:
    return Docs(console, tmp_path)


@contextmanager
def signed_in(site: ConsoleSite, principal: str) -> Iterator[httpx.Client]:
    with site.browser() as client:
        assert site.sign_in(client, principal).status_code == 303
        yield client


def rows(page: httpx.Response) -> list[str]:
    return ROW_RE.findall(page.text)


def count(page: httpx.Response, card: str) -> int:
    match = re.search(rf'id="count-{card}">(\d+)<', page.text)
    assert match is not None, card
    return int(match.group(1))


def test_admin_sees_every_owner_s_counts_and_documents(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "admin") as b:
        page = b.get("/console/documents")
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"] == CSP
    assert 'data-view="documents"' in page.text  # the page script loads documents.js
    assert count(page, "total") == 4
    assert count(page, "status-queued") == 3 and count(page, "status-archived") == 1
    assert count(page, "outcome-needs_review") == 1 and count(page, "outcome-valid") == 0
    assert rows(page) == [docs.admins, docs.second]  # newest first, PAGE_SIZE rows
    assert '<td data-field="owner">admin</td>' in page.text
    assert '<th scope="col">Filename</th>' in page.text
    assert '<label for="filter-q">Search</label>' in page.text
    assert 'aria-live="polite"' in page.text
    assert "<script>" not in page.text and "style=" not in page.text


def test_the_list_pages_with_next_and_first_page_links(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "admin") as b:
        first = b.get("/console/documents")
        assert 'id="page-first"' not in first.text
        next_href = re.search(r'id="page-next" href="([^"]+)"', first.text)
        assert next_href is not None
        second = b.get(next_href.group(1).replace("&amp;", "&"))
        assert rows(second) == [docs.first, docs.archived]
        assert 'id="page-first" href="/console/documents"' in second.text
        assert 'id="page-next"' not in second.text  # the last page
        bad = b.get("/console/documents", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "cursor" in bad.text


def test_the_status_filter_and_search(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "admin") as b:
        archived = b.get("/console/documents", params={"status": "archived"})
        assert rows(archived) == [docs.archived]
        assert '<option value="archived" selected>' in archived.text
        found = b.get("/console/documents", params={"q": "zebra"})
        assert rows(found) == [docs.admins] and "Search results" in found.text
        assert 'value="zebra"' in found.text
        by_name = b.get("/console/documents", params={"q": "harbour", "status": "queued"})
        assert rows(by_name) == []  # found, but not in that status
        assert "No document matches that search." in by_name.text
        assert b.get("/console/documents", params={"status": "lost"}).status_code == 400
        assert b.get("/console/documents", params={"q": "x" * 501}).status_code == 400


def test_a_principal_sees_and_counts_its_own_documents_only(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "submitter") as b:
        page = b.get("/console/documents")
        assert count(page, "total") == 3 and count(page, "status-queued") == 2
        assert rows(page) == [docs.second, docs.first]
        assert b.get("/console/documents", params={"q": "zebra"}).text.count('<tr id="doc-') == 0
        other = b.get(f"/console/documents/{docs.admins}")
        missing = b.get("/console/documents/doc_" + "a" * 26)
        assert other.status_code == missing.status_code == 404
        assert b.get(f"/console/documents/{docs.admins}/summary").status_code == 404
        counts = b.get("/console/documents/counts").json()
        assert counts["total"] == 3 and counts["by_outcome"]["needs_review"] == 1
    rows_ = site.project.audit_records(
        lambda a: a.principal == "submitter" and a.outcome == "denied:not_owner", at_least=2
    )
    assert {a.method for a in rows_} == {"console_documents"}
    with signed_in(site, "monitoring") as b:  # no documents of its own
        page = b.get("/console/documents")
        assert count(page, "total") == 0 and rows(page) == []
        assert "No documents." in page.text


def audited_detail(client: httpx.Client, doc_id: str) -> httpx.Response:
    """The detail page once its upload's audit records are written (the audit writers flush in
    batches, a moment after the calls they record)."""
    deadline = time.monotonic() + 30  # hang guard
    while True:
        page = client.get(f"/console/documents/{doc_id}")
        if 'id="audit-table"' in page.text or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def test_the_detail_shows_fields_with_their_evidence(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "submitter") as b:
        page = audited_detail(b, docs.archived)
    assert page.status_code == 200, page.text
    text = page.text
    doc = site.project.repo.get_document(docs.archived)
    assert doc is not None
    assert f'<code id="document-sha256">{doc["sha256"]}</code>' in text
    assert 'id="document-status" class="status-archived">archived<' in text
    assert ">needs_review<" in text and 'id="document-owner">submitter<' in text
    assert f'<code id="document-correlation-id">{doc["correlation_id"]}</code>' in text
    total = docs.result.fields["total"]
    assert total.evidence is not None
    field_row = text[text.index('<tr id="field-total">') :].split("</tr>", 1)[0]
    assert f"{total.confidence * 100:.0f}%" in field_row
    assert f"<code>{total.evidence.rule}</code>" in field_row
    assert ", ".join(f"{v:g}" for v in total.evidence.bbox or ()) in field_row
    assert "Rope, 20 m" in text  # line items
    assert "<code>totals.sum</code>" in text  # findings
    assert ">received<" in text and ">archived<" in text  # history events
    assert 'id="audit-table"' in text  # the upload's audited calls, at least
    assert 'id="trace-waterfall"' in text  # the gateway's own spans of the upload, at least


def test_the_detail_escapes_what_it_shows(site: ConsoleSite) -> None:
    # The edge refuses such a name in an upload; a watched folder or a bucket may still hold one.
    doc_id = site.project.repo.record_upload(
        hashlib.sha256(b"hostile name").hexdigest(),
        owner="admin",
        filename='<img src=x onerror="alert(1)">.pdf',
        content_type="application/pdf",
        size=1,
        principal="admin",
    ).id
    with signed_in(site, "admin") as b:
        page = b.get(f"/console/documents/{doc_id}")
        listed = b.get("/console/documents")
    for r in (page, listed):
        assert "<img" not in r.text and "&lt;img" in r.text


def test_refusals(site: ConsoleSite, docs: Docs) -> None:
    with site.browser() as b:  # no session
        for path in ("/console/documents", f"/console/documents/{docs.first}"):
            r = b.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert b.get("/console/documents/counts").status_code == 303
    path = site.project.settings.path(site.project.settings.policy.file)
    policy = json.loads(path.read_text())
    policy["allow"]["submitter"].remove("gateway.console_documents")
    path.write_text(json.dumps(policy))
    with signed_in(site, "submitter") as b:  # signed in, without the view
        for path in ("/console/documents", f"/console/documents/{docs.first}"):
            r = b.get(path)
            assert r.status_code == 403 and "Correlation ID" in r.text
    with signed_in(site, "admin") as b:
        assert b.get("/console/documents/not-an-id").status_code == 400
        wrong = b.post("/console/documents", data={"csrf_token": "x"})
        assert wrong.status_code == 403 and "csrf_failed" in wrong.text
        token = csrf_of(b.get("/console/documents"))
        # The view changes nothing: no unsafe method is served, whatever the token.
        assert b.post("/console/documents", data={"csrf_token": token}).status_code == 405


def test_the_page_script_is_served_from_the_gateway(site: ConsoleSite) -> None:
    with site.browser() as b:
        script = b.get("/static/documents.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert '"bastion.v1"' in script.text and "innerHTML" not in script.text


def test_the_summary_is_a_list_row(site: ConsoleSite, docs: Docs) -> None:
    with signed_in(site, "admin") as b:
        summary = b.get(f"/console/documents/{docs.archived}/summary").json()
    assert summary["id"] == docs.archived and summary["owner"] == "submitter"
    assert summary["status"] == "archived" and summary["outcome"] == "needs_review"
    assert summary["filename"] == "harbour.pdf" and summary["uploaded"].endswith("UTC")


def spans_and_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spans = [
        {"name": "POST /api/documents", "service": "gateway", "start": 100.0,
         "duration_ms": 40.0, "status": "ok", "depth": 0},
        {"name": "process_document", "service": "orchestrator", "start": 100.01,
         "duration_ms": 25.0, "status": "error", "depth": 1},
    ]  # fmt: skip
    audit = [
        {"ts": 100.0, "agent": "gateway", "principal": "submitter", "method": "upload_document",
         "outcome": "ok", "status": 202, "latency_ms": 12.5},
    ]  # fmt: skip
    return spans, audit


def test_the_audit_path_and_the_trace_from_their_sources(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans, audit = spans_and_rows()
    asked: list[str] = []

    async def audit_path(correlation_id: str) -> list[dict[str, Any]]:
        asked.append(correlation_id)
        return audit

    async def trace(correlation_id: str) -> list[dict[str, Any]]:
        asked.append(correlation_id)
        return spans

    site = wired_site(request, monkeypatch, audit_path=audit_path, trace=trace)
    doc_id = upload(site, "admin", pdf_bytes("traced"), "t.pdf")
    with signed_in(site, "admin") as b:
        page = b.get(f"/console/documents/{doc_id}")
    assert page.status_code == 200, page.text
    doc = site.project.repo.get_document(doc_id)
    assert doc is not None and asked == [doc["correlation_id"]] * 2
    text = page.text
    audit_table = text[text.index('id="audit-table"') :].split("</table>", 1)[0]
    assert "<td>upload_document</td>" in audit_table and "<td>12.5</td>" in audit_table
    assert "1970-01-01 00:01:40 UTC" in audit_table
    svg = text[text.index('<svg id="trace-waterfall"') :].split("</svg>", 1)[0]
    assert "style" not in svg and "<script" not in svg
    assert svg.count("<rect ") == 2 and 'class="bar error"' in svg
    assert '<rect x="320.0" y="4.0" width="680.0"' in svg  # the root span spans the chart
    trace_table = text[text.index('id="trace-table"') :].split("</table>", 1)[0]
    assert '<th scope="row">process_document</th>' in trace_table
    assert "<td>10.0</td>" in trace_table  # starts 10 ms after the root


def test_a_failing_source_leaves_the_rest_of_the_page(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(_correlation_id: str) -> list[dict[str, Any]]:
        raise ConnectionError("tracing backend at 10.0.0.9 refused")

    site = wired_site(request, monkeypatch, trace=down)
    doc_id = upload(site, "admin", pdf_bytes("untraced"), "u.pdf")
    with signed_in(site, "admin") as b:
        page = audited_detail(b, doc_id)
    assert page.status_code == 200
    assert "The trace could not be read just now." in page.text
    assert "10.0.0.9" not in page.text
    assert 'id="audit-table"' in page.text  # the audit path still shows
