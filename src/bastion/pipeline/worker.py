"""The queue worker: takes uploaded documents off the queue and has the orchestrator process them.

`concurrency` documents are processed at once. One fetcher claims as many messages as there are
free slots (a long poll), and each message is handled in its own task:

- it marks the document `processing` (learning the sha256 of its bytes from the archive) and
  calls `orchestrator.process_document {document_id, sha256}` under the worker's own
  credential and the upload's correlation ID;
- success: the message is deleted (the archivist has marked the document `archived`);
- the document itself is the problem (DocumentRejected, DocumentNotFound, a malformed message):
  the message goes to the dead-letter queue at once with its reason code, and the document is
  marked `failed` with that reason;
- anything else (an agent down, a timeout, a refused credential) is transient: the message is
  hidden for an exponential backoff and tried again; once it has been received
  `max_receive_count` times it is dead-lettered with the last reason.

Delivery is at least once and the archive is idempotent on the document's id, so a worker
killed mid-document loses nothing and duplicates nothing: the message reappears and the
document is archived again in place.

The worker holds a consumer lease on the queue (`pipeline.consumer_lease_seconds`, renewed every
third of it; see `bastion.storage.queue.lease`) and names it on each receive. On start, and on
every renewal, it reclaims the messages of workers that are gone (process dead on this host, or
lease run out), so they are not stuck `processing` until their visibility timeout; a live
worker's messages are never taken.

With `pipeline.s3_events_queue_url` set, the worker also ingests the objects that S3 event
notifications name (`bastion.pipeline.s3_consumer`), as its own documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from bastion.config import Settings
from bastion.core.context import correlation_id_var, new_correlation_id, valid_correlation_id
from bastion.pipeline.agents.common import credential, processing_timeout
from bastion.pipeline.archive_calls import ArchiveCalls, archivist_client
from bastion.pipeline.archive_types import (
    ArchiveUnavailable,
    DocumentDeletedError,
    DocumentNotFoundError,
)
from bastion.pipeline.ingest import Ingest
from bastion.pipeline.model import is_document_id
from bastion.pipeline.reconcile import reconcile
from bastion.pipeline.s3_consumer import S3EventConsumer
from bastion.pipeline.stores import open_pipeline_queue
from bastion.protocol.errors import (
    DEPENDENCY_UNAVAILABLE,
    DOCUMENT_NOT_FOUND,
    DOCUMENT_REJECTED,
    FORBIDDEN,
    INTERNAL_ERROR,
    RATE_LIMITED,
    SECURITY_UNAVAILABLE,
    UNAUTHENTICATED,
)
from bastion.runtime import AgentClient, AgentConfigError, AgentUnreachable, RpcCallError
from bastion.security import SecretValue
from bastion.storage import ConsumerLease, Message, Queue

log = structlog.get_logger("bastion.worker")

PRINCIPAL = "worker"
POLL_SECONDS = 1.0
PURGE_EVERY_SECONDS = 600.0
_TRANSIENT_REASONS = {
    DEPENDENCY_UNAVAILABLE: "dependency_unavailable",
    UNAUTHENTICATED: "unauthenticated",
    FORBIDDEN: "forbidden",
    RATE_LIMITED: "rate_limited",
    SECURITY_UNAVAILABLE: "security_unavailable",
    INTERNAL_ERROR: "internal_error",
}


class _Poison(Exception):
    """The message or its document cannot ever succeed: dead-letter it with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _Transient(Exception):
    """Worth another try later; `reason` is recorded on the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _classify(error: Exception) -> _Poison | _Transient:
    if isinstance(error, AgentUnreachable):
        return _Transient("orchestrator_unreachable")
    if isinstance(error, RpcCallError):
        data = error.data if isinstance(error.data, dict) else {}
        if error.code == DOCUMENT_REJECTED:
            return _Poison(str(data.get("reason") or "extract_failed"), str(data.get("detail", "")))
        if error.code == DOCUMENT_NOT_FOUND:
            return _Poison("not_found", "the document's bytes or record are missing")
        return _Transient(_TRANSIENT_REASONS.get(error.code, f"rpc_error_{abs(error.code)}"))
    return _Transient("internal_error")


class Worker:
    """Consumes the document queue with `concurrency` concurrent documents."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: Queue | None = None,
        client: AgentClient | None = None,
        archive: ArchiveCalls | None = None,
        concurrency: int | None = None,
    ) -> None:
        p = settings.pipeline
        self.settings = settings
        self.concurrency = max(1, concurrency or p.worker_concurrency)
        self.queue = queue or open_pipeline_queue(settings)
        self.client = client or _orchestrator_client(settings)
        self.archive = archive or ArchiveCalls(
            archivist_client(settings, PRINCIPAL, _worker_key(settings))
        )
        self.counts = {"archived": 0, "dead_lettered": 0, "retried": 0, "requeued": 0,
                       "reconciled_failed": 0}  # fmt: skip
        self.lease = ConsumerLease(self.queue, settings.pipeline.consumer_lease_seconds)
        # With pipeline.s3_events_queue_url: objects created in a bucket, ingested as uploads.
        self.s3_events = (
            S3EventConsumer(settings, PRINCIPAL, Ingest(settings, self.archive))
            if p.s3_events_queue_url
            else None
        )
        self._rng = random.Random()  # noqa: S311 (backoff jitter, not security)
        # Queue and database calls block: they get their own threads, never the loop's default
        # pool, so a long poll cannot starve the handlers.
        self._threads = ThreadPoolExecutor(self.concurrency + 2, "bastion-worker")

    async def _blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))

    async def run(self, stop: asyncio.Event, *, drain_seconds: float = 15.0) -> None:
        """Process messages until `stop` is set; then finish in-flight documents (up to
        `drain_seconds`) and hand back any that did not finish."""
        slots = asyncio.Semaphore(self.concurrency)
        active: dict[asyncio.Task[None], Message] = {}
        last_purge = time.monotonic()
        next_reconcile = time.monotonic()  # once at start, then every reconcile_every_seconds
        visibility = self.settings.pipeline.visibility_timeout_seconds
        reclaimed = await self._blocking(self.lease.start)
        events = asyncio.create_task(self.s3_events.run(stop)) if self.s3_events else None
        log.info(
            "worker started",
            concurrency=self.concurrency,
            consumer=self.lease.consumer_id,
            reclaimed=reclaimed,
        )
        while not stop.is_set():
            await slots.acquire()
            free = 1
            while free < self.concurrency and not slots.locked():
                await slots.acquire()
                free += 1
            try:
                messages: list[Message] = await self._blocking(
                    self.queue.receive,
                    free,
                    visibility_timeout=visibility,
                    wait_seconds=POLL_SECONDS,
                    consumer=self.lease.consumer_id,
                )
            except Exception:
                log.exception("queue receive failed; retrying")
                messages = []
                await asyncio.sleep(POLL_SECONDS)
            for _ in range(free - len(messages)):
                slots.release()
            for message in messages:
                task = asyncio.create_task(self.handle(message))
                active[task] = message
                task.add_done_callback(lambda t: _finished(t, active, slots))
            if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
                last_purge = time.monotonic()
                await self._blocking(self.queue.purge_expired)
            if time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + self.settings.pipeline.reconcile_every_seconds
                await self._reconcile()
        if active:
            _done, pending = await asyncio.wait(list(active), timeout=drain_seconds)
            for task in pending:
                left = active.get(task)
                task.cancel()
                if left is not None:
                    with contextlib.suppress(Exception):
                        await self._blocking(
                            self.queue.change_visibility,
                            left.receipt_handle,
                            0,
                            reason="worker_stopped",
                        )
        if events is not None:
            await events
        await self._blocking(self.lease.stop)
        log.info("worker stopped", **self.counts)

    async def _reconcile(self) -> None:
        """Requeue or fail the documents the queue has lost (see `reconcile`); a failure is
        logged and tried again next round."""
        try:
            result = await reconcile(
                self.archive, self.queue, older_than=self.settings.pipeline.requeue_after_seconds
            )
        except Exception:
            log.exception("reconciling the queue with the archive failed; will try again")
            return
        self.counts["requeued"] += result.requeued
        self.counts["reconciled_failed"] += result.failed

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # run() normally stopped it already
            await self._blocking(self.lease.stop)
        await self.client.aclose()
        if self.s3_events is not None:
            await self.s3_events.aclose()
        await self.archive.aclose()
        self.queue.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    # -- one message ---------------------------------------------------------------------------

    async def handle(self, message: Message) -> None:
        body = message.body
        document_id = body.get("document_id")
        correlation = body.get("correlation_id")
        cid = (
            correlation
            if isinstance(correlation, str) and valid_correlation_id(correlation)
            else new_correlation_id()
        )
        token = correlation_id_var.set(cid)
        try:
            if not isinstance(document_id, str) or not is_document_id(document_id):
                raise _Poison("bad_message", "the message names no document id")
            await self._process(message, document_id, cid)
        except _Poison as poison:
            await self._dead_letter(message, document_id, cid, poison)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected worker failure", document_id=document_id)
            await self._retry(message, document_id, cid, _Transient("internal_error"))
        finally:
            correlation_id_var.reset(token)

    async def _process(self, message: Message, document_id: str, cid: str) -> None:
        try:
            sha256 = await self.archive.set_status(
                document_id, "processing", detail=f"attempt {message.receive_count}"
            )
        except ArchiveUnavailable as exc:
            log.warning("archive unavailable", document_id=document_id, error=str(exc))
            await self._retry(message, document_id, cid, _Transient("archive_unavailable"))
            return
        except DocumentDeletedError:
            log.info("document was deleted; dropping its message", document_id=document_id)
            await self._blocking(self.queue.delete, message.receipt_handle)
            return
        except DocumentNotFoundError:
            raise _Poison("not_found", "no record of this document") from None
        try:
            params = {"document_id": document_id, "sha256": sha256}
            result = await self.client.call("process_document", params)
        except (RpcCallError, AgentUnreachable) as error:
            verdict = _classify(error)
            if isinstance(verdict, _Poison):
                raise verdict from None
            await self._retry(message, document_id, cid, verdict)
            return
        await self._blocking(self.queue.delete, message.receipt_handle)
        self.counts["archived"] += 1
        log.info(
            "document archived",
            document_id=document_id,
            outcome=result.get("outcome") if isinstance(result, dict) else None,
        )

    def _backoff(self, attempt: int) -> float:
        p = self.settings.pipeline
        delay = min(
            p.retry_backoff_max_seconds, p.retry_backoff_base_seconds * 2.0 ** (attempt - 1)
        )
        return delay * (0.5 + self._rng.random() / 2)

    async def _retry(
        self, message: Message, document_id: Any, cid: str, transient: _Transient
    ) -> None:
        if message.receive_count >= self.queue.max_receive_count:
            await self._dead_letter(
                message,
                document_id,
                cid,
                _Poison(transient.reason, f"still failing after {message.receive_count} attempts"),
            )
            return
        delay = self._backoff(message.receive_count)
        self.counts["retried"] += 1
        log.warning(
            "document failed transiently; will retry",
            document_id=document_id,
            reason=transient.reason,
            retry_in_seconds=round(delay, 2),
            attempt=message.receive_count,
        )
        await self._blocking(
            self.queue.change_visibility, message.receipt_handle, delay, reason=transient.reason
        )
        await self._set_status(
            document_id,
            "queued",
            detail=f"retry in {delay:.1f} s after: {transient.reason}",
        )

    async def _dead_letter(
        self, message: Message, document_id: Any, cid: str, poison: _Poison
    ) -> None:
        self.counts["dead_lettered"] += 1
        log.warning("document dead-lettered", document_id=document_id, reason=poison.reason)
        await self._blocking(self.queue.dead_letter, message.receipt_handle, poison.reason)
        if isinstance(document_id, str) and is_document_id(document_id):
            await self._set_status(
                document_id,
                "failed",
                reason=poison.reason,
                detail=f"{poison.reason}: {poison.detail}"[:500] if poison.detail else None,
            )

    async def _set_status(
        self,
        document_id: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the status; an archive that cannot be reached is logged (the reconciler puts
        the status right later) and a document that is gone needs none."""
        try:
            await self.archive.set_status(document_id, status, reason=reason, detail=detail)
        except (DocumentNotFoundError, DocumentDeletedError):
            pass
        except ArchiveUnavailable as exc:
            log.warning(
                "document status not recorded; the reconciler will",
                document_id=document_id,
                status=status,
                error=str(exc),
            )


def _finished(
    task: asyncio.Task[None], active: dict[asyncio.Task[None], Message], slots: asyncio.Semaphore
) -> None:
    active.pop(task, None)
    slots.release()


def _worker_key(settings: Settings) -> SecretValue:
    return credential(
        settings, "pipeline.worker_api_key", settings.pipeline.worker_api_key, PRINCIPAL
    )


def _orchestrator_client(settings: Settings) -> AgentClient:
    key = _worker_key(settings)
    target = settings.agents.get("orchestrator")
    if target is None or not target.url:
        raise AgentConfigError("agents.orchestrator.url is not set: the worker needs it")
    client_settings = settings.client.model_copy(
        update={"timeout_seconds": processing_timeout(settings, 20)}
    )
    return AgentClient(target.url, api_key=key, settings=client_settings, principal=PRINCIPAL)


async def serve_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run a worker until `stop` is set (or SIGTERM/SIGINT when `stop` is None)."""
    worker = Worker(settings)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await worker.run(stop, drain_seconds=settings.server.shutdown_timeout_seconds)
    finally:
        await worker.aclose()


def run_worker(settings: Settings) -> int:
    """Blocking entry point for `bastion serve worker`: exit code 0 after a clean stop."""
    asyncio.run(serve_worker(settings))
    return 0
