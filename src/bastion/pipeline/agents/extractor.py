"""The Extractor agent: `extract {document_id, sha256}` reads a document's bytes from the object
store (named by their SHA-256, checked again after reading) and extracts them.

Extraction runs in the sandbox's warm worker processes, with a per-document time and memory
limit, so a hostile PDF can cost a worker but never the agent. A document that cannot be
processed is answered with DocumentRejected (-32050) and its reason code in `data.reason`; the
worker sends it to the dead-letter queue with that reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bastion.config import Settings
from bastion.pipeline.agents.common import StoredDocumentRef, add_status_method
from bastion.pipeline.extract.ocr import OcrOptions
from bastion.pipeline.extract.sandbox import ExtractionSandbox
from bastion.pipeline.model import ExtractionError
from bastion.pipeline.stores import object_store
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, DOCUMENT_REJECTED, RpcError
from bastion.runtime import AgentDefinition, MethodRegistry
from bastion.storage import ObjectNotFoundError, sha256_hex

NAME = "extractor"


def definition(settings: Settings) -> AgentDefinition:
    p = settings.pipeline
    store = object_store(settings)
    sandbox = ExtractionSandbox(
        p.extraction_workers,
        timeout_seconds=p.extraction_timeout_seconds,
        memory_mb=p.extraction_memory_mb,
        max_pages=p.max_pages,
        ocr=OcrOptions(
            enabled=p.ocr, languages=tuple(p.ocr_languages), command=p.tesseract_command
        ),
    )
    counts = {"extracted": 0, "rejected": 0}
    registry = MethodRegistry()

    @registry.method("extract")
    async def extract(params: StoredDocumentRef) -> dict[str, Any]:
        """Extract the document's type, fields and findings."""
        try:
            data = await asyncio.to_thread(store.get, params.sha256)
        except ObjectNotFoundError:
            raise RpcError(DOCUMENT_NOT_FOUND, data={"document_id": params.document_id}) from None
        if sha256_hex(data) != params.sha256:
            # The stored bytes are not the ones uploaded: refuse rather than archive them.
            counts["rejected"] += 1
            raise RpcError(
                DOCUMENT_REJECTED,
                data={"reason": "extract_failed", "detail": "stored bytes fail their checksum"},
            )
        try:
            result = await sandbox.extract(data)
        except ExtractionError as error:
            counts["rejected"] += 1
            raise RpcError(
                DOCUMENT_REJECTED, data={"reason": error.reason, "detail": error.detail[:300]}
            ) from None
        counts["extracted"] += 1
        return result.model_dump(mode="json")

    add_status_method(registry, NAME, lambda: {**counts, "sandbox_workers": len(sandbox.pids)})

    return AgentDefinition(
        name=NAME,
        description="Extracts document type and fields from PDFs in sandboxed workers.",
        registry=registry,
        skills=[
            {
                "id": "extract",
                "name": "Extract",
                "description": "Classify a PDF and extract its invoice, contract or report fields.",
                "tags": ["pdf", "extraction"],
            }
        ],
        on_startup=[sandbox.start],
        on_shutdown=[sandbox.close],
    )
