"""`orchestrator.process_document {s3: {...}}`: an S3 object ingested and processed in one call.

The caller (the AWS Lambda that receives the bucket's events, principal `lambda-s3-processor`)
names an object instead of a document. The orchestrator ingests it as the CALLER's document
(owner = the calling principal, the call's correlation ID; the upload's checks, record and
object store put) without a message on the document queue, since this call processes it now,
and then runs it through the pipeline like any document:

- the object was ingested before by the same caller and its document is `archived` or `failed`
  (a duplicate delivery): nothing is done again, the current status is answered;
- refused at ingest (`UploadRejected`: not a PDF, too large, a bucket not in
  `pipeline.s3_events_buckets`, the object gone): DocumentRejected with the reason; no document
  is recorded, as for a refused upload;
- rejected by the extractor: the document is marked `failed` with the reason, and the error is
  passed on (the caller does not retry it);
- any other failure (a peer unavailable) propagates, the document stays `processing` and the
  caller tries again; the same object is then the same document. Should the caller give up, the
  workers' reconciler finds the document stale and sends it to the document queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bastion.config import Settings
from bastion.pipeline.archive_calls import ArchiveCalls
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected
from bastion.pipeline.s3_ingest import S3Ref, S3Source, ingest_s3_object, mark_document
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, DOCUMENT_REJECTED, RpcError
from bastion.runtime import AgentClient

# Statuses after which a second delivery of the same object has nothing left to do.
_SETTLED = ("archived", "failed")

Process = Callable[[str, str], Awaitable[dict[str, Any]]]


class S3Documents:
    """Ingests S3 objects as their callers' documents and has them processed (see above);
    `archivist()` is the orchestrator's own client to the archivist, which records them."""

    def __init__(self, settings: Settings, archivist: Callable[[], AgentClient]) -> None:
        self.settings = settings
        self.archivist = archivist
        self._ingest: Ingest | None = None
        self._source: S3Source | None = None

    async def _admit(self, ref: S3Ref, principal: str, correlation_id: str) -> IngestResult:
        if self._ingest is None or self._source is None:  # opened on the first such call
            archive = ArchiveCalls(self.archivist())
            self._ingest, self._source = Ingest(self.settings, archive), S3Source(self.settings)
        return await ingest_s3_object(
            self._ingest, self._source, ref, principal, correlation_id, enqueue=False
        )

    async def _mark(self, document_id: str, status: str, cid: str, **kw: Any) -> None:
        assert self._ingest is not None
        await mark_document(self._ingest, document_id, status, correlation_id=cid, **kw)

    async def process(
        self, ref: S3Ref, principal: str, correlation_id: str, run: Process
    ) -> dict[str, Any]:
        """Ingest `ref` as `principal`'s document and `run(document_id, sha256)` it."""
        try:
            doc = await self._admit(ref, principal, correlation_id)
        except UploadRejected as exc:
            raise RpcError(
                DOCUMENT_REJECTED, data={"reason": exc.reason, "detail": exc.message}
            ) from None
        if not doc.created and doc.status in _SETTLED:
            return {"document_id": doc.id, "status": doc.status, "outcome": doc.outcome,
                    "duplicate": True}  # fmt: skip
        await self._mark(doc.id, "processing", correlation_id, detail=f"s3://{ref.bucket}")
        try:
            return await run(doc.id, doc.sha256)
        except RpcError as error:
            if error.code in (DOCUMENT_REJECTED, DOCUMENT_NOT_FOUND):
                data = error.data if isinstance(error.data, dict) else {}
                reason = str(data.get("reason") or "not_found")
                detail = f"{reason}: {data.get('detail', '')}"[:500]
                await self._mark(doc.id, "failed", correlation_id, reason=reason, detail=detail)
            raise

    async def aclose(self) -> None:
        if self._ingest is not None:
            self._ingest.close()
