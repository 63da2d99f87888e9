"""What the gateway reads from a request's path and query string, checked (400 otherwise)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from bastion.pipeline.archive_repo import MAX_LIST_LIMIT
from bastion.storage.pipeline_models import DOCUMENT_STATUSES
from bastion.web.errors import invalid

_ID_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def document_id(request: Request) -> str:
    """The `{id}` of the path: a SHA-256 hex digest (lower-cased), else 400."""
    raw = str(request.path_params["id"])
    if not _ID_RE.match(raw):
        raise invalid("a document id is the SHA-256 of the file: 64 hexadecimal digits")
    return raw.lower()


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
