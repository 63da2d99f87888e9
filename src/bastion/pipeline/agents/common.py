"""What the pipeline agents share: document-id params, peer clients, the shared stores, status.

An agent calls a peer with its own credential (`agents.<self>.api_key`), never a borrowed one,
so every hop is authenticated, authorized and audited by the callee as that agent (the peer
clients are the runtime's, `bastion.runtime.PeerClients`, shared with the research agents).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.pipeline.model import DOCUMENT_ID_PATTERN
from bastion.runtime import MethodRegistry
from bastion.runtime import PeerClients as PeerClients
from bastion.runtime import credential as credential
from bastion.runtime import own_api_key as own_api_key
from bastion.runtime import peer_url as peer_url
from bastion.storage import SHA256_PATTERN


class DocumentRef(BaseModel):
    """Params naming one document by its id."""

    model_config = {"extra": "forbid"}

    document_id: str = Field(pattern=DOCUMENT_ID_PATTERN)


class StoredDocumentRef(DocumentRef):
    """Params naming one document and its bytes in the object store (their SHA-256)."""

    sha256: str = Field(pattern=SHA256_PATTERN)


def processing_timeout(settings: Settings, margin: float) -> float:
    """A call timeout that outlasts one extraction (its own limit) by `margin` seconds."""
    extraction = settings.pipeline.extraction_timeout_seconds
    return max(settings.client.timeout_seconds, extraction + margin)


def add_status_method(
    registry: MethodRegistry, agent: str, counters: Callable[[], dict[str, Any]] | None = None
) -> None:
    """Register `get_status`: the agent's name, uptime and its own counters."""
    started = time.monotonic()

    async def get_status() -> dict[str, Any]:
        """The agent's liveness, uptime and work counters."""
        status: dict[str, Any] = {
            "agent": agent,
            "status": "ok",
            "uptime_seconds": round(time.monotonic() - started, 1),
        }
        if counters is not None:
            # Counters may read the database: off the event loop.
            status.update(await asyncio.to_thread(counters))
        return status

    registry.add("get_status", get_status)
