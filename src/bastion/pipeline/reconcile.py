"""The reconciler: documents the queue has lost track of are put back on it, or failed.

Two ways a document can be left behind by the queue:

- **queued with no message**: the upload was recorded but sending its message failed (the
  queue was down, the process died in between);
- **processing with no message**: its message went to the dead-letter queue without the
  worker recording it (a worker that crashed on every attempt, until the queue itself moved
  the message after `max_receive_count` receives), or was lost with a worker.

Every `pipeline.reconcile_every_seconds` each worker looks at the documents that have been
`queued` or `processing` for longer than `pipeline.requeue_after_seconds`:

- a document whose message is in the DLQ is marked `failed` with the DLQ's reason;
- one whose message is nowhere (not in flight, and the queue holds no visible or delayed
  message that could be it) gets a new message and goes back to `queued`;
- any other is left alone: its message may still be waiting behind a backlog.

A document is moved only if its status has not changed since it was read (the archivist's
`move_document`), so of several workers reconciling at once one acts, and a document is never
sent twice by them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from bastion.core.context import correlation_id_var
from bastion.pipeline.archive_calls import ArchiveCalls
from bastion.pipeline.archive_types import StaleDocument
from bastion.storage import Queue

log = structlog.get_logger("bastion.reconcile")

_LIMIT = 200  # documents looked at per status and round, and DLQ entries read


@dataclass(slots=True)
class ReconcileResult:
    requeued: int = 0
    failed: int = 0


async def reconcile(archive: ArchiveCalls, queue: Queue, *, older_than: float) -> ReconcileResult:
    """One round: requeue or fail the documents left `queued` or `processing` for longer than
    `older_than` seconds whose message the queue no longer has. The archive's changes go
    through the archivist; the queue's blocking calls run in threads."""
    result = ReconcileResult()
    stale = [
        (status, doc)
        for status in ("queued", "processing")
        for doc in await archive.stale_documents(status, older_than, _LIMIT)
    ]
    if not stale:
        return result
    dlq = await asyncio.to_thread(queue.dlq_list, _LIMIT)
    dead = {str(entry.body.get("document_id")): entry.reason for entry in dlq}
    flight = await asyncio.to_thread(queue.in_flight, _LIMIT * 5)
    held = {str(m.body.get("document_id")) for m in flight}
    stats = await asyncio.to_thread(queue.stats)
    waiting = stats.visible + stats.delayed  # messages not yet received: any may be one of ours
    for status, doc in stale:
        token = correlation_id_var.set(doc.correlation_id) if doc.correlation_id else None
        try:
            if doc.id in dead:
                reason = dead[doc.id]
                detail = f"{reason}: its message is in the dead-letter queue"
                if await archive.move_document(doc, status, "failed", detail=detail, reason=reason):
                    result.failed += 1
            elif doc.id not in held and not waiting and await _requeue(archive, queue, doc, status):
                result.requeued += 1
        finally:
            if token is not None:
                correlation_id_var.reset(token)
    if result.requeued or result.failed:
        log.warning(
            "reconciled documents the queue had lost",
            requeued=result.requeued,
            failed=result.failed,
        )
    return result


async def _requeue(archive: ArchiveCalls, queue: Queue, doc: StaleDocument, status: str) -> bool:
    detail = f"requeued: {status} with no message on the queue"
    if not await archive.move_document(doc, status, "queued", detail=detail):
        return False
    body = {"document_id": doc.id, "correlation_id": doc.correlation_id, "filename": doc.filename}
    await asyncio.to_thread(queue.send, {k: v for k, v in body.items() if v is not None})
    return True
