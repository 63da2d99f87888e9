"""The Archivist agent: the only process that opens the document archive's tables.

Methods (each authorized as `archivist.<method>`):

* `archive {document_id, result, validation}`: store an extraction and its validation (the
  orchestrator); idempotent on the document id, a second archive is a `reprocessed` one.
* `get_document {document_id, owner}`, `list_documents {owner, status?, cursor?, limit?}`,
  `search {owner, query, limit?}`, `document_counts {owner}` (`{by_status, by_outcome,
  total}` of the live documents): reads. `owner` is required: the principal whose documents
  the reader may see, or null for every owner's (the gateway passes null only for a reader
  granted `gateway.read_all_documents`). Only a caller granted `archivist.choose_owner` (the
  gateway) may name it. Any other reader (a researcher) must carry a delegation
  (`bastion.security.delegation`); the read then sees what the delegation's subject may see,
  whatever `owner` says, and without a delegation it is refused (FORBIDDEN).
* `claim_invoice {document_id, issuer, invoice_number, total?, currency?, eligible}`: the
  duplicate rule (the validator); claims the invoice for the document atomically, or answers
  which document holds it (named only to an uploader who may read it: its own uploader, or
  one granted `gateway.read_all_documents`).
* the document-lifecycle methods of the gateway and the worker (`record_upload`,
  `delete_document`, `stored_file`, `set_status`, `stale_documents`, `move_document`, `stats`,
  `watch_events`): see `archivist_lifecycle`.
* `get_status`: liveness, uptime and documents by status.

An unknown or deleted document is `DOCUMENT_NOT_FOUND` (-32051); so is another owner's, with
`data.reason` `not_owner` for the gateway's audit record. The repository is synchronous; every
call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.pipeline.agents.archivist_lifecycle import (
    OwnedRef,
    add_lifecycle_methods,
    not_found,
)
from bastion.pipeline.agents.common import DocumentRef, add_status_method
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.archive_types import (
    MAX_LIST_LIMIT,
    NOT_OWNER,
    DocumentDeletedError,
    DocumentNotFoundError,
    readable_by,
)
from bastion.pipeline.model import (
    CHOOSE_OWNER_ACTION,
    CHOOSE_OWNER_AGENT,
    READ_ALL_ACTION,
    READ_ALL_AGENT,
    ExtractionResult,
    ValidationResult,
)
from bastion.pipeline.stores import object_store
from bastion.protocol.errors import FORBIDDEN, INVALID_PARAMS, RpcError
from bastion.runtime import AgentDefinition, MethodRegistry
from bastion.security import policy_store
from bastion.storage import DocumentStatus, ObjectStore, shared_engine

NAME = "archivist"
MAX_QUERY_CHARS = 500


class ArchiveParams(DocumentRef):
    result: ExtractionResult
    validation: ValidationResult
    # When the orchestrator had the extraction and the validation (Unix time): recorded as
    # the document's `extracted` and `validated` history events.
    extracted_at: float | None = Field(default=None, ge=0)
    validated_at: float | None = Field(default=None, ge=0)


class ReadScope(BaseModel):
    """Whose documents a read may see: `owner`'s, or every owner's when it is null. Required,
    so that no read is unscoped by omission."""

    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(max_length=256)


class GetParams(DocumentRef, ReadScope):
    pass


class ListParams(ReadScope):
    status: DocumentStatus | None = None
    cursor: str | None = Field(default=None, max_length=512)
    limit: int = Field(default=50, ge=1, le=MAX_LIST_LIMIT)


class SearchParams(ReadScope):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(default=20, ge=1, le=MAX_LIST_LIMIT)


class ClaimParams(DocumentRef):
    issuer: str = Field(max_length=512)
    invoice_number: str = Field(max_length=128)
    total: str | None = Field(default=None, max_length=64)  # decimal text, e.g. "1487.5"
    currency: str | None = Field(default=None, max_length=16)
    # False when the document's other rules make it invalid: checked, but it claims nothing.
    eligible: bool


def bad_cursor() -> RpcError:
    return RpcError(
        INVALID_PARAMS,
        data=[
            {
                "field": "cursor",
                "problem": "not a cursor from this archive: pass `next_cursor` of the previous"
                " page unchanged, or leave it out for the first page",
            }
        ],
    )


def build_registry(
    repo: ArchiveRepository,
    reads_all: Callable[[str], bool] = lambda _owner: False,
    chooses_owner: Callable[[str], bool] = lambda _caller: False,
    *,
    store: ObjectStore | None = None,
    poll_seconds: float = 0.2,
) -> MethodRegistry:
    """The Archivist's methods over `repo`; `reads_all(principal)`: whether the policy grants
    `principal` every owner's documents (a duplicate finding then names the holder);
    `chooses_owner(caller)`: whether `caller` may name the owner a read is for; `store`: where
    deleted documents' bytes go from; `poll_seconds`: how often `watch_events` reads history."""
    registry = MethodRegistry()
    counts = {"archived": 0, "reprocessed": 0, "not_found": 0}

    def scope(params: ReadScope | OwnedRef, ctx: CallContext) -> str | None:
        """Whose documents this read may see: the delegation's subject's, else `owner`."""
        delegation = ctx.delegation
        if delegation is not None:
            return None if reads_all(delegation.subject) else delegation.subject
        if not chooses_owner(ctx.principal):
            raise RpcError(
                FORBIDDEN,
                f"{ctx.principal} reads the archive only on someone's behalf: the call needs a "
                "delegation naming whom it is for",
            )
        return params.owner

    @registry.method("archive")
    async def archive(params: ArchiveParams, ctx: CallContext) -> dict[str, Any]:
        """Store a document's extraction and validation; idempotent on the document id."""
        try:
            reprocessed = await asyncio.to_thread(
                repo.archive,
                params.document_id,
                params.result,
                params.validation,
                correlation_id=ctx.correlation_id,
                principal=ctx.principal,
                # result.findings (the guardrails') are stored as guardrail findings by archive().
                text_excerpt=params.result.text_excerpt or None,
                extracted_at=params.extracted_at,
                validated_at=params.validated_at,
            )
        except (DocumentNotFoundError, DocumentDeletedError):
            counts["not_found"] += 1
            raise not_found(params.document_id) from None
        counts["reprocessed" if reprocessed else "archived"] += 1
        return {
            "document_id": params.document_id,
            "reprocessed": reprocessed,
            "outcome": params.validation.outcome,
        }

    @registry.method("get_document")
    async def get_document(params: GetParams, ctx: CallContext) -> dict[str, Any]:
        """A document's status, outcome, fields, line items, findings and history."""
        owner = scope(params, ctx)
        doc = await asyncio.to_thread(repo.get_document, params.document_id)
        if doc is None or doc["deleted_at"] is not None:
            raise not_found(params.document_id)
        if not readable_by(doc["owner"], owner):
            raise not_found(params.document_id, NOT_OWNER)
        return doc

    @registry.method("list_documents")
    async def list_documents(params: ListParams, ctx: CallContext) -> dict[str, Any]:
        """Documents newest first, one page at a time (`next_cursor` is None on the last)."""
        owner = scope(params, ctx)
        try:
            docs, next_cursor = await asyncio.to_thread(
                repo.list_documents,
                params.status,
                params.cursor,
                params.limit,
                owner=owner,
            )
        except ValueError:
            raise bad_cursor() from None
        return {"documents": docs, "next_cursor": next_cursor}

    @registry.method("search")
    async def search(params: SearchParams, ctx: CallContext) -> dict[str, Any]:
        """Full-text search over issuer, customer, invoice number, text and filename."""
        owner = scope(params, ctx)
        results = await asyncio.to_thread(repo.search, params.query, params.limit, owner=owner)
        return {"results": results}

    @registry.method("document_counts")
    async def document_counts(params: ReadScope, ctx: CallContext) -> dict[str, Any]:
        """The reader's live documents by status and by outcome (zeros included), and in all."""
        owner = scope(params, ctx)
        return await asyncio.to_thread(repo.document_counts, owner)

    @registry.method("claim_invoice")
    async def claim_invoice(params: ClaimParams) -> dict[str, Any]:
        """Claim the issuer and invoice number for the document, or say who holds them."""
        try:
            claim = await asyncio.to_thread(
                repo.claim_invoice,
                params.document_id,
                params.issuer,
                params.invoice_number,
                total=params.total,
                currency=params.currency,
                eligible=params.eligible,
                reads_all=reads_all,
            )
        except (DocumentNotFoundError, DocumentDeletedError):
            raise not_found(params.document_id) from None
        return claim.model_dump()

    add_lifecycle_methods(registry, repo, scope, store=store, poll_seconds=poll_seconds)

    # Documents by status: one small GROUP BY, on the loop (the status callback is synchronous).
    add_status_method(
        registry, NAME, lambda: {"archive_calls": dict(counts), "documents": repo.status_counts()}
    )
    return registry


def definition(settings: Settings) -> AgentDefinition:
    """The Archivist agent on the archive in `settings.database_url()`."""
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    policy = policy_store(settings)

    def reads_all(principal: str) -> bool:
        return policy.decide(principal, READ_ALL_AGENT, READ_ALL_ACTION)[0]

    def chooses_owner(principal: str) -> bool:
        return policy.decide(principal, CHOOSE_OWNER_AGENT, CHOOSE_OWNER_ACTION)[0]

    return AgentDefinition(
        name=NAME,
        description="Keeps the document archive: stores results, answers reads and searches.",
        registry=build_registry(
            repo,
            reads_all,
            chooses_owner,
            store=object_store(settings),
            poll_seconds=settings.events.poll_interval_seconds,
        ),
        skills=[
            {
                "id": "archive",
                "name": "Document archive",
                "description": "Stores extracted and validated documents; lists, reads and"
                " searches them; finds duplicate invoices.",
                "tags": ["archive", "documents", "search"],
            }
        ],
    )
