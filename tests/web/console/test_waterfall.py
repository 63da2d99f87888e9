"""The trace waterfall's geometry: offsets from `offset` or `start`, bars inside the chart."""

from __future__ import annotations

from bastion.web.console.views.waterfall import LABEL_CHARS, LABEL_WIDTH, MIN_BAR, WIDTH, layout


def test_offsets_come_from_offset_or_from_the_earliest_start() -> None:
    chart = layout(
        [
            {"name": "root", "start": 50.0, "duration_ms": 100},
            {"name": "child", "start": 50.05, "duration_ms": 20, "depth": 1},
            {"name": "given", "offset": 80, "duration_ms": 20, "start": "2026-01-01T00:00:00Z"},
        ]
    )
    assert [b.offset_ms for b in chart.bars] == [0.0, 50.0, 80.0]
    assert chart.total_ms == 100.0
    root, child, given = chart.bars
    assert root.x == LABEL_WIDTH and root.width == WIDTH - LABEL_WIDTH
    assert child.x == LABEL_WIDTH + (WIDTH - LABEL_WIDTH) / 2
    assert given.x + given.width <= WIDTH
    assert child.label_x > root.label_x  # indented by depth


def test_odd_spans_still_fit_the_chart() -> None:
    chart = layout(
        [
            {"name": "instant", "start": 10.0, "duration_ms": 0, "status": "error"},
            {"name": "n" * 100, "service": "s", "duration_ms": -5, "depth": "x"},
            {"name": True, "offset": True, "duration_ms": None},
        ]
    )
    for bar in chart.bars:
        assert LABEL_WIDTH <= bar.x <= WIDTH - MIN_BAR and bar.width >= MIN_BAR
        assert bar.x + bar.width <= WIDTH + 1e-9
        assert len(bar.label) <= LABEL_CHARS
    assert chart.bars[0].error and not chart.bars[1].error
    assert chart.bars[1].depth == 0 and chart.bars[1].label.startswith("s: nnn")
    assert layout([]).bars == [] and layout([]).height > 0
