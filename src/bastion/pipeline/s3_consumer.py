"""The worker's S3 event consumer: objects created in a bucket enter the pipeline like uploads.

With `pipeline.s3_events_queue_url` set, the worker runs an `S3EventConsumer` beside its
document loop. The bucket's event notifications go to that SQS queue (S3 -> SQS, or S3 -> SNS
-> SQS); the consumer long-polls it (`pipeline.sqs_endpoint_url`, `pipeline.aws_region`) and
reads each message with `s3_objects` (URL-decoded keys, `s3:TestEvent` ignored, the prefix and
suffix filters `pipeline.s3_events_prefix` / `s3_events_suffix`).

Each created object is read from its bucket and ingested by `ingest_s3_object`: the document
belongs to the worker's principal, gets a new correlation ID, the upload's record and checks,
and a message on the document queue, whose retries and dead-letter queue then apply as to any
upload. Each object's outcome is logged and audited (agent `worker`, method `s3_ingest`, client
`s3://BUCKET`), like a watched-folder file.

A message is deleted only once every object it names was ingested or refused for good:

- refused for good (`UploadRejected`: not a PDF, empty, too large, a bucket not in
  `pipeline.s3_events_buckets`, the object gone) and messages that are not S3 notifications:
  logged and audited with their reason, then acknowledged; retrying cannot change them;
- anything else (S3, the database or the queue unavailable): the message is left alone, and
  SQS delivers it again after the visibility timeout it was received with
  (`pipeline.visibility_timeout_seconds`); the queue's redrive policy (set it on the events
  queue: `maxReceiveCount` and a dead-letter queue) moves it aside after as many tries.
  Objects of the message that were ingested already are duplicates the second time: the same
  bytes from the same owner are one document, which is not queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import structlog

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry
from bastion.core.context import correlation_id_var, new_correlation_id
from bastion.pipeline.ingest import Ingest, UploadRejected
from bastion.pipeline.s3_events import NotAnS3Event, S3Object, s3_objects
from bastion.pipeline.s3_ingest import S3Ref, S3Source, ingest_s3_object
from bastion.security import build_audit_writer

log = structlog.get_logger("bastion.s3_events")

AUDIT_METHOD = "s3_ingest"
WAIT_SECONDS = 2  # each long poll; a stop is seen within it
BATCH = 10  # SQS's most messages per receive
RETRY_SECONDS = 1.0


def sqs_client(settings: Settings, queue_url: str) -> Any:
    """A boto3 SQS client for `queue_url`: `pipeline.sqs_endpoint_url`, else the URL's own host
    when it is not AWS's (a VPC endpoint, moto)."""
    import boto3

    p = settings.pipeline
    endpoint = p.sqs_endpoint_url
    parts = urlsplit(queue_url)
    if endpoint is None and not (parts.hostname or "").endswith(".amazonaws.com"):
        endpoint = f"{parts.scheme}://{parts.netloc}"
    return boto3.client("sqs", endpoint_url=endpoint, region_name=p.aws_region)


class S3EventConsumer:
    """Ingests the objects of `pipeline.s3_events_queue_url`'s notifications as `principal`'s."""

    def __init__(
        self,
        settings: Settings,
        principal: str,
        ingest: Ingest,
        *,
        source: S3Source | None = None,
        sqs: Any = None,
    ) -> None:
        p = settings.pipeline
        if not p.s3_events_queue_url:
            raise ValueError("pipeline.s3_events_queue_url is not set")
        self.queue_url = p.s3_events_queue_url
        self.prefix, self.suffix = p.s3_events_prefix, p.s3_events_suffix
        self.principal = principal
        # A batch's messages stay hidden while its objects are read and ingested one by one.
        self.visibility = int(p.visibility_timeout_seconds)
        self.ingest = ingest
        self.source = source or S3Source(settings)
        self.sqs = sqs or sqs_client(settings, self.queue_url)
        self.audit = build_audit_writer(principal, settings)
        self.counts = {"ingested": 0, "duplicates": 0, "refused": 0, "retried": 0}
        self._threads = ThreadPoolExecutor(2, "bastion-s3-events")

    async def _blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))

    async def run(self, stop: asyncio.Event) -> None:
        """Consume the queue until `stop` is set (the message in hand is finished first)."""
        await self.audit.start()
        log.info("consuming S3 events", queue=self.queue_url)
        while not stop.is_set():
            try:
                answer = await self._blocking(
                    self.sqs.receive_message,
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=BATCH,
                    WaitTimeSeconds=WAIT_SECONDS,
                    VisibilityTimeout=self.visibility,
                )
            except Exception:
                log.exception("receiving S3 events failed; retrying", queue=self.queue_url)
                await _wait(stop, RETRY_SECONDS)
                continue
            for message in answer.get("Messages", []):
                try:
                    await self.handle(message)
                except Exception:  # the delete failed: the message comes back, a duplicate
                    log.exception("S3 event message not acknowledged", queue=self.queue_url)
        log.info("S3 event consumer stopped", **self.counts)

    async def aclose(self) -> None:
        await self.audit.close()
        self.ingest.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def handle(self, message: dict[str, Any]) -> bool:
        """Ingest the objects one message names; True when it was acknowledged (deleted)."""
        try:
            objects = s3_objects(message.get("Body", ""), prefix=self.prefix, suffix=self.suffix)
        except NotAnS3Event as exc:
            log.warning("not an S3 event; dropped", message_id=message.get("MessageId"))
            await self._audit("sqs", "error:bad_message", 400, new_correlation_id(), str(exc))
            objects = []
        for obj in objects:
            if not await self._ingest(obj):
                self.counts["retried"] += 1
                return False  # SQS delivers it again after its visibility timeout
        await self._blocking(
            self.sqs.delete_message,
            QueueUrl=self.queue_url,
            ReceiptHandle=message["ReceiptHandle"],
        )
        return True

    async def _ingest(self, obj: S3Object) -> bool:
        """Ingest one object; False when it failed for now (and should be tried again)."""
        cid = new_correlation_id()
        token = correlation_id_var.set(cid)
        where = f"s3://{obj.bucket}"
        fields = {"bucket": obj.bucket, "key": obj.key}
        try:
            ref = S3Ref.of(obj)
            result = await ingest_s3_object(self.ingest, self.source, ref, self.principal, cid)
        except (UploadRejected, ValueError) as exc:  # ValueError: a reference S3 never sends
            reason, status = (
                (exc.reason, exc.http_status)
                if isinstance(exc, UploadRejected)
                else ("bad_message", 400)
            )
            self.counts["refused"] += 1
            log.warning("S3 object refused", reason=reason, **fields)
            await self._audit(where, f"error:{reason}", status, cid, obj.key)
            return True
        except Exception as exc:
            log.exception("S3 object not ingested; the message will be retried", **fields)
            await self._audit(
                where, "error:unavailable", 503, cid, f"{obj.key}: {type(exc).__name__}"
            )
            return False
        finally:
            correlation_id_var.reset(token)
        self.counts["ingested" if result.created else "duplicates"] += 1
        log.info("S3 object ingested", document_id=result.id, created=result.created, **fields)
        await self._audit(where, "ok", 202 if result.created else 200, cid, obj.key)
        return True

    async def _audit(
        self, client: str, outcome: str, status: int, correlation_id: str, detail: str
    ) -> None:
        await self.audit.record(
            AuditEntry(
                ts=time.time(),
                principal=self.principal,
                auth_method="none",
                agent=self.principal,
                method=AUDIT_METHOD,
                correlation_id=correlation_id,
                outcome=outcome,
                status=status,
                latency_ms=0.0,
                client=client,
                detail=detail[:500],
            )
        )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
