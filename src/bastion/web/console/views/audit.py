"""The console's Audit view: search the audit trail, and each hash chain's verification.

    GET /console/audit?correlation_id=&principal=&method=&outcome=&agent=&since=&until=&cursor=

Authorized as `gateway.console_audit`. The filters are `AuditFilters` (`bastion.security`):
empty fields and `outcome=any` mean "any"; `since`/`until` are epoch seconds or UTC ISO times;
the chart links' own filters (`auth_reason`, `waf_rule`, `guardrail_type`, `chain`) are kept
as they come. Records show newest first, a page at a time (keyset: the "Older" link carries the
cursor). A bad filter or cursor is a 400 page with the reason, never a 500. Below the results,
every chain's verification (`audit_chains.ChainWatch`: ok, problems or unchecked).

`audit_path(settings, correlation_id)` is one request's path through the agents, for the
Documents view (`audit_path_source(settings)`: the same, awaitable, for `ConsoleDeps.audit_path`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.security import AuditFilters, AuditPage, search
from bastion.storage import shared_engine
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.views.audit_chains import ChainWatch
from bastion.web.console.views.instants import parse_instant, utc_text
from bastion.web.console.views.security_charts import AUDIT_PATH

VIEW = "audit"
PAGE_SIZE = 50
PATH_LIMIT = 200
DETAIL_CHARS = 300
# The search form's fields, in order: (name, label, hint).
FIELDS = (
    ("correlation_id", "Correlation ID", ""),
    ("principal", "Principal", ""),
    ("method", "Method", "exact, or a prefix ending in *"),
    ("agent", "Agent", ""),
    ("since", "Since", "UTC, e.g. 2026-12-07T22:30"),
    ("until", "Until", "UTC, before this time"),
)
OUTCOMES = (
    ("any", "Any"),
    ("ok", "ok"),
    ("denied", "denied (any reason)"),
    ("error", "error"),
    ("guardrail", "guardrail"),
)
# The filters the chart links add, which the form keeps as they are.
KEPT = ("auth_reason", "waf_rule", "guardrail_type", "chain")


@dataclass(frozen=True, slots=True)
class Query:
    """A search as the URL gave it (`raw`, for the form) and as filters."""

    raw: dict[str, str]
    filters: AuditFilters
    cursor: str | None


def read_query(params: dict[str, str]) -> Query:
    """The search in a query string; ValueError naming what is wrong."""
    raw = {k: v for k, v in params.items() if v.strip() and not (k == "outcome" and v == "any")}
    cursor = raw.pop("cursor", None)
    raw.pop("limit", None)
    values = dict(raw)
    for name in ("since", "until"):
        if name in values:
            values[name] = repr(parse_instant(name, values[name]))
    return Query(raw, AuditFilters.from_query(values), cursor)


def shown_row(row: Any) -> dict[str, Any]:
    detail = row.detail or ""
    if len(detail) > DETAIL_CHARS:
        detail = detail[: DETAIL_CHARS - 1] + "…"
    return {
        "time": utc_text(row.ts),
        "agent": row.agent,
        "principal": row.principal,
        "method": row.method,
        "outcome": row.outcome,
        "outcome_class": row.outcome.split(":", 1)[0],
        "status": row.status,
        "latency": f"{row.latency_ms:.1f} ms",
        "correlation_id": row.correlation_id,
        "correlation_href": f"{AUDIT_PATH}?{urlencode({'correlation_id': row.correlation_id})}",
        "detail": detail,
    }


class AuditView:
    """The handler of the Audit view, and the gateway's chain watch."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self.chains = ChainWatch(deps.settings)

    async def index(self, request: Request, call: CallContext) -> Response:
        params = dict(request.query_params)
        engine = shared_engine(self.deps.settings.database_url())
        try:
            query = read_query(params)
            page = await asyncio.to_thread(
                search, engine, query.filters, cursor=query.cursor, limit=PAGE_SIZE
            )
        except ValueError as err:
            raw = {k: v for k, v in params.items() if k not in ("cursor", "limit")}
            return await self._render(request, call, raw, None, status=400, error=str(err))
        return await self._render(request, call, query.raw, page, paged=bool(query.cursor))

    async def _render(
        self,
        request: Request,
        call: CallContext,
        raw: dict[str, str],
        page: AuditPage | None,
        *,
        status: int = 200,
        error: str | None = None,
        paged: bool = False,
    ) -> Response:
        chains = await self.chains.status()
        outcome = raw.get("outcome", "any")
        outcomes = list(OUTCOMES)
        if outcome not in dict(OUTCOMES):
            outcomes.append((outcome, outcome))
        older = None
        if page is not None and page.next_cursor:
            older = f"{AUDIT_PATH}?{urlencode({**raw, 'cursor': page.next_cursor})}"
        return self.deps.pages.render(
            request,
            "audit.html",
            principal=call.principal,
            view=VIEW,
            status=status,
            error=error,
            fields=FIELDS,
            values=raw,
            readable=_readable_times(raw),
            outcome=outcome,
            outcomes=outcomes,
            kept=[(name, raw[name]) for name in KEPT if name in raw],
            rows=[shown_row(r) for r in page.rows] if page is not None else [],
            searched=page is not None,
            older=older,
            newest=f"{AUDIT_PATH}?{urlencode(raw)}" if paged else None,
            chains=[
                {**c.to_dict(), "last": utc_text(c.last_ts), "checked": utc_text(c.checked_at)}
                for c in chains.chains
            ],
            chains_note=chains.note,
        )


def _readable_times(raw: dict[str, str]) -> dict[str, str]:
    """`since` and `until` as UTC texts, for the form to show beside epoch seconds."""
    out: dict[str, str] = {}
    for name in ("since", "until"):
        try:
            out[name] = utc_text(parse_instant(name, raw[name]))
        except (KeyError, ValueError):
            continue
    return out


def audit_path(settings: Settings, correlation_id: str) -> list[dict[str, Any]]:
    """The audit records of one correlation id, oldest first, `PATH_LIMIT` at most (the newest
    ones when there are more), as dicts: ts, agent, principal, method, outcome, status,
    latency_ms. ValueError for an empty or over-long id. Blocking: call it from a thread."""
    engine = shared_engine(settings.database_url())
    page = search(engine, AuditFilters(correlation_id=correlation_id), limit=PATH_LIMIT)
    keys = ("ts", "agent", "principal", "method", "outcome", "status", "latency_ms")
    return [{k: getattr(row, k) for k in keys} for row in reversed(page.rows)]


def audit_path_source(settings: Settings) -> Callable[[str], Awaitable[list[dict[str, Any]]]]:
    """`audit_path` of `settings` as the Documents view calls it (`ConsoleDeps.audit_path`):
    awaitable, read in a thread."""

    async def source(correlation_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(audit_path, settings, correlation_id)

    return source


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    view = AuditView(deps)
    return [Route("/console/audit", deps.page(VIEW, view.index), methods=["GET"])]
