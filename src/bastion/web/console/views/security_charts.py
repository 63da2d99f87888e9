"""The Security view's charts as the template draws them: SVG geometry and audit links.

Each chart of a `SecuritySummary` becomes a `ShownChart`: horizontal bars (one per reason,
principal, rule or type, largest first) and a column series of its total per time bucket. The
SVG uses presentation attributes only (`x`, `width`, `fill`...), which the console's CSP
(`style-src 'self'`) allows, unlike `style=` attributes. Every bar and column links to the Audit
view listing the records behind it (`AuditFilters.to_query()`); the same numbers and links are
in a table next to the chart, its text alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from bastion.security import AuditFilters, SecuritySummary
from bastion.web.console.views.instants import utc_text

AUDIT_PATH = "/console/audit"
# The bar chart: labels on the left, bars after them, counts at their ends.
LABEL_WIDTH = 190
BAR_SPACE = 300
ROW_HEIGHT = 26
BAR_HEIGHT = 18
CHART_WIDTH = LABEL_WIDTH + BAR_SPACE + 50
LABEL_CHARS = 26
# The column series: one column per time bucket.
SERIES_HEIGHT = 64
SERIES_GAP = 1.0

# (name, heading, what its bars are), in page order.
CHARTS = (
    ("auth_failures", "Authentication failures", "by reason"),
    ("rbac_denials", "RBAC denials", "by principal and method"),
    ("rate_limited", "Rate-limit hits", "by principal"),
    ("waf_blocks", "WAF blocks", "by rule"),
    ("guardrail_actions", "Guardrail actions", "by action"),
    ("guardrail_types", "Guardrail findings", "by finding type"),
)


def audit_href(filters: AuditFilters) -> str:
    """The Audit view's search for the records `filters` select."""
    query = filters.to_query()
    return f"{AUDIT_PATH}?{urlencode(query)}" if query else AUDIT_PATH


@dataclass(frozen=True, slots=True)
class ShownBar:
    label: str
    short: str  # the label as the SVG shows it (the table has the whole of it)
    count: int
    href: str
    y: float
    width: float

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT - 4


@dataclass(frozen=True, slots=True)
class ShownColumn:
    start: str
    count: int
    href: str
    x: float
    y: float
    width: float
    height: float


@dataclass(slots=True)
class ShownChart:
    name: str
    heading: str
    by: str
    total: int
    href: str
    other: int
    bars: list[ShownBar] = field(default_factory=list)
    columns: list[ShownColumn] = field(default_factory=list)

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW_HEIGHT

    @property
    def bar_x(self) -> int:
        return LABEL_WIDTH

    @property
    def description(self) -> str:
        parts = [f"{bar.label}: {bar.count}" for bar in self.bars]
        if self.other:
            parts.append(f"others: {self.other}")
        listed = "; ".join(parts) if parts else "none"
        return f"{self.heading} {self.by}, {self.total} in all. {listed}."


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def shown_charts(summary: SecuritySummary) -> list[ShownChart]:
    """Every chart of `summary`, in page order, ready to draw."""
    out: list[ShownChart] = []
    for name, heading, by in CHARTS:
        chart = summary.charts[name]
        shown = ShownChart(name, heading, by, chart.total, audit_href(chart.filters), chart.other)
        top = max((bar.count for bar in chart.bars), default=0)
        for i, bar in enumerate(chart.bars):
            width = BAR_SPACE * bar.count / top if top else 0.0
            shown.bars.append(
                ShownBar(
                    bar.label,
                    _short(bar.label),
                    bar.count,
                    audit_href(bar.filters),
                    y=i * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                    width=round(max(width, 1.0), 2),
                )
            )
        shown.columns = _columns(summary, chart.series, chart.filters)
        out.append(shown)
    return out


def _columns(
    summary: SecuritySummary, series: list[int], filters: AuditFilters
) -> list[ShownColumn]:
    """One column per bucket, scaled to the busiest, each linked to its bucket's records."""
    top = max(series, default=0)
    slot = CHART_WIDTH / max(1, len(series))
    starts = summary.bucket_starts
    columns: list[ShownColumn] = []
    for i, count in enumerate(series):
        since = starts[i]
        until = starts[i + 1] if i + 1 < len(starts) else summary.until
        height = round(SERIES_HEIGHT * count / top, 2) if top else 0.0
        columns.append(
            ShownColumn(
                start=utc_text(since),
                count=count,
                href=audit_href(replace(filters, since=since, until=until)),
                x=round(i * slot, 2),
                y=round(SERIES_HEIGHT - height, 2),
                width=round(max(slot - SERIES_GAP, 1.0), 2),
                height=height,
            )
        )
    return columns
