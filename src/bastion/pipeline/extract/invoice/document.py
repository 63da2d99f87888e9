"""The document being read: its pages, rows and cells, what the fields found so far have
claimed (the customer's address block, the line-item rows), the candidates for a field and
the choice among them, and the index of every label on the pages.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bastion.pipeline.extract.invoice.vocabulary import _LABEL_NAMES, _LABELS
from bastion.pipeline.extract.text import Cell, Hit, Page
from bastion.pipeline.model import ExtractedField

PlumberLoader = Callable[[int], Page | None]


@dataclass(slots=True)
class _Candidate:
    value: object
    score: float
    page: int  # 1-based
    where: tuple[int, int, int] = (-1, -1, -1)  # page index, row, cell


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


def _field(c: _Candidate, confidence: float | None = None) -> ExtractedField:
    conf = c.score if confidence is None else confidence
    return ExtractedField(
        value=c.value, confidence=round(max(0.05, min(conf, 1.0)), 3), page=c.page
    )


def _best(cands: Iterable[_Candidate]) -> _Candidate | None:
    best: _Candidate | None = None
    for c in cands:
        if best is None or c.score > best.score or (c.score == best.score and c.page < best.page):
            best = c
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
