"""What the gateway reads from a request's path and query string (or an MCP tool's arguments),
checked (400 `invalid_request` otherwise)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from bastion.pipeline import MAX_LIST_LIMIT, is_document_id
from bastion.protocol.http_errors import invalid
from bastion.storage import DOCUMENT_STATUSES


def checked_document_id(raw: str) -> str:
    """`raw` if it is in the document-id format, else 400."""
    if not is_document_id(raw):
        raise invalid("not a document id: use the `id` of the upload's answer (doc_...)")
    return raw


def document_id(request: Request) -> str:
    """The `{id}` of the path, in the document-id format, else 400."""
    return checked_document_id(str(request.path_params["id"]))


def checked_limit(limit: int | str) -> int:
    """A page size from 1 to MAX_LIST_LIMIT (a whole number, as text too), else 400."""
    text = str(limit)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
        raise invalid(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
    return int(text)


def list_filters(status: str | None, cursor: str | None, limit: int | str | None) -> dict[str, Any]:
    """The archivist's `list_documents` params from the caller's filters (empty: unset)."""
    params: dict[str, Any] = {}
    if status:
        if status not in DOCUMENT_STATUSES:
            raise invalid(f"status must be one of {', '.join(DOCUMENT_STATUSES)}")
        params["status"] = status
    if cursor:
        params["cursor"] = cursor
    if limit is not None and limit != "":
        params["limit"] = checked_limit(limit)
    return params


def list_params(request: Request) -> dict[str, Any]:
    """The archivist's `list_documents` params from `?status=&cursor=&limit=`."""
    query = request.query_params
    return list_filters(query.get("status"), query.get("cursor"), query.get("limit"))
