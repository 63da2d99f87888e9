"""The Archivist's document-lifecycle methods: what the gateway and the worker ask of the archive.

The Archivist alone opens the archive's tables; the other processes change a document's life
through these methods, each authorized as `archivist.<method>` (the shipped policy grants each
to exactly the principal that needs it) and audited like every call:

* `record_upload {sha256, owner, uploaded_by, filename, content_type, size}` (the gateway, for
  uploads and the watched folder): the owner's document for these bytes, new or existing; the
  history event names `uploaded_by` and the call's correlation id.
* `delete_document {document_id, owner, deleted_by}` (the gateway): removes the extracted data,
  keeps the tombstone and the history, and with the last document of its bytes removes them.
* `stored_file {document_id, owner}` (the gateway): the SHA-256 of a live document's bytes.
* `set_status {document_id, status, reason?, detail?}` (the worker): `queued`, `processing` or
  `failed`, with a history event; answers the SHA-256 of the document's bytes.
* `stale_documents {status, older_than_seconds, limit?}`, `move_document {document_id,
  from_status, to_status, updated_at, reason?, detail}` (the worker's reconciler): documents
  whose status has not changed for a while, and a move that happens only if nothing changed.
* `stats` (the gateway's metrics): documents by status.
* `watch_events {after?}` (the gateway's live feed): a stream of `{events, cursor}` batches of
  history rows after `after` (null: from now on), polled every `events.poll_interval_seconds`,
  with an empty batch at least every `HEARTBEAT_SECONDS` so that the reader knows it is alive.

An unknown document is `DOCUMENT_NOT_FOUND` (-32051); a deleted one has `data.reason`
`deleted`, another owner's `not_owner`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.core.context import CallContext
from bastion.pipeline.agents.common import DocumentRef
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.archive_types import (
    DELETED,
    MAX_LIST_LIMIT,
    NOT_OWNER,
    DocumentDeletedError,
    DocumentNotFoundError,
    StaleDocument,
    readable_by,
)
from bastion.pipeline.history_tail import history_batches
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, RpcError
from bastion.runtime import MethodRegistry
from bastion.storage import SHA256_PATTERN, ObjectStore

_NAME = Field(min_length=1, max_length=256)
_REASON = Field(default=None, max_length=64, pattern=r"^[a-z0-9_]+$")
_DETAIL = Field(default=None, max_length=500)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadParams(_Params):
    sha256: str = Field(pattern=SHA256_PATTERN)
    owner: str = _NAME
    uploaded_by: str = _NAME
    filename: str = Field(min_length=1, max_length=512)
    content_type: str = Field(min_length=1, max_length=128)
    size: int = Field(ge=0)


class OwnedRef(DocumentRef):
    # Whose documents the caller acts for; null: every owner's (see the archivist's `scope`).
    owner: str | None = Field(max_length=256)


class DeleteParams(OwnedRef):
    deleted_by: str = _NAME


class StatusParams(DocumentRef):
    # `archived` is reached only through `archive`; `deleted` only through `delete_document`.
    status: Literal["queued", "processing", "failed"]
    reason: str | None = _REASON
    detail: str | None = _DETAIL


class StaleParams(_Params):
    status: Literal["queued", "processing"]
    older_than_seconds: float = Field(ge=0)
    limit: int = Field(default=200, ge=1, le=MAX_LIST_LIMIT)


class MoveParams(DocumentRef):
    from_status: Literal["queued", "processing"]
    to_status: Literal["queued", "failed"]
    updated_at: float
    reason: str | None = _REASON
    detail: str = Field(max_length=500)


class WatchParams(_Params):
    after: int | None = Field(default=None, ge=0)


def not_found(document_id: str, reason: str | None = None) -> RpcError:
    data = {"document_id": document_id}
    if reason is not None:
        data["reason"] = reason
    return RpcError(DOCUMENT_NOT_FOUND, data=data)


Scope = Callable[["OwnedRef", CallContext], str | None]


def add_lifecycle_methods(
    registry: MethodRegistry,
    repo: ArchiveRepository,
    scope: Scope,
    *,
    store: ObjectStore | None,
    poll_seconds: float,
) -> None:
    """Register the lifecycle methods on `registry`. `scope(params, ctx)`: whose documents the
    call may touch (the archivist's read scope); `store`: where a deleted document's bytes are
    removed from (None: they are kept)."""

    @registry.method("record_upload")
    async def record_upload(params: UploadParams, ctx: CallContext) -> dict[str, Any]:
        """Record received bytes as the owner's document (new, or the owner's existing one)."""
        record = await asyncio.to_thread(
            repo.record_upload,
            params.sha256,
            owner=params.owner,
            filename=params.filename,
            content_type=params.content_type,
            size=params.size,
            principal=params.uploaded_by,
            correlation_id=ctx.correlation_id,
        )
        return {
            "id": record.id,
            "created": record.created,
            "status": record.status,
            "outcome": record.outcome,
        }

    @registry.method("delete_document")
    async def delete_document(params: DeleteParams, ctx: CallContext) -> dict[str, Any]:
        """Remove a document's data, keeping its tombstone and history."""
        owner = scope(params, ctx)
        result = await asyncio.to_thread(
            repo.delete_document,
            params.document_id,
            principal=params.deleted_by,
            correlation_id=ctx.correlation_id,
            owner=owner,
            remove_bytes=None if store is None else store.delete,
        )
        if result != "deleted":
            raise not_found(params.document_id, NOT_OWNER if result == NOT_OWNER else None)
        return {"document_id": params.document_id, "deleted": True}

    @registry.method("stored_file")
    async def stored_file(params: OwnedRef, ctx: CallContext) -> dict[str, Any]:
        """The SHA-256 of a live document's bytes (its name in the object store)."""
        owner = scope(params, ctx)
        stored = await asyncio.to_thread(repo.stored_file, params.document_id)
        if stored is None:
            raise not_found(params.document_id)
        if not readable_by(stored[0], owner):
            raise not_found(params.document_id, NOT_OWNER)
        return {"document_id": params.document_id, "sha256": stored[1]}

    @registry.method("set_status")
    async def set_status(params: StatusParams, ctx: CallContext) -> dict[str, Any]:
        """Move a document to `status` with a history event."""
        try:
            sha256 = await asyncio.to_thread(
                repo.set_status,
                params.document_id,
                params.status,
                reason=params.reason,
                detail=params.detail,
                correlation_id=ctx.correlation_id,
                principal=ctx.principal,
            )
        except DocumentNotFoundError:
            raise not_found(params.document_id) from None
        except DocumentDeletedError:
            raise not_found(params.document_id, DELETED) from None
        return {"document_id": params.document_id, "sha256": sha256}

    @registry.method("stale_documents")
    async def stale_documents(params: StaleParams) -> dict[str, Any]:
        """Live documents in `status` unchanged for `older_than_seconds`, oldest first."""
        docs = await asyncio.to_thread(
            repo.stale, params.status, time.time() - params.older_than_seconds, params.limit
        )
        return {
            "documents": [
                {
                    "document_id": d.id,
                    "correlation_id": d.correlation_id,
                    "filename": d.filename,
                    "updated_at": d.updated_at,
                }
                for d in docs
            ]
        }

    @registry.method("move_document")
    async def move_document(params: MoveParams, ctx: CallContext) -> dict[str, Any]:
        """Move a document from `from_status` only if it has not changed since `updated_at`."""
        doc = StaleDocument(params.document_id, ctx.correlation_id, "", params.updated_at)
        moved = await asyncio.to_thread(
            repo.move_if_unchanged,
            doc,
            params.from_status,
            params.to_status,
            reason=params.reason,
            detail=params.detail,
            principal=ctx.principal,
        )
        return {"document_id": params.document_id, "moved": moved}

    @registry.method("stats")
    async def stats() -> dict[str, Any]:
        """Documents by status (every status, zeros included, plus `deleted`)."""
        return {"documents": await asyncio.to_thread(repo.status_counts)}

    @registry.method("watch_events", streaming=True)
    async def watch_events(params: WatchParams) -> AsyncIterator[dict[str, Any]]:
        """History rows as they are written, in batches with the cursor after them."""
        async for batch in history_batches(repo, params.after, poll_seconds=poll_seconds):
            yield batch
