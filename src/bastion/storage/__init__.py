"""Storage: the SQL database (SQLAlchemy models, Alembic migrations).

The rest of Bastion imports this face, never the package's modules (`bastion.faces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.faces import lazy_attributes

if TYPE_CHECKING:
    from bastion.storage.a2a_models import A2ATask as A2ATask
    from bastion.storage.a2a_models import A2ATaskClock as A2ATaskClock
    from bastion.storage.database import has_schema as has_schema
    from bastion.storage.database import make_engine as make_engine
    from bastion.storage.database import migrate as migrate
    from bastion.storage.database import ping as ping
    from bastion.storage.database import shared_engine as shared_engine
    from bastion.storage.database import sqlite_file as sqlite_file
    from bastion.storage.database import write_transaction as write_transaction
    from bastion.storage.ids import ID_TOKEN_PATTERN as ID_TOKEN_PATTERN
    from bastion.storage.ids import random_token as random_token
    from bastion.storage.models import ApiKey as ApiKey
    from bastion.storage.models import AuditRecord as AuditRecord
    from bastion.storage.objects_s3 import S3ObjectStore as S3ObjectStore
    from bastion.storage.objectstore import SHA256_PATTERN as SHA256_PATTERN
    from bastion.storage.objectstore import LocalObjectStore as LocalObjectStore
    from bastion.storage.objectstore import ObjectNotFoundError as ObjectNotFoundError
    from bastion.storage.objectstore import ObjectStore as ObjectStore
    from bastion.storage.objectstore import sha256_hex as sha256_hex
    from bastion.storage.objectstore import validate_sha256 as validate_sha256
    from bastion.storage.paging import decode_cursor as decode_cursor
    from bastion.storage.paging import encode_cursor as encode_cursor
    from bastion.storage.pipeline_models import DOCUMENT_STATUSES as DOCUMENT_STATUSES
    from bastion.storage.pipeline_models import HISTORY_EVENTS as HISTORY_EVENTS
    from bastion.storage.pipeline_models import Blob as Blob
    from bastion.storage.pipeline_models import Document as Document
    from bastion.storage.pipeline_models import DocumentField as DocumentField
    from bastion.storage.pipeline_models import DocumentStatus as DocumentStatus
    from bastion.storage.pipeline_models import FindingRow as FindingRow
    from bastion.storage.pipeline_models import HistoryRow as HistoryRow
    from bastion.storage.pipeline_models import IngestedFile as IngestedFile
    from bastion.storage.pipeline_models import InvoiceClaim as InvoiceClaim
    from bastion.storage.pipeline_models import LineItemRow as LineItemRow
    from bastion.storage.queue import ConsumerLease as ConsumerLease
    from bastion.storage.queue import DeadLetter as DeadLetter
    from bastion.storage.queue import InFlight as InFlight
    from bastion.storage.queue import Message as Message
    from bastion.storage.queue import Queue as Queue
    from bastion.storage.queue import display_url as display_url
    from bastion.storage.queue import open_queue as open_queue
    from bastion.storage.queue import queue_path as queue_path
    from bastion.storage.queue.identity import process_gone as process_gone
    from bastion.storage.research_models import RUN_STATES as RUN_STATES
    from bastion.storage.research_models import ResearchConversation as ResearchConversation
    from bastion.storage.research_models import ResearchRun as ResearchRun
    from bastion.storage.research_models import RunState as RunState

# Each public name and the module that defines it.
_EXPORTS = {
    "A2ATask": "bastion.storage.a2a_models",
    "A2ATaskClock": "bastion.storage.a2a_models",
    "sqlite_file": "bastion.storage.database",
    "ID_TOKEN_PATTERN": "bastion.storage.ids",
    "random_token": "bastion.storage.ids",
    "decode_cursor": "bastion.storage.paging",
    "display_url": "bastion.storage.queue",
    "encode_cursor": "bastion.storage.paging",
    "ApiKey": "bastion.storage.models",
    "AuditRecord": "bastion.storage.models",
    "Blob": "bastion.storage.pipeline_models",
    "ConsumerLease": "bastion.storage.queue",
    "DeadLetter": "bastion.storage.queue",
    "Document": "bastion.storage.pipeline_models",
    "DOCUMENT_STATUSES": "bastion.storage.pipeline_models",
    "DocumentField": "bastion.storage.pipeline_models",
    "DocumentStatus": "bastion.storage.pipeline_models",
    "FindingRow": "bastion.storage.pipeline_models",
    "HISTORY_EVENTS": "bastion.storage.pipeline_models",
    "HistoryRow": "bastion.storage.pipeline_models",
    "InFlight": "bastion.storage.queue",
    "IngestedFile": "bastion.storage.pipeline_models",
    "InvoiceClaim": "bastion.storage.pipeline_models",
    "LineItemRow": "bastion.storage.pipeline_models",
    "LocalObjectStore": "bastion.storage.objectstore",
    "S3ObjectStore": "bastion.storage.objects_s3",
    "has_schema": "bastion.storage.database",
    "make_engine": "bastion.storage.database",
    "Message": "bastion.storage.queue",
    "migrate": "bastion.storage.database",
    "ObjectNotFoundError": "bastion.storage.objectstore",
    "ObjectStore": "bastion.storage.objectstore",
    "open_queue": "bastion.storage.queue",
    "ping": "bastion.storage.database",
    "process_gone": "bastion.storage.queue.identity",
    "Queue": "bastion.storage.queue",
    "queue_path": "bastion.storage.queue",
    "ResearchConversation": "bastion.storage.research_models",
    "ResearchRun": "bastion.storage.research_models",
    "RUN_STATES": "bastion.storage.research_models",
    "RunState": "bastion.storage.research_models",
    "sha256_hex": "bastion.storage.objectstore",
    "SHA256_PATTERN": "bastion.storage.objectstore",
    "shared_engine": "bastion.storage.database",
    "validate_sha256": "bastion.storage.objectstore",
    "write_transaction": "bastion.storage.database",
}

__all__ = [
    "DOCUMENT_STATUSES",
    "HISTORY_EVENTS",
    "ID_TOKEN_PATTERN",
    "RUN_STATES",
    "SHA256_PATTERN",
    "A2ATask",
    "A2ATaskClock",
    "ApiKey",
    "AuditRecord",
    "Blob",
    "ConsumerLease",
    "DeadLetter",
    "Document",
    "DocumentField",
    "DocumentStatus",
    "FindingRow",
    "HistoryRow",
    "InFlight",
    "IngestedFile",
    "InvoiceClaim",
    "LineItemRow",
    "LocalObjectStore",
    "Message",
    "ObjectNotFoundError",
    "ObjectStore",
    "Queue",
    "ResearchConversation",
    "ResearchRun",
    "RunState",
    "S3ObjectStore",
    "decode_cursor",
    "display_url",
    "encode_cursor",
    "has_schema",
    "make_engine",
    "migrate",
    "open_queue",
    "ping",
    "process_gone",
    "queue_path",
    "random_token",
    "sha256_hex",
    "shared_engine",
    "sqlite_file",
    "validate_sha256",
    "write_transaction",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and check every name
    __getattr__ = lazy_attributes(__name__, _EXPORTS)
