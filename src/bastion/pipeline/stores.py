"""The pipeline's shared stores, opened from settings: the object store and the queue.

The gateway, the worker, the extractor and the CLI all open them the same way: the object store
is a local folder or an S3 bucket (`pipeline.object_store_url`), the queue a SQLite file or an
SQS queue (`pipeline.queue_url`).
"""

from __future__ import annotations

from bastion.config import Settings
from bastion.object_stores import object_store
from bastion.storage import Queue, open_queue

__all__ = ["object_store", "open_pipeline_queue"]


def open_pipeline_queue(settings: Settings) -> Queue:
    """The document queue at `pipeline.queue_url`, with its DLQ and retention settings (and, for
    SQS, its endpoint, region and ledger)."""
    p = settings.pipeline
    return open_queue(
        p.queue_url,
        base_dir=settings.base_dir,
        max_receive_count=p.max_receive_count,
        retention_seconds=p.retention_seconds,
        endpoint_url=p.sqs_endpoint_url,
        region=p.aws_region,
        ledger_url=settings.sqs_ledger_url(),
    )
