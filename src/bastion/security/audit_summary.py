"""Security summaries of the audit trail for the console's charts, counted in SQL.

`security_summary(engine, since, until, buckets=N)` splits [since, until) into N equal time
buckets and returns one `Chart` per kind of refusal or intervention:

- `auth_failures`: `denied:authenticate` by bounded reason (`audit_details.AUTH_REASONS`);
- `rbac_denials`: `denied:authorize` by (principal, method), the top N;
- `rate_limited`: `denied:rate_limit` by principal, the top N;
- `waf_blocks`: `denied:waf` by rule id (a block naming two rules counts for both);
- `guardrail_actions`: `guardrail.scan` records by action (`BLOCKED`, `ANONYMIZED`);
- `guardrail_types`: the same records by finding type (one decision may list several).

Each chart has a total and per-bucket series, and each bar its own series and the
`AuditFilters` that list the records behind it. Every count is a GROUP BY over the
`ix_audit_outcome_ts` (outcome, ts) index: the WAF and guardrail charts group by `detail` too and
split it here, which stays small because identical details collapse in SQL first.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    cast,
    func,
    literal,
    select,
    tuple_,
)

from bastion.security.audit_details import auth_reason_sql, guardrail_types, waf_rules
from bastion.security.audit_query import AuditFilters
from bastion.storage import AuditRecord

__all__ = ["Bar", "Chart", "SecuritySummary", "security_summary"]

MAX_BUCKETS = 500
DEFAULT_TOP = 10

AUTH = "denied:authenticate"
AUTHORIZE = "denied:authorize"
RATE_LIMIT = "denied:rate_limit"
WAF = "denied:waf"
GUARDRAIL_METHOD = "guardrail.scan"
# `guardrail:<Action>` for the actions that are audited (`bastion.guardrails.types.Action`).
GUARDRAIL_OUTCOMES = ("guardrail:BLOCKED", "guardrail:ANONYMIZED")


@dataclass(slots=True)
class Bar:
    """One bar of a chart: its label, count, per-bucket series and the search behind it."""

    label: str
    count: int
    series: list[int]
    filters: AuditFilters

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "series": self.series,
            "filters": self.filters.to_query(),
        }


@dataclass(slots=True)
class Chart:
    """One chart: its total, series, bars (largest first) and the search for all of it.

    `other` counts what the bars beyond the top N hold (for charts that keep the top N).
    """

    name: str
    total: int
    series: list[int]
    filters: AuditFilters
    bars: list[Bar] = field(default_factory=list)
    other: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "total": self.total,
            "series": self.series,
            "filters": self.filters.to_query(),
            "bars": [b.to_dict() for b in self.bars],
            "other": self.other,
        }


@dataclass(slots=True)
class SecuritySummary:
    """Every chart over [since, until), in `len(bucket_starts)` buckets of `bucket_seconds`."""

    since: float
    until: float
    bucket_seconds: float
    bucket_starts: list[float]
    charts: dict[str, Chart]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "bucket_seconds": self.bucket_seconds,
            "bucket_starts": self.bucket_starts,
            "charts": {name: c.to_dict() for name, c in self.charts.items()},
        }


@dataclass(frozen=True, slots=True)
class _Range:
    since: float
    until: float
    buckets: int

    @property
    def width(self) -> float:
        return (self.until - self.since) / self.buckets

    def index(self, raw: Any) -> int:
        """The bucket number SQL computed, clamped (floating-point rounding at the edges)."""
        return min(max(int(raw), 0), self.buckets - 1)

    def filters(self, **kw: str) -> AuditFilters:
        return AuditFilters(since=self.since, until=self.until, **kw)


def _bucket(conn: Connection, rng: _Range) -> ColumnElement[Any]:
    """floor((ts - since) / width) in SQL; ts >= since, so truncation is floor on SQLite."""
    offset = (AuditRecord.ts - literal(rng.since)) / literal(rng.width)
    if conn.dialect.name == "sqlite":
        return cast(offset, Integer)
    return cast(func.floor(offset), Integer)


def _series(rng: _Range, rows: Iterable[tuple[int, int]]) -> list[int]:
    out = [0] * rng.buckets
    for b, n in rows:
        out[rng.index(b)] += int(n)
    return out


@dataclass(frozen=True, slots=True)
class _Spec:
    """One chart: which records (`where`, and `link` the search for them), grouped by SQL
    `keys` (each with the filter that selects one group) or by the labels `split` finds in the
    detail (with its filter), the top N only when `ranked`."""

    name: str
    where: ColumnElement[bool]
    link: dict[str, str]
    keys: tuple[tuple[Any, str], ...] = ()  # (column or SQL expression, filter name)
    split: tuple[Callable[[str | None], list[str]], str] | None = None
    ranked: bool = False
    label: Callable[[tuple[str, ...]], str] = " ".join


def _specs() -> list[_Spec]:
    r = AuditRecord
    guard = {"method": GUARDRAIL_METHOD, "outcome": "guardrail"}
    guarded = and_(r.outcome.in_(GUARDRAIL_OUTCOMES), r.method == GUARDRAIL_METHOD)
    return [
        _Spec(
            "auth_failures",
            r.outcome == AUTH,
            {"outcome": AUTH},
            keys=((auth_reason_sql(), "auth_reason"),),
        ),
        _Spec(
            "rbac_denials",
            r.outcome == AUTHORIZE,
            {"outcome": AUTHORIZE},
            keys=((r.principal, "principal"), (r.method, "method")),
            ranked=True,
        ),
        _Spec(
            "rate_limited",
            r.outcome == RATE_LIMIT,
            {"outcome": RATE_LIMIT},
            keys=((r.principal, "principal"),),
            ranked=True,
        ),
        _Spec("waf_blocks", r.outcome == WAF, {"outcome": WAF}, split=(waf_rules, "waf_rule")),
        _Spec(
            "guardrail_actions",
            guarded,
            guard,
            keys=((r.outcome, "outcome"),),
            label=lambda g: g[0].removeprefix("guardrail:"),
        ),
        _Spec("guardrail_types", guarded, guard, split=(guardrail_types, "guardrail_type")),
    ]


def _chart(conn: Connection, rng: _Range, spec: _Spec, top: int) -> Chart:
    """The chart of `spec`: totals per bucket, then its bars."""
    where = and_(spec.where, AuditRecord.ts >= rng.since, AuditRecord.ts < rng.until)
    bucket = _bucket(conn, rng).label("b")
    n = func.count().label("n")
    totals = conn.execute(select(bucket, n).where(where).group_by(bucket)).all()
    series = _series(rng, ((b, c) for b, c in totals))
    chart = Chart(spec.name, sum(series), series, rng.filters(**spec.link))
    if not chart.total:
        return chart
    if spec.split is not None:
        split, name = spec.split
        chart.bars = _split_bars(conn, rng, where, bucket, split, lambda v: {name: v}, spec.link)
        return chart
    keys = [k for k, _ in spec.keys]
    names = [f for _, f in spec.keys]
    ranked = select(*keys, n).where(where).group_by(*keys).order_by(n.desc(), *keys)
    if spec.ranked:
        ranked = ranked.limit(top)
    groups = [(tuple(str(v) for v in row[:-1]), int(row[-1])) for row in conn.execute(ranked)]
    per: dict[tuple[str, ...], list[int]] = {g: [0] * rng.buckets for g, _ in groups}
    chosen = where
    if spec.ranked:
        chosen = and_(where, tuple_(*keys).in_([g for g, _ in groups]))
    for row in conn.execute(select(*keys, bucket, n).where(chosen).group_by(*keys, bucket)):
        per[tuple(str(v) for v in row[:-2])][rng.index(row[-2])] += int(row[-1])
    links = {g: {**spec.link, **dict(zip(names, g, strict=True))} for g, _ in groups}
    chart.bars = [Bar(spec.label(g), c, per[g], rng.filters(**links[g])) for g, c in groups]
    chart.other = chart.total - sum(c for _, c in groups)
    return chart


def _split_bars(
    conn: Connection,
    rng: _Range,
    where: ColumnElement[bool],
    bucket: ColumnElement[Any],
    split: Callable[[str | None], list[str]],
    select_one: Callable[[str], dict[str, str]],
    link: dict[str, str],
) -> list[Bar]:
    """Bars for the labels `split` finds in each record's detail (identical details are
    grouped in SQL first)."""
    n = func.count().label("n")
    stmt = select(AuditRecord.detail, bucket, n).where(where).group_by(AuditRecord.detail, bucket)
    per: dict[str, list[int]] = defaultdict(lambda: [0] * rng.buckets)
    counts: Counter[str] = Counter()
    for detail, b, count in conn.execute(stmt):
        i, c = rng.index(b), int(count)
        for label in split(detail):
            per[label][i] += c
            counts[label] += c
    return [
        Bar(label, c, per[label], rng.filters(**link, **select_one(label)))
        for label, c in counts.most_common()
    ]


def security_summary(
    engine: Engine,
    since: float,
    until: float,
    buckets: int = 24,
    *,
    top: int = DEFAULT_TOP,
) -> SecuritySummary:
    """The security charts of [since, until) (epoch seconds) in `buckets` time buckets;
    `top` bounds the bars of the per-principal charts.

    ValueError when the range is empty or `buckets`/`top` is out of bounds.
    """
    if not (math.isfinite(since) and math.isfinite(until)):
        raise ValueError("since and until must be finite epoch seconds")
    if not until > since:
        raise ValueError("until must be after since")
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be between 1 and {MAX_BUCKETS}")
    if top < 1:
        raise ValueError("top must be at least 1")
    rng = _Range(float(since), float(until), buckets)
    with engine.connect() as conn:
        charts = {spec.name: _chart(conn, rng, spec, top) for spec in _specs()}
    width = rng.width
    starts = [rng.since + i * width for i in range(buckets)]
    return SecuritySummary(rng.since, rng.until, width, starts, charts)
