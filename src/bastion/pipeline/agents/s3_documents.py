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

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bastion.config import Settings
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected
from bastion.pipeline.s3_ingest import S3Ref, S3Source, ingest_s3_object, mark_document
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, DOCUMENT_REJECTED, RpcError

# Statuses after which a second delivery of the same object has nothing left to do.
_SETTLED = ("archived", "failed")

Process = Callable[[str, str], Awaitable[dict[str, Any]]]


class S3Documents:
    """Ingests S3 objects as their callers' documents and has them processed (see above)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ingest: Ingest | None = None
        self._source: S3Source | None = None

    def _admit(self, ref: S3Ref, principal: str, correlation_id: str) -> IngestResult:
        if self._ingest is None or self._source is None:  # opened on the first such call
            self._ingest, self._source = Ingest(self.settings), S3Source(self.settings)
        return ingest_s3_object(
            self._ingest, self._source, ref, principal, correlation_id, enqueue=False
        )

    def _mark(self, document_id: str, status: str, principal: str, cid: str, **kw: Any) -> None:
        assert self._ingest is not None
        mark_document(
            self._ingest, document_id, status, principal=principal, correlation_id=cid, **kw
        )

    async def process(
        self, ref: S3Ref, principal: str, correlation_id: str, run: Process
    ) -> dict[str, Any]:
        """Ingest `ref` as `principal`'s document and `run(document_id, sha256)` it."""
        try:
            doc = await asyncio.to_thread(self._admit, ref, principal, correlation_id)
        except UploadRejected as exc:
            raise RpcError(
                DOCUMENT_REJECTED, data={"reason": exc.reason, "detail": exc.message}
            ) from None
        if not doc.created and doc.status in _SETTLED:
            return {"document_id": doc.id, "status": doc.status, "outcome": doc.outcome,
                    "duplicate": True}  # fmt: skip
        await asyncio.to_thread(
            self._mark, doc.id, "processing", principal, correlation_id, detail=f"s3://{ref.bucket}"
        )
        try:
            return await run(doc.id, doc.sha256)
        except RpcError as error:
            if error.code in (DOCUMENT_REJECTED, DOCUMENT_NOT_FOUND):
                data = error.data if isinstance(error.data, dict) else {}
                reason = str(data.get("reason") or "not_found")
                detail = f"{reason}: {data.get('detail', '')}"[:500]
                await asyncio.to_thread(
                    self._mark, doc.id, "failed", principal, correlation_id,
                    reason=reason, detail=detail,
                )  # fmt: skip
            raise

    async def aclose(self) -> None:
        if self._ingest is not None:
            self._ingest.close()
