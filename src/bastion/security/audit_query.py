"""Searching the audit trail for the operator console: filters, newest first, keyset pages.

`AuditFilters` is one search (every field optional, all of them ANDed); `AuditFilters.from_query`
reads it from URL query parameters and `to_query` writes it back, so a chart bar can link to
the records behind it. `search(engine, filters, cursor=..., limit=...)` returns an `AuditPage`:
rows newest first by (ts, id), and an opaque cursor for the next page (`bastion.storage.paging`)
that stays stable while new records arrive.

Filters: `correlation_id`, `principal`, `agent`, `chain` (exact); `method` (exact, or a prefix
when it ends with `*`); `outcome` (exact, or a class: `ok`, `denied` = any `denied:*`, `error`
= `error` or `error:*`, `guardrail` = any `guardrail:*`); `since` <= ts < `until` (epoch
seconds); and the chart links' `auth_reason`, `waf_rule` and `guardrail_type`
(`bastion.security.audit_details`). Indexes: `ix_audit_ts` (ts, id) serves the order and the
time range, `ix_audit_outcome_ts` an outcome, and the principal and correlation id have theirs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, or_, select, tuple_

from bastion.security.audit_details import (
    AUTH_REASONS,
    auth_reason_sql,
    guardrail_type_sql,
    waf_rule_sql,
)
from bastion.storage import AuditRecord, decode_cursor, encode_cursor

__all__ = ["MAX_LIMIT", "OUTCOME_CLASSES", "AuditFilters", "AuditPage", "AuditRow", "search"]

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
OUTCOME_CLASSES = ("ok", "denied", "error", "guardrail")
_MAX_TEXT = 256

_ROW_COLUMNS = (
    AuditRecord.id,
    AuditRecord.ts,
    AuditRecord.chain,
    AuditRecord.seq,
    AuditRecord.agent,
    AuditRecord.principal,
    AuditRecord.auth_method,
    AuditRecord.method,
    AuditRecord.outcome,
    AuditRecord.status,
    AuditRecord.correlation_id,
    AuditRecord.latency_ms,
    AuditRecord.client,
    AuditRecord.detail,
)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """One audit search; None means "any". See the module docstring for each field."""

    correlation_id: str | None = None
    principal: str | None = None
    method: str | None = None
    outcome: str | None = None
    agent: str | None = None
    chain: str | None = None
    since: float | None = None
    until: float | None = None
    auth_reason: str | None = None
    waf_rule: str | None = None
    guardrail_type: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in ("since", "until"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{f.name} must be epoch seconds (a number)")
                if not math.isfinite(value):
                    raise ValueError(f"{f.name} must be a finite number of epoch seconds")
            elif not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
                raise ValueError(f"{f.name} must be a non-empty text of at most {_MAX_TEXT} chars")
        if self.auth_reason is not None and self.auth_reason not in AUTH_REASONS:
            raise ValueError(f"auth_reason must be one of {', '.join(AUTH_REASONS)}")
        if self.method == "*":
            raise ValueError("method `*` matches everything: leave the filter out")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> AuditFilters:
        """Filters from URL query parameters; ValueError naming the bad or unknown one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known - {"cursor", "limit"})
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}: use {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name in known & set(params):
            raw = params[name]
            if name in ("since", "until"):
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ValueError(f"{name} must be epoch seconds (a number)") from None
            else:
                values[name] = raw
        return cls(**values)

    def to_query(self) -> dict[str, str]:
        """The filters that are set, as URL query parameters (`from_query` reads them back)."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is not None:
                out[name] = repr(float(value)) if name in ("since", "until") else str(value)
        return out

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE conditions of these filters."""
        r = AuditRecord
        conds: list[ColumnElement[bool]] = []
        for name in ("correlation_id", "principal", "agent", "chain"):
            value = getattr(self, name)
            if value is not None:
                conds.append(getattr(r, name) == value)
        if self.method is not None:
            if self.method.endswith("*"):
                conds.append(r.method.startswith(self.method[:-1], autoescape=True))
            else:
                conds.append(r.method == self.method)
        if self.outcome is not None:
            conds.append(_outcome_condition(self.outcome))
        if self.since is not None:
            conds.append(r.ts >= self.since)
        if self.until is not None:
            conds.append(r.ts < self.until)
        if self.auth_reason is not None:
            conds.append(auth_reason_sql() == self.auth_reason)
        if self.waf_rule is not None:
            conds.append(waf_rule_sql(self.waf_rule))
        if self.guardrail_type is not None:
            conds.append(guardrail_type_sql(self.guardrail_type))
        return conds


def _outcome_condition(outcome: str) -> ColumnElement[bool]:
    r = AuditRecord
    if outcome == "denied":
        return r.outcome.startswith("denied:")
    if outcome == "guardrail":
        return r.outcome.startswith("guardrail:")
    if outcome == "error":
        return or_(r.outcome == "error", r.outcome.startswith("error:"))
    return r.outcome == outcome


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit record as the console shows it (no hashes)."""

    ts: float
    chain: str
    seq: int
    agent: str
    principal: str
    auth_method: str
    method: str
    outcome: str
    status: int
    correlation_id: str
    latency_ms: float
    client: str
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a search; `next_cursor` is None on the last page."""

    rows: list[AuditRow]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "next_cursor": self.next_cursor}


def _decode(cursor: str) -> tuple[float, int]:
    ts, row_id = decode_cursor(cursor)
    if not math.isfinite(ts) or not row_id.isdigit() or len(row_id) > 19:
        raise ValueError("invalid cursor")
    return ts, int(row_id)


def search_statement(
    filters: AuditFilters, after: tuple[float, int] | None, limit: int
) -> Select[*tuple[Any, ...]]:
    """The SELECT of one page (exposed for EXPLAIN in tests and benchmarks)."""
    r = AuditRecord
    conds = filters.conditions()
    if after is not None:
        conds.append(tuple_(r.ts, r.id) < tuple_(after[0], after[1]))
    return select(*_ROW_COLUMNS).where(*conds).order_by(r.ts.desc(), r.id.desc()).limit(limit)


def search(
    engine: Engine,
    filters: AuditFilters | None = None,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """Records matching `filters`, newest first; `limit` is capped at `MAX_LIMIT`.

    ValueError for a limit below 1 or a cursor this function did not hand out.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    limit = min(limit, MAX_LIMIT)
    after = _decode(cursor) if cursor else None
    stmt = search_statement(filters or AuditFilters(), after, limit + 1)
    with engine.connect() as conn:
        found = conn.execute(stmt).all()
    more = len(found) > limit
    page = found[:limit]
    rows = [AuditRow(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in page]
    nxt = encode_cursor(float(page[-1].ts), str(page[-1].id)) if more and page else None
    return AuditPage(rows, nxt)
