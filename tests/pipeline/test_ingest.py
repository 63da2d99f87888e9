"""The ingest service: checks, object store, archive record and queue message, on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected, safe_filename
from bastion.pipeline.model import ExtractionResult, ValidationResult, is_document_id
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
    assert (result.sha256, result.status, result.created, result.outcome) == (
        sha,
        "queued",
        True,
        None,
    )
    assert is_document_id(result.id) and result.id != sha
    assert ingest.store.get(sha) == data
    doc = ingest.repo.get_document(result.id)
    assert doc is not None
    assert (doc["status"], doc["uploaded_by"], doc["owner"], doc["filename"]) == (
        "queued",
        "submitter",
        "submitter",
        "invoice.pdf",
    )
    (message,) = ingest.queue.receive(10)
    assert message.body == {
        "document_id": result.id,
        "correlation_id": "corr-new-1",
        "filename": "invoice.pdf",
    }


def test_identical_bytes_are_one_document_per_owner_with_its_current_status(
    ingest: Ingest,
) -> None:
    data = normal_pdf(b"twice")
    first = ingest.ingest(data, "a.pdf", "submitter", "corr-a-0001")
    again = ingest.ingest(data, "b.pdf", "submitter", "corr-b-0001")
    assert (again.id, again.status, again.created, again.outcome) == (
        first.id,
        "queued",
        False,
        None,
    )
    assert ingest.queue.depth() == 1
    # Another owner's upload of the same bytes is its own document, queued on its own.
    other = ingest.ingest(data, "b.pdf", "other", "corr-b-0002")
    assert other.created and other.id != first.id and other.sha256 == first.sha256
    assert ingest.queue.depth() == 2
    # An owner named by the ingesting service (the watched folder's `pipeline.watch_owner`).
    on_behalf = ingest.ingest(data, "c.pdf", "gateway:watch", "corr-b-0003", owner="submitter")
    assert (on_behalf.id, on_behalf.created) == (first.id, False)

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
    assert ingest.queue.depth() == 2


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
    assert ingest.repo.blob_refcount(sha) == 0
    assert ingest.repo.list_documents(include_deleted=True) == ([], None)
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
    first = ingest.ingest(data, "a.pdf", "submitter", "corr-del-0001")
    doc_id, sha = first.id, first.sha256
    assert ingest.delete(doc_id, "admin", "corr-del-0002") == "deleted"
    assert not ingest.store.exists(sha)
    tomb = ingest.repo.get_document(doc_id)
    assert tomb is not None and tomb["deleted_at"] is not None
    deleted = [h for h in tomb["history"] if h["event"] == "deleted"]
    assert deleted[0]["principal"] == "admin" and deleted[0]["correlation_id"] == "corr-del-0002"
    assert ingest.delete(doc_id, "admin", "corr-del-0003") == "not_found"
    with pytest.raises(ValueError):
        ingest.delete("../" + doc_id, "admin", "corr-del-0004")

    # Uploading the same bytes again is a new document, and it is processed again.
    again = ingest.ingest(data, "a.pdf", "submitter", "corr-del-0005")
    assert again.created and again.id != doc_id
    assert ingest.store.exists(sha) and ingest.queue.depth() == 2


def test_bytes_stay_while_another_owner_s_document_needs_them(ingest: Ingest) -> None:
    data = normal_pdf(b"shared bytes")
    mine = ingest.ingest(data, "a.pdf", "alice", "corr-share-01")
    theirs = ingest.ingest(data, "a.pdf", "bob", "corr-share-02")
    assert ingest.repo.blob_refcount(mine.sha256) == 2
    assert ingest.delete(mine.id, "bob", "corr-share-03", owner="bob") == "not_owner"
    assert ingest.delete(mine.id, "alice", "corr-share-04", owner="alice") == "deleted"
    assert ingest.store.get(theirs.sha256) == data  # Bob's document still has its bytes
    assert ingest.delete(theirs.id, "admin", "corr-share-05") == "deleted"
    assert not ingest.store.exists(theirs.sha256)
    assert ingest.repo.blob_refcount(theirs.sha256) == 0


def test_bytes_are_stored_only_once_counted(ingest: Ingest) -> None:
    """The put follows the record: a delete of the last other document with these bytes
    (which removes them inside its transaction) either sees this upload's count and keeps
    them, or ran before and the put stores them again."""
    counts_at_put: list[int] = []
    store_put = ingest.store.put

    def put(data: bytes, *, sha256: str | None = None) -> str:
        counts_at_put.append(ingest.repo.blob_refcount(hashlib.sha256(data).hexdigest()))
        return store_put(data, sha256=sha256)

    ingest.store.put = put  # type: ignore[method-assign]
    data = normal_pdf(b"counted first")
    first = ingest.ingest(data, "a.pdf", "alice", "corr-count-01")
    ingest.ingest(data, "a.pdf", "bob", "corr-count-02")
    assert counts_at_put == [1, 2]
    assert ingest.delete(first.id, "alice", "corr-count-03") == "deleted"
    ingest.store.delete(first.sha256)  # lost bytes (an operator's mistake, a crash) ...
    ingest.ingest(data, "a.pdf", "bob", "corr-count-04")
    assert ingest.store.get(first.sha256) == data  # ... come back with the next upload
