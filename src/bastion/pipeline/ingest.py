"""Ingest: how a document enters the pipeline, whoever brings it (the gateway, the watcher).

`Ingest.ingest(data, filename, principal, correlation_id, owner=principal)`:

1. size: more than `pipeline.max_upload_bytes` -> `UploadRejected(413, "too_large")`;
2. sniff: empty -> `UploadRejected(400, "empty")`; no `%PDF-` in the first 1024 bytes ->
   `UploadRejected(415, "not_pdf")` (the extractor's preflight checks the rest);
3. the document is recorded in the archive as the owner's (`queued`, a new opaque id) by the
   archivist (`archivist.record_upload`, under the ingesting process's own credential), the
   bytes go into the object store (named by their SHA-256), and, only if the record is new, a
   message `{"document_id", "correlation_id", "filename"}` goes on the queue.

The order record -> put -> send means a message never names bytes or a record that do not
exist, and bytes are stored after they are counted: a concurrent delete of another document
with the same bytes removes them only while no record counts them (the archivist counts them),
so the put that follows restores them. The same bytes from the same owner are one document: a
second upload is not queued again and gets the current status (and outcome). The same bytes
from another owner are that owner's own new document; nothing of the first one shows. If the
queue refuses the message the error propagates and the document stays `queued` without a
message until the worker's reconciler (`bastion.pipeline.reconcile`) sends it again.

Deleting a document is the archivist's (`archivist.delete_document`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from bastion.config import Settings
from bastion.core.context import correlation_id_var
from bastion.pipeline.archive_calls import ArchiveCalls
from bastion.pipeline.model import REASON_CODES
from bastion.pipeline.stores import object_store, open_pipeline_queue
from bastion.storage import ObjectStore, Queue, sha256_hex

PDF_MAGIC = b"%PDF-"
SNIFF_BYTES = 1024
PDF_CONTENT_TYPE = "application/pdf"
MAX_FILENAME_CHARS = 255
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class UploadRejected(Exception):
    """The document is refused before it enters the pipeline.

    `reason` is a code from `REASON_CODES` (`too_large` is the size limit), `http_status` the
    status an HTTP caller gets, `message` an actionable sentence for the caller.
    """

    def __init__(self, http_status: int, reason: str, message: str) -> None:
        self.http_status = http_status
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The document's id, the SHA-256 of its bytes, its status now, whether this upload created
    it, and its validation outcome once archived."""

    id: str
    sha256: str
    status: str
    created: bool
    outcome: str | None = None


def safe_filename(filename: str) -> str:
    """The last component of a client-supplied name, without control characters, clipped."""
    name = PureWindowsPath(PurePosixPath(filename).name).name
    name = _UNSAFE_NAME_CHARS.sub("", name).strip()
    return name[:MAX_FILENAME_CHARS] or "document.pdf"


def too_large(limit: int) -> UploadRejected:
    return UploadRejected(
        413,
        "too_large",
        f"the document is larger than the upload limit of {limit} bytes"
        " (pipeline.max_upload_bytes)",
    )


def check_size(size: int, limit: int) -> None:
    """UploadRejected(413, "too_large") when `size` bytes exceed `limit`."""
    if size > limit:
        raise too_large(limit)


def check_pdf(data: bytes) -> None:
    """UploadRejected unless `data` looks like a PDF (`%PDF-` within the first 1024 bytes)."""
    if not data:
        raise UploadRejected(400, "empty", "the file is empty: send the PDF's bytes")
    if PDF_MAGIC not in data[:SNIFF_BYTES]:
        raise UploadRejected(
            415, "not_pdf", f"{REASON_CODES['not_pdf']}: only PDF documents are accepted"
        )


class Ingest:
    """Puts documents into the pipeline: archive record (through the archivist), object store,
    queue message."""

    def __init__(
        self,
        settings: Settings,
        archive: ArchiveCalls,
        *,
        store: ObjectStore | None = None,
        queue: Queue | None = None,
    ) -> None:
        self.max_bytes = settings.pipeline.max_upload_bytes
        self.archive = archive
        self.store = store or object_store(settings)
        self.queue = queue or open_pipeline_queue(settings)

    def check(self, data: bytes) -> None:
        """Raise UploadRejected if `data` may not enter the pipeline."""
        check_size(len(data), self.max_bytes)
        check_pdf(data)

    async def ingest(
        self,
        data: bytes,
        filename: str,
        principal: str,
        correlation_id: str,
        *,
        owner: str | None = None,
        enqueue: bool = True,
    ) -> IngestResult:
        """Accept a document as `owner`'s (default: the uploading `principal`'s); see the
        module docstring for the steps and the errors (also `ArchiveUnavailable`).
        `enqueue=False`: no queue message (the caller processes the document itself, as
        `orchestrator.process_document {s3}` does)."""
        self.check(data)
        name = safe_filename(filename)
        sha256 = sha256_hex(data)
        token = correlation_id_var.set(correlation_id)
        try:
            record = await self.archive.record_upload(
                sha256,
                owner=owner or principal,
                uploaded_by=principal,
                filename=name,
                content_type=PDF_CONTENT_TYPE,
                size=len(data),
            )
        finally:
            correlation_id_var.reset(token)
        # Also when the record was there: bytes it lost come back.
        await asyncio.to_thread(self.store.put, data, sha256=sha256)
        if record.created and enqueue:
            message = {"document_id": record.id, "correlation_id": correlation_id, "filename": name}
            await asyncio.to_thread(self.queue.send, message)
        return IngestResult(
            id=record.id,
            sha256=sha256,
            status=record.status,
            created=record.created,
            outcome=record.outcome,
        )

    def close(self) -> None:
        self.queue.close()
