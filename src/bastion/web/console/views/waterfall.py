"""A trace's spans laid out as a waterfall: the geometry of the server-rendered SVG chart.

Spans arrive as dicts: `name`, `service`, `start`, `duration_ms`, `status`, and optionally
`depth` (nesting, for the label's indent) and `offset` (ms from the trace's start). Without
`offset`, a numeric `start` (Unix seconds) is measured from the earliest span's. The chart uses
SVG geometry attributes only (x, y, width, height), never style, so the console's strict
Content-Security-Policy holds; the template also renders the spans as a table for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 1000  # the SVG's user units across
LABEL_WIDTH = 320  # where the bars start
ROW_HEIGHT = 22
BAR_HEIGHT = 14
INDENT = 12  # per depth level, in the label
MIN_BAR = 2.0  # a zero-length span is still visible
LABEL_CHARS = 40  # a longer label is cut (the table has it whole)


@dataclass(frozen=True, slots=True)
class Bar:
    """One span's row: its label and bar, and the values of its table row."""

    name: str
    service: str
    label: str  # "service: name", cut to fit left of the bars
    status: str
    offset_ms: float
    duration_ms: float
    depth: int
    x: float
    y: float
    width: float
    label_x: float
    text_y: float
    error: bool


@dataclass(frozen=True, slots=True)
class Waterfall:
    bars: list[Bar]
    height: int
    total_ms: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _offsets(spans: list[dict[str, Any]]) -> list[float]:
    """Each span's start in ms from the trace's start."""
    starts = [_number(s.get("start")) for s in spans]
    known = [s for s in starts if s is not None]
    first = min(known) if known else 0.0
    out = []
    for span, start in zip(spans, starts, strict=True):
        offset = _number(span.get("offset"))
        if offset is None:
            offset = (start - first) * 1000 if start is not None else 0.0
        out.append(max(0.0, offset))
    return out


def layout(spans: list[dict[str, Any]]) -> Waterfall:
    """The waterfall of `spans`, in their order, scaled to the chart's width."""
    offsets = _offsets(spans)
    durations = [max(0.0, _number(s.get("duration_ms")) or 0.0) for s in spans]
    total = max((o + d for o, d in zip(offsets, durations, strict=True)), default=0.0)
    scale = (WIDTH - LABEL_WIDTH) / total if total > 0 else 0.0
    bars = []
    for i, (span, offset, duration) in enumerate(zip(spans, offsets, durations, strict=True)):
        depth = max(0, int(_number(span.get("depth")) or 0))
        status = str(span.get("status") or "")
        name, service = str(span.get("name") or ""), str(span.get("service") or "")
        label = f"{service}: {name}" if service else name
        if len(label) > LABEL_CHARS:
            label = label[: LABEL_CHARS - 1] + "\u2026"
        x = LABEL_WIDTH + offset * scale
        width = min(max(MIN_BAR, duration * scale), WIDTH - x) if x < WIDTH else MIN_BAR
        bars.append(
            Bar(
                name=name,
                service=service,
                label=label,
                status=status,
                offset_ms=round(offset, 3),
                duration_ms=round(duration, 3),
                depth=depth,
                x=round(min(x, WIDTH - MIN_BAR), 2),
                y=i * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width=round(width, 2),
                label_x=4 + depth * INDENT,
                text_y=i * ROW_HEIGHT + ROW_HEIGHT * 0.7,
                error=status.lower() in {"error", "failed", "err"},
            )
        )
    return Waterfall(bars=bars, height=max(ROW_HEIGHT, len(bars) * ROW_HEIGHT), total_ms=total)
