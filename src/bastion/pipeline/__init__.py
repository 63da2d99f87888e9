"""The document pipeline: ingest, extract, validate, archive.

The rest of Bastion imports this face, never the package's modules (`bastion.faces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.faces import lazy_attributes

if TYPE_CHECKING:
    from bastion.pipeline.agents.common import credential as credential
    from bastion.pipeline.agents.common import own_api_key as own_api_key
    from bastion.pipeline.agents.common import peer_url as peer_url
    from bastion.pipeline.archive_calls import ArchiveCalls as ArchiveCalls
    from bastion.pipeline.archive_calls import archivist_client as archivist_client
    from bastion.pipeline.archive_repo import ArchiveRepository as ArchiveRepository
    from bastion.pipeline.archive_types import MAX_LIST_LIMIT as MAX_LIST_LIMIT
    from bastion.pipeline.archive_types import NOT_OWNER as NOT_OWNER
    from bastion.pipeline.archive_types import ArchiveUnavailable as ArchiveUnavailable
    from bastion.pipeline.archive_types import DocumentNotFoundError as DocumentNotFoundError
    from bastion.pipeline.archive_types import readable_by as readable_by
    from bastion.pipeline.collectors import ScrapeCollector as ScrapeCollector
    from bastion.pipeline.collectors import pipeline_collector as pipeline_collector
    from bastion.pipeline.events import EventFeed as EventFeed
    from bastion.pipeline.events import Subscription as Subscription
    from bastion.pipeline.events import TooManySubscriptions as TooManySubscriptions
    from bastion.pipeline.extract import extract_document as extract_document
    from bastion.pipeline.extract.preflight import preflight as preflight
    from bastion.pipeline.ingest import PDF_CONTENT_TYPE as PDF_CONTENT_TYPE
    from bastion.pipeline.ingest import Ingest as Ingest
    from bastion.pipeline.ingest import UploadRejected as UploadRejected
    from bastion.pipeline.ingest import check_size as check_size
    from bastion.pipeline.ingest import too_large as too_large
    from bastion.pipeline.model import OUTCOMES as OUTCOMES
    from bastion.pipeline.model import READ_ALL_ACTION as READ_ALL_ACTION
    from bastion.pipeline.model import READ_ALL_AGENT as READ_ALL_AGENT
    from bastion.pipeline.model import REASON_CODES as REASON_CODES
    from bastion.pipeline.model import ExtractionError as ExtractionError
    from bastion.pipeline.model import is_document_id as is_document_id
    from bastion.pipeline.s3_events import NotAnS3Event as NotAnS3Event
    from bastion.pipeline.s3_events import s3_objects as s3_objects
    from bastion.pipeline.s3_ingest import S3Ref as S3Ref
    from bastion.pipeline.samples import write_samples as write_samples
    from bastion.pipeline.services import PIPELINE_AGENTS as PIPELINE_AGENTS
    from bastion.pipeline.services import pipeline_endpoints as pipeline_endpoints
    from bastion.pipeline.stores import open_pipeline_queue as open_pipeline_queue
    from bastion.pipeline.watch import FolderWatcher as FolderWatcher
    from bastion.pipeline.watch_ledger import WatchLedger as WatchLedger
    from bastion.pipeline.worker import run_worker as run_worker
    from bastion.pipeline.worker import serve_worker as serve_worker

# Each public name and the module that defines it.
_EXPORTS = {
    "ArchiveCalls": "bastion.pipeline.archive_calls",
    "ArchiveRepository": "bastion.pipeline.archive_repo",
    "ArchiveUnavailable": "bastion.pipeline.archive_types",
    "archivist_client": "bastion.pipeline.archive_calls",
    "check_size": "bastion.pipeline.ingest",
    "credential": "bastion.pipeline.agents.common",
    "DocumentNotFoundError": "bastion.pipeline.archive_types",
    "EventFeed": "bastion.pipeline.events",
    "extract_document": "bastion.pipeline.extract",
    "ExtractionError": "bastion.pipeline.model",
    "FolderWatcher": "bastion.pipeline.watch",
    "WatchLedger": "bastion.pipeline.watch_ledger",
    "Ingest": "bastion.pipeline.ingest",
    "is_document_id": "bastion.pipeline.model",
    "MAX_LIST_LIMIT": "bastion.pipeline.archive_types",
    "NOT_OWNER": "bastion.pipeline.archive_types",
    "NotAnS3Event": "bastion.pipeline.s3_events",
    "open_pipeline_queue": "bastion.pipeline.stores",
    "own_api_key": "bastion.pipeline.agents.common",
    "PDF_CONTENT_TYPE": "bastion.pipeline.ingest",
    "peer_url": "bastion.pipeline.agents.common",
    "PIPELINE_AGENTS": "bastion.pipeline.services",
    "pipeline_collector": "bastion.pipeline.collectors",
    "pipeline_endpoints": "bastion.pipeline.services",
    "preflight": "bastion.pipeline.extract.preflight",
    "OUTCOMES": "bastion.pipeline.model",
    "READ_ALL_ACTION": "bastion.pipeline.model",
    "READ_ALL_AGENT": "bastion.pipeline.model",
    "readable_by": "bastion.pipeline.archive_types",
    "REASON_CODES": "bastion.pipeline.model",
    "run_worker": "bastion.pipeline.worker",
    "S3Ref": "bastion.pipeline.s3_ingest",
    "s3_objects": "bastion.pipeline.s3_events",
    "ScrapeCollector": "bastion.pipeline.collectors",
    "serve_worker": "bastion.pipeline.worker",
    "Subscription": "bastion.pipeline.events",
    "too_large": "bastion.pipeline.ingest",
    "TooManySubscriptions": "bastion.pipeline.events",
    "UploadRejected": "bastion.pipeline.ingest",
    "write_samples": "bastion.pipeline.samples",
}

__all__ = [
    "MAX_LIST_LIMIT",
    "NOT_OWNER",
    "OUTCOMES",
    "PDF_CONTENT_TYPE",
    "PIPELINE_AGENTS",
    "READ_ALL_ACTION",
    "READ_ALL_AGENT",
    "REASON_CODES",
    "ArchiveCalls",
    "ArchiveRepository",
    "ArchiveUnavailable",
    "DocumentNotFoundError",
    "EventFeed",
    "ExtractionError",
    "FolderWatcher",
    "Ingest",
    "NotAnS3Event",
    "S3Ref",
    "ScrapeCollector",
    "Subscription",
    "TooManySubscriptions",
    "UploadRejected",
    "WatchLedger",
    "archivist_client",
    "check_size",
    "credential",
    "extract_document",
    "is_document_id",
    "open_pipeline_queue",
    "own_api_key",
    "peer_url",
    "pipeline_collector",
    "pipeline_endpoints",
    "preflight",
    "readable_by",
    "run_worker",
    "s3_objects",
    "serve_worker",
    "too_large",
    "write_samples",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and check every name
    __getattr__ = lazy_attributes(__name__, _EXPORTS)
