"""The Orchestrator agent: `process_document {document_id, sha256}` runs one document through the
pipeline (the extractor reads the bytes by their sha256; the others know the document id).
`process_document {s3: {bucket, key, version_id?, etag?, size?}}` first ingests that S3 object
as the caller's document, then does the same (`bastion.pipeline.agents.s3_documents`).

    extractor.extract -> validator.validate -> archivist.archive

Each hop is a call under the orchestrator's own credential, carrying the correlation ID of the
incoming call (set by the worker from the upload), so the audit trail links the whole path.
A document the extractor rejects is answered with DocumentRejected (-32050, the reason in
`data.reason`), which the worker dead-letters; an unreachable or failing peer is
DependencyUnavailable (-32052), which the worker retries with backoff.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field, model_validator

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.pipeline.agents.common import (
    PeerClients,
    add_status_method,
    processing_timeout,
)
from bastion.pipeline.agents.s3_documents import S3Documents
from bastion.pipeline.model import DOCUMENT_ID_PATTERN
from bastion.pipeline.s3_ingest import S3Ref
from bastion.protocol.errors import (
    DEPENDENCY_UNAVAILABLE,
    DOCUMENT_NOT_FOUND,
    DOCUMENT_REJECTED,
    RpcError,
)
from bastion.runtime import AgentDefinition, AgentUnreachable, MethodRegistry, RpcCallError
from bastion.storage import SHA256_PATTERN

NAME = "orchestrator"
PEERS = ("extractor", "validator", "archivist")
# Errors a peer reports about the document itself: passed on unchanged, never retried.
_DOCUMENT_ERRORS = frozenset({DOCUMENT_REJECTED, DOCUMENT_NOT_FOUND})


class ProcessParams(BaseModel):
    """A stored document `{document_id, sha256}`, or an S3 object to ingest first `{s3}`."""

    model_config = {"extra": "forbid"}

    document_id: str | None = Field(default=None, pattern=DOCUMENT_ID_PATTERN)
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    s3: S3Ref | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ProcessParams:
        stored = (self.document_id, self.sha256)
        if (None in stored) if self.s3 is None else (stored != (None, None)):
            raise ValueError("give either document_id and sha256, or s3")
        return self


def definition(settings: Settings) -> AgentDefinition:
    peers = PeerClients(settings, NAME, PEERS, timeout_seconds=processing_timeout(settings, 10))
    counts = {"processed": 0, "rejected": 0, "failed": 0}
    s3_documents = S3Documents(settings, lambda: peers["archivist"])
    registry = MethodRegistry()

    async def hop(peer: str, method: str, params: dict[str, Any]) -> Any:
        try:
            return await peers[peer].call(method, params)
        except RpcCallError as error:
            if error.code in _DOCUMENT_ERRORS:
                counts["rejected"] += 1
                raise RpcError(error.code, data=error.data) from None
            counts["failed"] += 1
            raise RpcError(
                DEPENDENCY_UNAVAILABLE,
                f"{peer}.{method} failed: {error.message} (code {error.code})",
                data={"agent": peer, "code": error.code},
            ) from None
        except AgentUnreachable as error:
            counts["failed"] += 1
            raise RpcError(
                DEPENDENCY_UNAVAILABLE,
                f"{peer} is unreachable: {error.reason}",
                data={"agent": peer},
            ) from None

    @registry.method("process_document")
    async def process_document(params: ProcessParams, ctx: CallContext) -> dict[str, Any]:
        """Extract, validate and archive one stored document (or S3 object, ingested first)."""
        if params.s3 is not None:
            return await s3_documents.process(params.s3, ctx.principal, ctx.correlation_id, run)
        assert params.document_id is not None and params.sha256 is not None
        return await run(params.document_id, params.sha256)

    async def run(doc: str, sha256: str) -> dict[str, Any]:
        result = await hop("extractor", "extract", {"document_id": doc, "sha256": sha256})
        extracted_at = time.time()
        # The validator needs the fields, not the text excerpt that is kept for search.
        fields_only = {**result, "text_excerpt": ""}
        validation = await hop("validator", "validate", {"document_id": doc, "result": fields_only})
        archived = await hop(
            "archivist",
            "archive",
            {
                "document_id": doc,
                "result": result,
                "validation": validation,
                # Recorded as the document's history (and its live events) when it is archived.
                "extracted_at": extracted_at,
                "validated_at": time.time(),
            },
        )
        counts["processed"] += 1
        reprocessed = isinstance(archived, dict) and bool(archived.get("reprocessed"))
        return {
            "document_id": doc,
            "status": "archived",
            "outcome": validation.get("outcome"),
            "document_type": result.get("document_type"),
            "reprocessed": reprocessed,
        }

    add_status_method(registry, NAME, lambda: dict(counts))

    return AgentDefinition(
        name=NAME,
        description="Runs each document through extraction, validation and archiving.",
        registry=registry,
        skills=[
            {
                "id": "process_document",
                "name": "Process document",
                "description": "Extract, validate and archive one uploaded document.",
                "tags": ["pipeline", "orchestration"],
            }
        ],
        on_shutdown=[peers.aclose, s3_documents.aclose],
    )
