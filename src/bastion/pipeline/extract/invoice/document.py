"""The document being read: its pages, rows and cells, what the fields found so far have
claimed (the customer's address block, the line-item rows), the candidates for a field and
the choice among them (the winner keeps the best of those it beat), each field's evidence
(page, box, label, rule), and the index of every label on the pages.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bastion.pipeline.extract.invoice.vocabulary import _LABEL_NAMES, _LABELS
from bastion.pipeline.extract.text import Cell, Hit, Page
from bastion.pipeline.model import MAX_ALTERNATIVES, Alternative, Evidence, ExtractedField

PlumberLoader = Callable[[int], Page | None]


@dataclass(slots=True)
class _Candidate:
    value: object
    score: float
    page: int  # 1-based
    where: tuple[int, int, int] = (-1, -1, -1)  # page index, row, cell
    # The reading rule (Evidence.rule); "" where `label` says it: the value beside the label
    # (`label_inline`, `label_right`) or under it (`label_below`).
    rule: str = ""
    label: Hit | None = None  # the label matched
    beaten: list[_Candidate] = field(default_factory=list)  # set by `_best`, best first


@dataclass(slots=True)
class _Doc:
    pages: list[Page]
    text: str
    language: str
    decimal: str | None
    dayfirst: bool
    customer_cells: set[tuple[int, int, int]] = field(default_factory=set)
    item_rows: set[tuple[int, int]] = field(default_factory=set)
    sender: tuple[int, str] | None = None
    sender_done: bool = False
    labels: dict[str, list[Hit]] | None = None
    _lower: str | None = None
    currencies: list[tuple[str, int, int]] | None = None  # of the whole text, one page only

    def cell(self, pi: int, ri: int, ci: int) -> Cell:
        return self.pages[pi].rows[ri].cells[ci]

    @property
    def lower(self) -> str:
        """The text in lower case (computed once)."""
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower


def _field(doc: _Doc, c: _Candidate) -> ExtractedField:
    """The field `c` gives, with its evidence and the candidates it beat (its confidence is
    the candidate's score until it is calibrated)."""
    return ExtractedField(
        value=c.value,
        confidence=round(max(0.05, min(c.score, 1.0)), 3),
        page=c.page,
        evidence=Evidence(
            page=c.page,
            bbox=_bbox(doc, c.where),
            label=_label_text(doc, c.label),
            rule=_rule(c),
            score=round(c.score, 3),
        ),
        alternatives=[
            Alternative(value=b.value, score=round(b.score, 3), rule=_rule(b), page=b.page)
            for b in c.beaten
        ],
    )


def _rule(c: _Candidate) -> str:
    if c.rule:
        return c.rule
    if c.label is None:
        return "unknown"
    if c.where == _loc(c.label):
        return "label_inline"
    return "label_right" if c.where[:2] == (c.label.page, c.label.row) else "label_below"


def _bbox(doc: _Doc, where: tuple[int, int, int]) -> tuple[float, float, float, float] | None:
    """The box of the cell at `where`, in points from the page's top left (None: nowhere)."""
    pi, ri, ci = where
    if not (0 <= pi < len(doc.pages) and 0 <= ri < len(doc.pages[pi].rows)):
        return None
    cells = doc.pages[pi].rows[ri].cells
    return _box(cells[ci]) if 0 <= ci < len(cells) else None


def _box(cell: Cell) -> tuple[float, float, float, float]:
    return (round(cell.x0, 1), round(cell.top, 1), round(cell.x1, 1), round(cell.bottom, 1))


def _label_text(doc: _Doc, hit: Hit | None) -> str | None:
    if hit is None:
        return None
    text = doc.cell(hit.page, hit.row, hit.cell).text[hit.start : hit.end].strip()
    return text[:80] or None


def _best(cands: Iterable[_Candidate]) -> _Candidate | None:
    """The candidate of the highest score (the earlier page on a tie); it keeps the best of
    the others with another value (at most MAX_ALTERNATIVES) in `beaten`."""
    ranked = sorted(cands, key=lambda c: (-c.score, c.page))
    if not ranked:
        return None
    best = ranked[0]
    seen = {str(best.value)}
    best.beaten = []
    for c in ranked[1:]:
        if len(best.beaten) == MAX_ALTERNATIVES:
            break
        if str(c.value) not in seen:
            seen.add(str(c.value))
            best.beaten.append(c)
    return best


def _index_labels(pages: list[Page]) -> dict[str, list[Hit]]:
    """Every label of `pages`, by vocabulary: the first of each vocabulary in each cell."""
    out: dict[str, list[Hit]] = defaultdict(list)
    for pi, page in enumerate(pages):
        if not page.text:
            continue
        starts = _row_starts(page)
        seen: set[tuple[str, int, int]] = set()
        # Rows joined by NUL, which no label pattern matches (not even as whitespace).
        scan = "\x00".join(r.text for r in page.rows)
        lower = scan.lower()
        if len(lower) != len(scan):  # a rare character whose lower case is longer
            lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in scan)
        for m in _LABELS.pattern.finditer(lower):
            name = _LABELS.name(m)
            label = m.group(0).rstrip()
            if name is None:
                continue
            ri = bisect.bisect_right(starts, m.start()) - 1
            row = page.rows[ri]
            start = m.start() - starts[ri]
            end = start + len(label)
            # The cell holding the end of the label ("Invoice<TAB>No." ends in the second).
            offset = 0
            for ci, cell in enumerate(row.cells):
                cell_end = offset + len(cell.text)
                if end <= cell_end or ci == len(row.cells) - 1:
                    if (name, ri, ci) not in seen:
                        seen.add((name, ri, ci))
                        out[name].append(Hit(pi, ri, ci, max(0, start - offset), end - offset))
                    break
                offset = cell_end + 1
    return out


def _hits(doc: _Doc, pattern: re.Pattern[str]) -> list[Hit]:
    if doc.labels is None:
        doc.labels = _index_labels(doc.pages)
    return doc.labels.get(_LABEL_NAMES[id(pattern)], [])


def _row_starts(page: Page) -> list[int]:
    """Offset of each row in `page.text` (rows joined by newlines)."""
    starts: list[int] = []
    offset = 0
    for row in page.rows:
        starts.append(offset)
        offset += len(row.text) + 1
    return starts


def _loc(hit: Hit) -> tuple[int, int, int]:
    return (hit.page, hit.row, hit.cell)


def _cell_under(page: Page, ri: int, cell: Cell, rows: int = 3) -> Cell | None:
    """The first cell below `cell` (row `ri`) that overlaps it horizontally, at most `rows` rows
    down and with no wide vertical gap before it."""
    last = page.rows[ri].bottom
    em = max(page.rows[ri].height, 6.0)
    for below in page.rows[ri + 1 : ri + 1 + rows]:
        if below.top - last > 2.5 * em:
            return None
        under = next((c for c in below.cells if c.x0 < cell.x1 and c.x1 > cell.x0), None)
        if under is not None:
            return under
        last = below.bottom
    return None
