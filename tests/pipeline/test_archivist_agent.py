"""The Archivist agent over real HTTP, on SQLite and PostgreSQL: methods, errors and attacks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.pipeline.model import ExtractedField, ExtractionResult, Finding, ValidationResult
from tests.web.conftest import Project, make_project, rpc, serve_archivist

RESULT = ExtractionResult(
    document_type="invoice",
    confidence=0.95,
    fields={
        "invoice_number": ExtractedField(value="INV-7", confidence=0.9, page=1),
        "issuer": ExtractedField(value="Zebra Logistics GmbH", confidence=0.9, page=1),
        "total": ExtractedField(value=119.0, confidence=0.9, page=1),
    },
    pages=1,
    text_excerpt="Invoice from Zebra Logistics about quarterly freight",
    findings=[Finding(rule_id="guard.scanned", severity="info", message="image only page")],
)
VALIDATION = ValidationResult(
    outcome="invalid",
    findings=[Finding(rule_id="totals.sum", severity="error", message="sum", field="total")],
)


def sha(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def archive_params(document_id: str) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "result": RESULT.model_dump(mode="json"),
        "validation": VALIDATION.model_dump(mode="json"),
    }


class Archivist:
    def __init__(self, project: Project, url: str) -> None:
        self.project = project
        self.url = url

    def call(self, method: str, params: Any, principal: str = "admin", **kw: Any) -> Any:
        r = self.raw(method, params, principal, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "result" in body, body
        body["result"].pop("metadata", None)  # the caller's quota, added by the server
        return body["result"]

    def raw(self, method: str, params: Any, principal: str = "admin", **kw: Any) -> httpx.Response:
        return rpc(self.url, method, params, self.project.keys[principal], **kw)

    def error(self, method: str, params: Any, principal: str = "admin") -> dict[str, Any]:
        r = self.raw(method, params, principal)
        assert r.status_code == 200, r.text
        err: dict[str, Any] = r.json()["error"]
        return err

    def upload(self, sha256: str, filename: str = "invoice.pdf", owner: str = "submitter") -> str:
        """The id of `owner`'s document for the bytes `sha256`."""
        return self.project.repo.record_upload(
            sha256,
            owner=owner,
            filename=filename,
            content_type="application/pdf",
            size=10,
            principal=owner,
            correlation_id="corr-upload",
        ).id

    def archive(self, doc_id: str, principal: str = "orchestrator") -> Any:
        params = archive_params(doc_id)
        return self.call("archive", params, principal, headers={"X-Correlation-ID": "corr-arch-1"})


def serve(tmp_path: Path, url: str) -> Iterator[Archivist]:
    project = make_project(tmp_path, url)
    with serve_archivist(project) as srv:
        yield Archivist(project, srv.url)


@pytest.fixture
def archivist(tmp_path: Path, db_url: str) -> Iterator[Archivist]:
    """On SQLite and PostgreSQL."""
    yield from serve(tmp_path, db_url)


@pytest.fixture
def sqlite_archivist(tmp_path: Path, sqlite_url: str) -> Iterator[Archivist]:
    """For checks made before the database is touched (params), one backend is enough."""
    yield from serve(tmp_path, sqlite_url)


def test_archive_stores_everything_and_is_idempotent(archivist: Archivist) -> None:
    doc_id = archivist.upload(sha(1))
    first = archivist.archive(doc_id)
    assert first == {"document_id": doc_id, "reprocessed": False, "outcome": "invalid"}

    doc = archivist.call("get_document", {"document_id": doc_id, "owner": None}, "gateway")
    assert doc["status"] == "archived" and doc["outcome"] == "invalid"
    assert doc["fields"]["invoice_number"]["value"] == "INV-7"
    assert {(f["source"], f["rule_id"]) for f in doc["findings"]} == {
        ("guardrail", "guard.scanned"),
        ("validation", "totals.sum"),
    }
    archived = [h for h in doc["history"] if h["event"] == "archived"]
    assert archived[0]["principal"] == "orchestrator"
    assert archived[0]["correlation_id"] == "corr-arch-1"

    assert archivist.archive(doc_id)["reprocessed"] is True
    doc = archivist.call("get_document", {"document_id": doc_id, "owner": None}, "gateway")
    assert len(doc["findings"]) == 2  # replaced, not added
    assert "reprocessed" in [h["event"] for h in doc["history"]]


def test_search_finds_the_text_excerpt_and_invoices_are_claimed(archivist: Archivist) -> None:
    doc_id = archivist.upload(sha(2))
    archivist.archive(doc_id)
    found = archivist.call("search", {"query": "quarterly freight", "owner": None}, "gateway")
    assert [d["id"] for d in found["results"]] == [doc_id]
    nothing = {"query": "nothing-like-this", "owner": None}
    assert archivist.call("search", nothing, "gateway") == {"results": []}

    key = {"issuer": "ZEBRA logistics gmbh", "invoice_number": "inv 7", "eligible": True}
    claim = {**key, "document_id": doc_id, "total": "119", "currency": "EUR"}
    free = {"duplicate": False, "other_id": None, "same_amount": True}
    assert archivist.call("claim_invoice", claim, "validator") == free
    assert archivist.call("claim_invoice", claim, "validator") == free  # the holder again
    copy = archivist.upload(sha("copy"))
    answer = archivist.call("claim_invoice", {**claim, "document_id": copy}, "validator")
    assert answer == {"duplicate": True, "other_id": doc_id, "same_amount": True}
    # Another owner's copy is a duplicate too; the holder is named only to an owner the policy
    # lets read every owner's documents (admin, through `*`).
    for owner, named in (("worker", None), ("admin", doc_id)):
        theirs = {**claim, "document_id": archivist.upload(sha(f"copy-{owner}"), owner=owner)}
        answer = archivist.call("claim_invoice", theirs, "validator")
        assert answer == {"duplicate": True, "other_id": named, "same_amount": True}
    altered = {**claim, "document_id": copy, "total": "1190"}
    assert archivist.call("claim_invoice", altered, "validator")["same_amount"] is False
    # Claims are for documents in the archive only.
    missing = {**claim, "document_id": sha("never uploaded")}
    assert archivist.error("claim_invoice", missing, "validator")["code"] == -32051


def test_unknown_and_deleted_documents_are_not_found(archivist: Archivist) -> None:
    unknown = sha("unknown")
    missing = {"document_id": unknown, "owner": None}
    assert archivist.error("get_document", missing)["code"] == -32051
    params = archive_params(unknown)
    assert archivist.error("archive", params, "orchestrator")["code"] == -32051

    doc_id = archivist.upload(sha(3))
    archivist.project.repo.delete_document(doc_id, principal="admin", correlation_id=None)
    err = archivist.error("get_document", {"document_id": doc_id, "owner": None}, "gateway")
    assert err == {"code": -32051, "message": "Document not found", "data": {"document_id": doc_id}}
    assert archivist.error("archive", archive_params(doc_id), "orchestrator")["code"] == -32051


def test_list_documents_pages_with_a_cursor(archivist: Archivist) -> None:
    ids = [archivist.upload(sha(f"page-{i}")) for i in range(5)]
    archivist.archive(ids[0])

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "owner": None}
        params |= {"cursor": cursor} if cursor else {}
        page = archivist.call("list_documents", params, "gateway")
        assert len(page["documents"]) <= 2
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)

    archived = archivist.call("list_documents", {"status": "archived", "owner": None}, "gateway")
    assert [d["id"] for d in archived["documents"]] == [ids[0]]
    assert archived["next_cursor"] is None


BAD_LIST_PARAMS = [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"status": "lost"}, "status"),
    ({"unexpected": 1}, "unexpected"),
]


def test_bad_list_params_are_invalid_params(sqlite_archivist: Archivist) -> None:
    for params, field in BAD_LIST_PARAMS:
        err = sqlite_archivist.error("list_documents", {"owner": None, **params}, "gateway")
        assert err["code"] == -32602
        assert [p["field"] for p in err["data"]] == [field]
    bad = {"cursor": "not-a-cursor", "owner": None}
    err = sqlite_archivist.error("list_documents", bad, "gateway")
    assert "next_cursor" in err["data"][0]["problem"]  # says what to do


def test_get_status_counts_documents(archivist: Archivist) -> None:
    doc_id = archivist.upload(sha(4))
    status = archivist.call("get_status", None)
    assert status["agent"] == "archivist" and status["status"] == "ok"
    assert status["documents"]["queued"] == 1 and status["documents"]["archived"] == 0
    archivist.archive(doc_id)
    archivist.archive(doc_id)
    archivist.error("archive", archive_params(sha("nope")), "orchestrator")
    status = archivist.call("get_status", None)
    assert status["documents"]["archived"] == 1
    assert status["archive_calls"] == {"archived": 1, "reprocessed": 1, "not_found": 1}


# -- attacks ----------------------------------------------------------------------------------


def test_only_the_orchestrator_may_archive(archivist: Archivist) -> None:
    doc_id = archivist.upload(sha(5))
    params = archive_params(doc_id)
    for principal in ("extractor", "gateway", "submitter", "validator"):
        cid = f"attack-archive-{principal}"
        r = archivist.raw("archive", params, principal, headers={"X-Correlation-ID": cid})
        assert r.status_code == 403
        assert r.json()["error"] == {"code": -32041, "message": "Forbidden"}
        rows = archivist.project.audit_records(lambda a, cid=cid: a.correlation_id == cid)
        assert [(a.outcome, a.principal, a.agent, a.method) for a in rows] == [
            ("denied:authorize", principal, "archivist", "archive")
        ]
    doc = archivist.project.repo.get_document(doc_id)
    assert doc is not None and doc["status"] == "queued"


MALFORMED_IDS = [
    "",
    "abc",
    sha(6).upper(),
    sha(6) + "0",
    "../" + sha(6)[3:],
    sha(6)[:-1] + "g",
    42,
    "doc_" + "A" * 26,
    "doc_" + "a" * 25,
    "doc_" + "a" * 25 + "/",
]


def test_malformed_document_ids_are_invalid_params(sqlite_archivist: Archivist) -> None:
    for document_id in MALFORMED_IDS:
        params = {"document_id": document_id, "owner": None}
        err = sqlite_archivist.error("get_document", params, "gateway")
        assert err["code"] == -32602
        assert err["data"][0]["field"] == "document_id"


def test_extra_fields_and_bad_results_are_invalid_params(sqlite_archivist: Archivist) -> None:
    doc_id = sqlite_archivist.upload(sha(7))
    good = archive_params(doc_id)
    extra = {**good, "principal": "admin"}
    assert sqlite_archivist.error("archive", extra, "orchestrator")["code"] == -32602
    bad_result = {**good, "result": {**good["result"], "confidence": 7}}
    assert sqlite_archivist.error("archive", bad_result, "orchestrator")["code"] == -32602
    bad_outcome = {**good, "validation": {"outcome": "fine"}}
    assert sqlite_archivist.error("archive", bad_outcome, "orchestrator")["code"] == -32602
    long_query = {"query": "x" * 501, "owner": None}
    assert sqlite_archivist.error("search", long_query, "gateway")["code"] == -32602
    empty = {"query": "", "owner": None}
    assert sqlite_archivist.error("search", empty, "gateway")["code"] == -32602


def test_reads_name_whose_documents_they_may_see(archivist: Archivist) -> None:
    """`owner` is required: a principal's documents, or null for every owner's. Another
    owner's document is not found, with the reason for the gateway's audit record."""
    mine = archivist.upload(sha("scope"), owner="alice")
    theirs = archivist.upload(sha("scope"), owner="bob")
    archivist.archive(mine)
    archivist.archive(theirs)
    for method, params in (
        ("get_document", {"document_id": mine}),
        ("list_documents", {}),
        ("search", {"query": "freight"}),
    ):
        assert archivist.error(method, params, "gateway")["code"] == -32602, method
    as_bob = {"document_id": mine, "owner": "bob"}
    err = archivist.error("get_document", as_bob, "gateway")
    assert err["data"] == {"document_id": mine, "reason": "not_owner"}
    assert archivist.call("get_document", {"document_id": mine, "owner": "alice"}, "gateway")
    listed = archivist.call("list_documents", {"owner": "bob"}, "gateway")["documents"]
    assert [d["id"] for d in listed] == [theirs]
    found = archivist.call("search", {"query": "freight", "owner": "alice"}, "gateway")
    assert [d["id"] for d in found["results"]] == [mine]
    everyone = archivist.call("search", {"query": "freight", "owner": None}, "gateway")
    assert {d["id"] for d in everyone["results"]} == {mine, theirs}


def test_document_counts_by_status_and_outcome_in_the_reader_s_scope(
    archivist: Archivist,
) -> None:
    alices = [archivist.upload(sha(f"count-{n}"), owner="alice") for n in range(3)]
    bobs = archivist.upload(sha("count-bob"), owner="bob")
    archivist.archive(alices[0])  # invalid
    archivist.archive(bobs)
    archivist.project.repo.set_status(alices[1], "failed", reason="test", detail="x")
    archivist.project.repo.delete_document(
        alices[2], principal="alice", correlation_id=None, owner="alice"
    )

    alice = archivist.call("document_counts", {"owner": "alice"}, "gateway")
    assert alice == {
        "by_status": {"queued": 0, "processing": 0, "archived": 1, "failed": 1},
        "by_outcome": {"valid": 0, "invalid": 1, "needs_review": 0},
        "total": 2,  # the deleted one is not counted
    }
    everyone = archivist.call("document_counts", {"owner": None}, "gateway")
    assert everyone["total"] == 3 and everyone["by_outcome"]["invalid"] == 2
    nobody = archivist.call("document_counts", {"owner": "carol"}, "gateway")
    assert nobody["total"] == 0 and set(nobody["by_status"].values()) == {0}


def test_document_counts_is_the_gateway_s_and_names_its_scope(archivist: Archivist) -> None:
    # `owner` is required: no read is unscoped by omission.
    assert archivist.error("document_counts", {}, "gateway")["code"] == -32602
    bad = {"owner": None, "status": "queued"}
    assert archivist.error("document_counts", bad, "gateway")["code"] == -32602
    for principal in ("submitter", "orchestrator", "validator", "researcher"):
        r = archivist.raw("document_counts", {"owner": principal}, principal)
        assert r.status_code == 403, principal
