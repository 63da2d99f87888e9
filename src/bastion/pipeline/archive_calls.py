"""The archive as the processes that are not its owner see it: typed `archivist.*` calls.

The gateway (uploads, the watched folder, metrics, the live feed) and the worker (statuses, the
reconciler) change the archive only through the Archivist, under their own credential, so every
change is authorized, rate limited and audited like any call, and no host but the Archivist's
needs the archive's database. `ArchiveCalls` wraps one `AgentClient` to the archivist (its
replicas included) and turns its answers into the archive's types:

- DOCUMENT_NOT_FOUND -> `DocumentNotFoundError`, or `DocumentDeletedError` when the document was
  deleted;
- no answer, an open breaker, or any other refusal (the caller's credential or grant, a rate
  limit) -> `ArchiveUnavailable`, with the archivist's code and message: worth another try.

Calls carry the current correlation id (`bastion.core.context`), so the history rows they write
are the document's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.config import Settings
from bastion.pipeline.archive_types import (
    DELETED,
    ArchiveUnavailable,
    DocumentDeletedError,
    DocumentNotFoundError,
    StaleDocument,
    UploadRecord,
)
from bastion.protocol.errors import DOCUMENT_NOT_FOUND
from bastion.runtime import (
    AgentClient,
    AgentUnreachable,
    BreakerOpen,
    RpcCallError,
    peer_url,
)
from bastion.security import SecretValue

ARCHIVIST = "archivist"


def archivist_client(settings: Settings, principal: str, api_key: SecretValue) -> AgentClient:
    """A client to the archivist (or its replicas) under `principal`'s own key."""
    return AgentClient(
        peer_url(settings, principal, ARCHIVIST),
        api_key=api_key,
        settings=settings.client,
        principal=principal,
    )


class ArchiveCalls:
    """Typed calls to the archivist over `client`."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.client.call(method, params)
        except RpcCallError as exc:
            if exc.code == DOCUMENT_NOT_FOUND:
                data = exc.data if isinstance(exc.data, dict) else {}
                document_id = str(params.get("document_id", ""))
                if data.get("reason") == DELETED:
                    raise DocumentDeletedError(document_id) from None
                raise DocumentNotFoundError(document_id) from None
            raise ArchiveUnavailable(f"archivist.{method} answered {exc}") from None
        except (AgentUnreachable, BreakerOpen) as exc:
            raise ArchiveUnavailable(f"archivist.{method}: {exc}") from None

    async def record_upload(
        self,
        sha256: str,
        *,
        owner: str,
        uploaded_by: str,
        filename: str,
        content_type: str,
        size: int,
    ) -> UploadRecord:
        """The owner's document for these bytes (`created` when this upload made it)."""
        answer = await self._call(
            "record_upload",
            {
                "sha256": sha256,
                "owner": owner,
                "uploaded_by": uploaded_by,
                "filename": filename,
                "content_type": content_type,
                "size": size,
            },
        )
        return UploadRecord(
            str(answer["id"]), bool(answer["created"]), str(answer["status"]), answer["outcome"]
        )

    async def set_status(
        self,
        document_id: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> str:
        """Move the document to `status`; the SHA-256 of its bytes."""
        params: dict[str, Any] = {"document_id": document_id, "status": status}
        if reason is not None:
            params["reason"] = reason
        if detail is not None:
            params["detail"] = detail[:500]
        answer = await self._call("set_status", params)
        return str(answer["sha256"])

    async def stale_documents(
        self, status: str, older_than_seconds: float, limit: int
    ) -> list[StaleDocument]:
        """Live documents in `status` unchanged for `older_than_seconds`, oldest first."""
        answer = await self._call(
            "stale_documents",
            {"status": status, "older_than_seconds": older_than_seconds, "limit": limit},
        )
        return [
            StaleDocument(
                str(d["document_id"]), d["correlation_id"], str(d["filename"]), d["updated_at"]
            )
            for d in answer["documents"]
        ]

    async def move_document(
        self,
        doc: StaleDocument,
        from_status: str,
        to_status: str,
        *,
        detail: str,
        reason: str | None = None,
    ) -> bool:
        """Move `doc` only if its status has not changed since it was read."""
        params: dict[str, Any] = {
            "document_id": doc.id,
            "from_status": from_status,
            "to_status": to_status,
            "updated_at": doc.updated_at,
            "detail": detail[:500],
        }
        if reason is not None:
            params["reason"] = reason
        answer = await self._call("move_document", params)
        return bool(answer["moved"])

    async def stats(self) -> dict[str, int]:
        """Documents by status, plus `deleted`."""
        answer = await self._call("stats", {})
        return {str(k): int(v) for k, v in answer["documents"].items()}

    async def watch_events(self, after: int | None) -> AsyncIterator[dict[str, Any]]:
        """`{events, cursor}` batches of history rows after `after` (None: from now on)."""
        try:
            async for batch in self.client.stream("watch_events", {"after": after}):
                yield batch
        except RpcCallError as exc:
            raise ArchiveUnavailable(f"archivist.watch_events answered {exc}") from None
        except (AgentUnreachable, BreakerOpen) as exc:
            raise ArchiveUnavailable(f"archivist.watch_events: {exc}") from None

    async def aclose(self) -> None:
        await self.client.aclose()
