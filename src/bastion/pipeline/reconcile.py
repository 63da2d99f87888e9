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

A document is moved only if its status has not changed since it was read, so of several
workers reconciling at once one acts, and a document is never sent twice by them.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from bastion.pipeline.archive_repo import ArchiveRepository, StaleDocument
from bastion.storage import Queue

log = structlog.get_logger("bastion.reconcile")

PRINCIPAL = "worker"
_LIMIT = 200  # documents looked at per status and round, and DLQ entries read


@dataclass(slots=True)
class ReconcileResult:
    requeued: int = 0
    failed: int = 0


def reconcile(
    repo: ArchiveRepository, queue: Queue, *, older_than: float, now: float
) -> ReconcileResult:
    """One round: requeue or fail the documents left `queued` or `processing` for longer than
    `older_than` seconds whose message the queue no longer has."""
    result = ReconcileResult()
    stale = [
        (status, doc)
        for status in ("queued", "processing")
        for doc in repo.stale(status, now - older_than, _LIMIT)
    ]
    if not stale:
        return result
    dead = {str(entry.body.get("document_id")): entry.reason for entry in queue.dlq_list(_LIMIT)}
    held = {str(m.body.get("document_id")) for m in queue.in_flight(_LIMIT * 5)}
    stats = queue.stats()
    waiting = stats.visible + stats.delayed  # messages not yet received: any may be one of ours
    for status, doc in stale:
        if doc.id in dead:
            if _move(repo, doc, status, "failed", reason=dead[doc.id]):
                result.failed += 1
        elif doc.id not in held and not waiting and _requeue(repo, queue, doc, status):
            result.requeued += 1
    if result.requeued or result.failed:
        log.warning(
            "reconciled documents the queue had lost",
            requeued=result.requeued,
            failed=result.failed,
        )
    return result


def _move(
    repo: ArchiveRepository, doc: StaleDocument, status: str, new: str, *, reason: str
) -> bool:
    detail = f"{reason}: its message is in the dead-letter queue"
    return repo.move_if_unchanged(
        doc, status, new, reason=reason, detail=detail, principal=PRINCIPAL
    )


def _requeue(repo: ArchiveRepository, queue: Queue, doc: StaleDocument, status: str) -> bool:
    detail = f"requeued: {status} with no message on the queue"
    if not repo.move_if_unchanged(doc, status, "queued", detail=detail, principal=PRINCIPAL):
        return False
    body = {"document_id": doc.id, "correlation_id": doc.correlation_id, "filename": doc.filename}
    queue.send({k: v for k, v in body.items() if v is not None})
    return True
