"""The pipeline's shared stores, opened from settings: the object store and the queue.

The gateway, the worker, the extractor and the CLI all open them the same way.
"""

from __future__ import annotations

from bastion.config import Settings
from bastion.storage import LocalObjectStore, Queue, open_queue


def object_store(settings: Settings) -> LocalObjectStore:
    """The content-addressed object store at `pipeline.objects_dir`."""
    return LocalObjectStore(settings.path(settings.pipeline.objects_dir))


def open_pipeline_queue(settings: Settings) -> Queue:
    """The document queue at `pipeline.queue_url`, with its DLQ and retention settings."""
    p = settings.pipeline
    return open_queue(
        p.queue_url,
        base_dir=settings.base_dir,
        max_receive_count=p.max_receive_count,
        retention_seconds=p.retention_seconds,
    )
