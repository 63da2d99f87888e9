"""The ingest service: checks, object store, archive record and queue message, on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected, safe_filename
from bastion.pipeline.model import ExtractionResult, ValidationResult
from tests.pipeline.hostile import normal_pdf, png_renamed, zip_with_pdf_header

LIMIT = 64 * 1024


@pytest.fixture
def ingest(tmp_path: Path, db_url: str) -> Iterator[Ingest]:
    settings = Settings(base_dir=tmp_path)
    settings.database.url = db_url
    settings.pipeline.max_upload_bytes = LIMIT
    service = Ingest(settings)
    yield service
    service.close()


def submit(
    ingest: Ingest, data: bytes, name: str = "a.pdf", cid: str = "corr-0001"
) -> IngestResult:
    return ingest.ingest(data, name, "submitter", cid)


def test_new_document_is_stored_recorded_and_queued(ingest: Ingest) -> None:
    data = normal_pdf(b"new")
    result = ingest.ingest(data, "invoice.pdf", "submitter", "corr-new-1")
    sha = hashlib.sha256(data).hexdigest()
    assert (result.id, result.status, result.created, result.outcome) == (
        sha,
        "queued",
        True,
        None,
    )
    assert ingest.store.get(sha) == data
    doc = ingest.repo.get_document(sha)
    assert doc is not None
    assert (doc["status"], doc["uploaded_by"], doc["filename"]) == (
        "queued",
        "submitter",
        "invoice.pdf",
    )
    (message,) = ingest.queue.receive(10)
    assert message.body == {
        "document_id": sha,
        "correlation_id": "corr-new-1",
        "filename": "invoice.pdf",
    }


def test_identical_bytes_are_one_document_with_its_current_status(ingest: Ingest) -> None:
    data = normal_pdf(b"twice")
    first = ingest.ingest(data, "a.pdf", "submitter", "corr-a-0001")
    again = ingest.ingest(data, "b.pdf", "other", "corr-b-0001")
    assert (again.id, again.status, again.created, again.outcome) == (
        first.id,
        "queued",
        False,
        None,
    )
    assert ingest.queue.depth() == 1

    result = ExtractionResult(document_type="invoice", confidence=0.9)
    ingest.repo.archive(
        first.id,
        result,
        ValidationResult(outcome="needs_review"),
        correlation_id=None,
        principal="orchestrator",
    )
    later = ingest.ingest(data, "c.pdf", "submitter", "corr-c-0001")
    assert (later.status, later.outcome, later.created) == ("archived", "needs_review", False)
    assert ingest.queue.depth() == 1


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 400, "empty"),
        (png_renamed(), 415, "not_pdf"),
        (b"Invoice INV-1 Total 100.00 EUR", 415, "not_pdf"),
        (b" " * 1024 + b"%PDF-1.7\n", 415, "not_pdf"),  # the marker must come early
        (b"%PDF-1.7\n" + b"0" * LIMIT, 413, "too_large"),
    ],
)
def test_rejected_documents_leave_no_trace(
    ingest: Ingest, data: bytes, status: int, reason: str
) -> None:
    with pytest.raises(UploadRejected) as info:
        submit(ingest, data)
    assert (info.value.http_status, info.value.reason) == (status, reason)
    assert info.value.message
    sha = hashlib.sha256(data).hexdigest()
    assert not ingest.store.exists(sha)
    assert ingest.repo.get_document(sha) is None
    assert ingest.queue.depth() == 0


def test_pdf_marker_within_the_first_kilobyte_and_exactly_at_the_limit(ingest: Ingest) -> None:
    assert submit(ingest, b"\xef\xbb\xbf junk \n%PDF-1.4\n").created
    # Sniffing only admits PDF-looking files; the extractor's preflight refuses polyglots.
    assert submit(ingest, zip_with_pdf_header()).created
    exact = b"%PDF-1.7\n" + b"0" * (LIMIT - 9)
    assert len(exact) == LIMIT and submit(ingest, exact).created


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\me\\scan.pdf", "scan.pdf"),
        ("bad\r\nname\x00.pdf", "badname.pdf"),
        ("", "document.pdf"),
        ("x" * 400 + ".pdf", "x" * 255),
    ],
)
def test_client_file_names_are_made_safe(given: str, stored: str) -> None:
    assert safe_filename(given) == stored


def test_delete_removes_bytes_and_data_and_keeps_a_tombstone(ingest: Ingest) -> None:
    data = normal_pdf(b"delete me")
    doc_id = ingest.ingest(data, "a.pdf", "submitter", "corr-del-0001").id
    assert ingest.delete(doc_id, "admin", "corr-del-0002") is True
    assert not ingest.store.exists(doc_id)
    tomb = ingest.repo.get_document(doc_id)
    assert tomb is not None and tomb["deleted_at"] is not None
    deleted = [h for h in tomb["history"] if h["event"] == "deleted"]
    assert deleted[0]["principal"] == "admin" and deleted[0]["correlation_id"] == "corr-del-0002"
    assert ingest.delete(doc_id, "admin", "corr-del-0003") is False
    with pytest.raises(ValueError):
        ingest.delete("../" + doc_id, "admin", "corr-del-0004")

    # Uploading the same bytes again brings the document back, and it is processed again.
    again = ingest.ingest(data, "a.pdf", "submitter", "corr-del-0005")
    assert (again.id, again.created) == (doc_id, True)
    assert ingest.store.exists(doc_id) and ingest.queue.depth() == 2
