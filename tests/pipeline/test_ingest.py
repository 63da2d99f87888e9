"""The ingest service: checks, object store, archive record (through a real archivist) and queue
message, on both databases; deletion through the archivist keeps a tombstone and the bytes
another document still needs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.core.context import correlation_id_var
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected, safe_filename
from bastion.pipeline.model import ExtractionResult, ValidationResult, is_document_id
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, INVALID_PARAMS
from bastion.runtime import RpcCallError
from tests.pipeline.hostile import normal_pdf, png_renamed, zip_with_pdf_header
from tests.web.conftest import Project, gateway_ingest, project_with_archivist

LIMIT = 64 * 1024


def _limit(settings: Settings) -> None:
    settings.pipeline.max_upload_bytes = LIMIT


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Iterator[Project]:
    with project_with_archivist(tmp_path, db_url, _limit) as project:
        yield project


@pytest.fixture
def repo(project: Project) -> ArchiveRepository:
    return project.repo


@pytest.fixture
async def ingest(project: Project) -> AsyncIterator[Ingest]:
    async with gateway_ingest(project) as service:
        yield service


async def submit(
    ingest: Ingest, data: bytes, name: str = "a.pdf", cid: str = "corr-0001"
) -> IngestResult:
    return await ingest.ingest(data, name, "submitter", cid)


async def delete(ingest: Ingest, document_id: str, by: str, cid: str, owner: str | None) -> str:
    """`archivist.delete_document` as the gateway calls it: "deleted", or the refusal's reason
    ("not_found" or "not_owner")."""
    token = correlation_id_var.set(cid)
    try:
        params = {"document_id": document_id, "owner": owner, "deleted_by": by}
        await ingest.archive.client.call("delete_document", params)
    except RpcCallError as exc:
        if exc.code != DOCUMENT_NOT_FOUND:
            raise
        data = exc.data if isinstance(exc.data, dict) else {}
        return str(data.get("reason", "not_found"))
    finally:
        correlation_id_var.reset(token)
    return "deleted"


async def test_new_document_is_stored_recorded_and_queued(
    ingest: Ingest, repo: ArchiveRepository
) -> None:
    data = normal_pdf(b"new")
    result = await ingest.ingest(data, "invoice.pdf", "submitter", "corr-new-1")
    sha = hashlib.sha256(data).hexdigest()
    assert (result.sha256, result.status, result.created, result.outcome) == (
        sha,
        "queued",
        True,
        None,
    )
    assert is_document_id(result.id) and result.id != sha
    assert ingest.store.get(sha) == data
    doc = repo.get_document(result.id)
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


async def test_identical_bytes_are_one_document_per_owner_with_its_current_status(
    ingest: Ingest,
    repo: ArchiveRepository,
) -> None:
    data = normal_pdf(b"twice")
    first = await ingest.ingest(data, "a.pdf", "submitter", "corr-a-0001")
    again = await ingest.ingest(data, "b.pdf", "submitter", "corr-b-0001")
    assert (again.id, again.status, again.created, again.outcome) == (
        first.id,
        "queued",
        False,
        None,
    )
    assert ingest.queue.depth() == 1
    # Another owner's upload of the same bytes is its own document, queued on its own.
    other = await ingest.ingest(data, "b.pdf", "other", "corr-b-0002")
    assert other.created and other.id != first.id and other.sha256 == first.sha256
    assert ingest.queue.depth() == 2
    # An owner named by the ingesting service (the watched folder's `pipeline.watch_owner`).
    on_behalf = await ingest.ingest(
        data, "c.pdf", "gateway:watch", "corr-b-0003", owner="submitter"
    )
    assert (on_behalf.id, on_behalf.created) == (first.id, False)

    result = ExtractionResult(document_type="invoice", confidence=0.9)
    repo.archive(
        first.id,
        result,
        ValidationResult(outcome="needs_review"),
        correlation_id=None,
        principal="orchestrator",
    )
    later = await ingest.ingest(data, "c.pdf", "submitter", "corr-c-0001")
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
async def test_rejected_documents_leave_no_trace(
    ingest: Ingest, repo: ArchiveRepository, data: bytes, status: int, reason: str
) -> None:
    with pytest.raises(UploadRejected) as info:
        await submit(ingest, data)
    assert (info.value.http_status, info.value.reason) == (status, reason)
    assert info.value.message
    sha = hashlib.sha256(data).hexdigest()
    assert not ingest.store.exists(sha)
    assert repo.blob_refcount(sha) == 0
    assert repo.list_documents(include_deleted=True) == ([], None)
    assert ingest.queue.depth() == 0


async def test_pdf_marker_within_the_first_kilobyte_and_exactly_at_the_limit(
    ingest: Ingest,
) -> None:
    assert (await submit(ingest, b"\xef\xbb\xbf junk \n%PDF-1.4\n")).created
    # Sniffing only admits PDF-looking files; the extractor's preflight refuses polyglots.
    assert (await submit(ingest, zip_with_pdf_header())).created
    exact = b"%PDF-1.7\n" + b"0" * (LIMIT - 9)
    assert len(exact) == LIMIT and (await submit(ingest, exact)).created


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


async def test_delete_removes_bytes_and_data_and_keeps_a_tombstone(
    ingest: Ingest, repo: ArchiveRepository
) -> None:
    data = normal_pdf(b"delete me")
    first = await ingest.ingest(data, "a.pdf", "submitter", "corr-del-0001")
    doc_id, sha = first.id, first.sha256
    assert await delete(ingest, doc_id, "admin", "corr-del-0002", None) == "deleted"
    assert not ingest.store.exists(sha)
    tomb = repo.get_document(doc_id)
    assert tomb is not None and tomb["deleted_at"] is not None
    deleted = [h for h in tomb["history"] if h["event"] == "deleted"]
    assert deleted[0]["principal"] == "admin" and deleted[0]["correlation_id"] == "corr-del-0002"
    assert await delete(ingest, doc_id, "admin", "corr-del-0003", None) == "not_found"
    with pytest.raises(RpcCallError) as refused:
        await delete(ingest, "../" + doc_id, "admin", "corr-del-0004", None)
    assert refused.value.code == INVALID_PARAMS

    # Uploading the same bytes again is a new document, and it is processed again.
    again = await ingest.ingest(data, "a.pdf", "submitter", "corr-del-0005")
    assert again.created and again.id != doc_id
    assert ingest.store.exists(sha) and ingest.queue.depth() == 2


async def test_bytes_stay_while_another_owner_s_document_needs_them(
    ingest: Ingest, repo: ArchiveRepository
) -> None:
    data = normal_pdf(b"shared bytes")
    mine = await ingest.ingest(data, "a.pdf", "alice", "corr-share-01")
    theirs = await ingest.ingest(data, "a.pdf", "bob", "corr-share-02")
    assert repo.blob_refcount(mine.sha256) == 2
    assert await delete(ingest, mine.id, "bob", "corr-share-03", "bob") == "not_owner"
    assert await delete(ingest, mine.id, "alice", "corr-share-04", "alice") == "deleted"
    assert ingest.store.get(theirs.sha256) == data  # Bob's document still has its bytes
    assert await delete(ingest, theirs.id, "admin", "corr-share-05", None) == "deleted"
    assert not ingest.store.exists(theirs.sha256)
    assert repo.blob_refcount(theirs.sha256) == 0


async def test_bytes_are_stored_only_once_counted(ingest: Ingest, repo: ArchiveRepository) -> None:
    """The put follows the record: a delete of the last other document with these bytes
    (which removes them inside its transaction) either sees this upload's count and keeps
    them, or ran before and the put stores them again."""
    counts_at_put: list[int] = []
    store_put = ingest.store.put

    def put(data: bytes, *, sha256: str | None = None) -> str:
        counts_at_put.append(repo.blob_refcount(hashlib.sha256(data).hexdigest()))
        return store_put(data, sha256=sha256)

    ingest.store.put = put  # type: ignore[method-assign]
    data = normal_pdf(b"counted first")
    first = await ingest.ingest(data, "a.pdf", "alice", "corr-count-01")
    await ingest.ingest(data, "a.pdf", "bob", "corr-count-02")
    assert counts_at_put == [1, 2]
    assert await delete(ingest, first.id, "alice", "corr-count-03", None) == "deleted"
    ingest.store.delete(first.sha256)  # lost bytes (an operator's mistake, a crash) ...
    await ingest.ingest(data, "a.pdf", "bob", "corr-count-04")
    assert ingest.store.get(first.sha256) == data  # ... come back with the next upload
