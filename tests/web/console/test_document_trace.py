"""A document's trace in its detail page: the spans of its upload, gathered from the gateway and
the archivist over their `/traces` routes, laid out as a tree."""

from __future__ import annotations

import re

import httpx

from bastion.web.console.trace_source import as_tree
from tests.web.console.conftest import ConsoleSite

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_the_detail_shows_the_upload_across_gateway_and_archivist(site: ConsoleSite) -> None:
    r = httpx.post(
        site.url + "/api/documents",
        headers={"X-API-Key": site.project.keys["admin"]},
        files={"file": ("t.pdf", b"%PDF-1.4\n%trace\n", "application/pdf")},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    correlation_id = r.headers["x-correlation-id"]
    assert HEX32.match(correlation_id)  # a new correlation id is the trace id
    with site.browser() as b:
        site.sign_in(b)
        page = b.get(f"/console/documents/{r.json()['id']}")
    assert page.status_code == 200
    trace = page.text[page.text.index('id="document-trace"') :]
    assert 'id="trace-waterfall"' in trace and "trace-unavailable" not in trace
    assert "upload_document" in trace  # the gateway's span
    assert "record_upload" in trace  # the archivist's span, reached over /traces


def test_spans_are_ordered_as_a_tree() -> None:
    spans = [
        {"span_id": "a", "parent_span_id": None, "start": 1.0},
        {"span_id": "b", "parent_span_id": "a", "start": 1.1},
        {"span_id": "c", "parent_span_id": "zz", "start": 1.2},  # parent elsewhere: a root
        {"span_id": "d", "parent_span_id": "b", "start": 1.3},
        {"span_id": "e", "parent_span_id": "a", "start": 1.4},
    ]
    ordered = [(s["span_id"], s["depth"]) for s in as_tree(spans)]
    assert ordered == [("a", 0), ("b", 1), ("d", 2), ("e", 1), ("c", 0)]
