"""The console's Documents view: counts, the searchable list, and one document's detail.

    GET /console/documents              counts by status and outcome; the list (`?status=`,
                                        `?q=` full-text search, `?cursor=` the next page)
    GET /console/documents/counts       the counts as JSON (the page script's refresh)
    GET /console/documents/{id}         the detail: fields with confidence and evidence, line
                                        items, findings, history, the audit path and the trace
    GET /console/documents/{id}/summary one list row as JSON (a row the page script adds live)

Every route is authorized as `gateway.console_documents` and reads through the archivist with
the caller's owner scope (`ConsoleDeps.scope`): a principal without
`gateway.read_all_documents` sees, counts and opens its own documents only, and another owner's
document is the same 404 page as a missing one. The audit path and the trace come from the
optional `ConsoleDeps.audit_path(correlation_id)` and `ConsoleDeps.trace(correlation_id)`;
without them (or when they fail) the page says so and shows the rest.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.core.context import CallContext
from bastion.pipeline import OUTCOMES
from bastion.protocol.http_errors import invalid
from bastion.storage import DOCUMENT_STATUSES
from bastion.web.archivist import call_archivist
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.pages import secure_headers
from bastion.web.console.views.waterfall import WIDTH, layout
from bastion.web.params import checked_document_id, list_filters

VIEW = "documents"
MAX_QUERY_CHARS = 500  # the archivist's limit on a search
log = structlog.get_logger("bastion.console")


def when(value: Any) -> str:
    """A Unix time (or an ISO string) as `YYYY-MM-DD HH:MM:SS UTC`; empty when unset."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def shown(value: Any) -> str:
    """A field's value as text (structured values as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def row(doc: dict[str, Any]) -> dict[str, Any]:
    """A list row of a document summary (what the template and the page script show)."""
    return {
        "id": doc["id"],
        "filename": doc.get("filename") or "",
        "status": doc.get("status") or "",
        "outcome": doc.get("outcome") or "",
        "uploaded": when(doc.get("created_at")),
        "owner": doc.get("owner") or "",
    }


def evidence_of(field: dict[str, Any]) -> dict[str, Any] | None:
    """The evidence a field was archived with, as display values (None: none stored)."""
    ev = field.get("evidence")
    if not isinstance(ev, dict):
        return None
    bbox = ev.get("bbox")
    return {
        "page": ev.get("page") if ev.get("page") is not None else field.get("page"),
        "rule": ev.get("rule") or "",
        "label": ev.get("label") or "",
        "bbox": ", ".join(f"{v:g}" for v in bbox) if isinstance(bbox, list) else "",
        "score": ev.get("score"),
        "arithmetic": ev.get("arithmetic") or "",
    }


def fields_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    fields = doc.get("fields") or {}
    return [
        {
            "name": name,
            "value": shown(f.get("value")),
            "confidence": f.get("confidence"),
            "page": f.get("page"),
            "evidence": evidence_of(f),
        }
        for name, f in fields.items()
    ]


async def optional_rows(
    source: Callable[[str], Awaitable[list[dict[str, Any]]]] | None, key: str | None, what: str
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(rows, None) from `source(key)`, or (None, why they are not shown)."""
    if source is None or not key:
        return None, f"The {what} is not available."
    try:
        return list(await source(key)), None
    except Exception as exc:  # a tracing or audit backend down must not take the page with it
        log.warning("console detail: source failed", source=what, error=str(exc))
        return None, f"The {what} could not be read just now. Reload the page to try again."


class DocumentsView:
    """The view's handlers."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    @property
    def page_size(self) -> int:
        return self.deps.settings.console.page_size

    async def _counts(self, call: CallContext) -> dict[str, Any]:
        params = {"owner": self.deps.scope(call)}
        counts: dict[str, Any] = await call_archivist(
            self.deps.archivist, "document_counts", params
        )
        return counts

    async def index(self, request: Request, call: CallContext) -> Response:
        query = request.query_params
        status = query.get("status") or ""
        text = (query.get("q") or "").strip()
        cursor = query.get("cursor") or ""
        if len(text) > MAX_QUERY_CHARS:
            raise invalid(f"the search is limited to {MAX_QUERY_CHARS} characters")
        filters = list_filters(status, cursor, self.page_size)
        owner = self.deps.scope(call)
        next_cursor = None
        if text:
            params = {"owner": owner, "query": text, "limit": self.page_size}
            found = await call_archivist(self.deps.archivist, "search", params)
            docs = [d for d in found["results"] if not status or d.get("status") == status]
        else:
            page = await call_archivist(
                self.deps.archivist, "list_documents", {**filters, "owner": owner}
            )
            docs, next_cursor = page["documents"], page.get("next_cursor")
        return self.deps.pages.render(
            request,
            "documents.html",
            principal=call.principal,
            view=VIEW,
            counts=await self._counts(call),
            statuses=DOCUMENT_STATUSES,
            outcomes=OUTCOMES,
            rows=[row(d) for d in docs],
            status_filter=status,
            q=text,
            cursor=cursor,
            next_cursor=next_cursor,
            first_page=not cursor and not text,
            page_size=self.page_size,
        )

    async def counts(self, _request: Request, call: CallContext) -> Response:
        return secure_headers(JSONResponse(await self._counts(call)))

    async def _document(self, request: Request, call: CallContext) -> dict[str, Any]:
        params = {
            "document_id": checked_document_id(str(request.path_params["id"])),
            "owner": self.deps.scope(call),
        }
        doc: dict[str, Any] = await call_archivist(self.deps.archivist, "get_document", params)
        return doc

    async def summary(self, request: Request, call: CallContext) -> Response:
        return secure_headers(JSONResponse(row(await self._document(request, call))))

    async def detail(self, request: Request, call: CallContext) -> Response:
        doc = await self._document(request, call)
        correlation_id = doc.get("correlation_id")
        audit_rows, audit_note = await optional_rows(
            self.deps.audit_path, correlation_id, "audit path"
        )
        spans, trace_note = await optional_rows(self.deps.trace, correlation_id, "trace")
        return self.deps.pages.render(
            request,
            "document.html",
            principal=call.principal,
            view=VIEW,
            doc=doc,
            uploaded=when(doc.get("created_at")),
            updated=when(doc.get("updated_at")),
            fields=fields_of(doc),
            line_items=doc.get("line_items") or [],
            findings=doc.get("findings") or [],
            history=[{**h, "when": when(h.get("at"))} for h in doc.get("history") or []],
            audit_rows=[{**r, "when": when(r.get("ts"))} for r in audit_rows or []],
            audit_note=audit_note,
            spans=spans,
            waterfall=layout(spans) if spans else None,
            waterfall_width=WIDTH,
            trace_note=trace_note,
        )


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    """The Documents view's routes, each authorized as `gateway.console_documents`."""
    view = DocumentsView(deps)
    return [
        Route("/console/documents", deps.page(VIEW, view.index), methods=["GET"]),
        Route("/console/documents/counts", deps.page(VIEW, view.counts), methods=["GET"]),
        Route("/console/documents/{id}", deps.page(VIEW, view.detail), methods=["GET"]),
        Route("/console/documents/{id}/summary", deps.page(VIEW, view.summary), methods=["GET"]),
    ]
