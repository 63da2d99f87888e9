"""What the gateway reads from a request's path and query string, checked (400 otherwise)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from bastion.pipeline import MAX_LIST_LIMIT, is_document_id
from bastion.protocol.http_errors import invalid
from bastion.storage import DOCUMENT_STATUSES


def document_id(request: Request) -> str:
    """The `{id}` of the path, in the document-id format, else 400."""
    raw = str(request.path_params["id"])
    if not is_document_id(raw):
        raise invalid("not a document id: use the `id` of the upload's answer (doc_...)")
    return raw


def list_params(request: Request) -> dict[str, Any]:
    """The archivist's `list_documents` params from `?status=&cursor=&limit=`."""
    query = request.query_params
    params: dict[str, Any] = {}
    status = query.get("status")
    if status:
        if status not in DOCUMENT_STATUSES:
            raise invalid(f"status must be one of {', '.join(DOCUMENT_STATUSES)}")
        params["status"] = status
    if query.get("cursor"):
        params["cursor"] = query["cursor"]
    limit = query.get("limit")
    if limit:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIST_LIMIT:
            raise invalid(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
        params["limit"] = int(limit)
    return params
