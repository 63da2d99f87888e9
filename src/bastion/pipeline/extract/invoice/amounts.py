"""Amounts: the labelled candidates for total, subtotal and tax, the choice among them that
makes subtotal + tax = total hold, the largest amount when nothing is labelled a total, and
the currency.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from bastion.pipeline.extract.invoice.document import _Candidate, _Doc, _row_starts
from bastion.pipeline.extract.invoice.vocabulary import (
    _ALLOWANCE,
    _CARRIED,
    _CHARGE,
    _DUE,
    _LINE_NET_SUM,
    _PREPAID,
    _VAT_BASE,
    _WORDS,
    _YEAR_LIKE,
    _amount_kind,
)
from bastion.pipeline.extract.locale import (
    AmountMatch,
    find_amounts,
    find_currencies,
    first_amount_start,
)
from bastion.pipeline.extract.text import Cell


@dataclass(slots=True)
class _Amount:
    value: float
    score: float
    page: int
    where: tuple[int, int]
    per_rate: bool = False  # a row of a VAT breakdown (one rate): part of a total, not one
    rule: str = "unknown"  # the reading rule (Evidence.rule)
    label: str | None = None  # the label text matched


# The amount kinds a label can announce (EN 16931 terms): `net` total without VAT (BT-109),
# `tax` VAT total (BT-110), `gross` total with VAT (BT-112), `total` a total word that does not
# say which, `due` amount due (BT-115), `prepaid` (BT-113), `allowance` (BT-107), `charge`
# (BT-108), `line_sum` sum of the line net amounts (BT-106). Per-rate rows of a VAT breakdown
# are `net` (the rate's base) and `tax` (the rate's VAT) candidates with `per_rate` set.
KINDS = ("net", "tax", "gross", "total", "due", "prepaid", "allowance", "charge", "line_sum")
_FROM_LABEL = {"subtotal": "net", "tax": "tax"}


@lru_cache(maxsize=4096)
def _kind(label: str) -> tuple[str, float] | None:
    """The amount kind a label announces and how sure that is, or None."""
    if _CARRIED.search(label):
        return None
    if _PREPAID.search(label):
        return ("prepaid", 0.9)
    if _DUE.search(label):
        return ("due", 1.0)
    if _LINE_NET_SUM.search(label):
        return ("line_sum", 0.9)
    generic = _amount_kind(label)
    if _ALLOWANCE.search(label) and (generic is None or generic[1] < 1.0):
        return ("allowance", 0.8)
    if _CHARGE.search(label) and (generic is None or generic[0] != "tax"):
        return ("charge", 0.8)
    if _VAT_BASE.search(label) and (generic is None or generic[0] == "tax"):
        return ("net", 0.7)  # the base a VAT amount is computed on
    if generic is None:
        return None
    kind, score = generic
    if kind == "total":
        return ("gross", score) if score >= 1.0 else ("total", score)
    return (_FROM_LABEL[kind], score)


def _usable(
    amounts: list[AmountMatch], decimals_expected: bool, text: str = ""
) -> list[AmountMatch]:
    """Amounts that can be money: whole numbers only where the document has no decimals or a
    currency sign stands next to them ("Rs 1939"), and never a bare year."""
    out = []
    for a in amounts:
        if a.decimals == 0:
            near = text[max(0, a.start - 4) : a.end + 4]
            marked = bool(near) and bool(find_currencies(near))
            if not marked and (decimals_expected or _YEAR_LIKE.match(a.raw.strip())):
                continue
        out.append(a)
    return out


@dataclass(slots=True)
class _Header:
    """A row of amount labels without amounts ("Net | VAT | Gross", "Base | Rate | VAT"): the
    values stand in the rows under it, column by column."""

    row: int
    columns: list[tuple[Cell, str, float]]
    per_rate: bool  # a VAT breakdown (one row per rate), not one row of totals
    used: bool = False  # a row of values was read under it
    closed: bool = False  # a row that is not one of its values came after them


def _under(columns: list[tuple[Cell, str, float]], cell: Cell) -> tuple[Cell, str, float] | None:
    return next((h for h in columns if h[0].x0 < cell.x1 + 10 and h[0].x1 > cell.x0 - 10), None)


def _amount_candidates(doc: _Doc) -> dict[str, list[_Amount]]:
    """Every labelled amount of the document, by kind (KINDS): beside its label, in the rows
    under a header row of labels (a totals table or a VAT breakdown), or by column under a
    header when a row has a label and several amounts."""
    found: dict[str, list[_Amount]] = defaultdict(list)
    decimals_expected = doc.decimal is not None

    def usable(text: str) -> list[AmountMatch]:
        return _usable(find_amounts(text, doc.decimal), decimals_expected, text)

    for pi, page in enumerate(doc.pages):
        header: _Header | None = None
        for ri, row in enumerate(page.rows):
            if (pi, ri) in doc.item_rows:
                continue
            if header is not None and _header_values(doc, header, pi, ri, usable, found):
                continue
            labels: list[tuple[int, str, float, int]] = []  # cell, kind, score, label end
            for ci, cell in enumerate(row.cells):
                start = first_amount_start(cell.text)
                label_text = cell.text if start is None else cell.text[:start]
                if not _WORDS.search(label_text):
                    continue
                kind_score = _kind(label_text)
                if kind_score:
                    labels.append((ci, kind_score[0], kind_score[1], len(label_text)))
            if not labels:
                continue
            unvalued: list[tuple[int, str, float, int]] = []
            for idx, (ci, kind, score, end) in enumerate(labels):
                # A label owns the amounts up to the next label of the row.
                stop = labels[idx + 1][0] if idx + 1 < len(labels) else len(row.cells)
                cells = [(row.cells[ci], usable(row.cells[ci].text[end:]))]
                cells += [(c, usable(c.text)) for c in row.cells[ci + 1 : stop]]
                values = [a for _c, vals in cells for a in vals]
                if not values:
                    unvalued.append((ci, kind, score, end))
                    continue
                for k, a in enumerate(values):
                    weight = 1.0 if k == len(values) - 1 else 0.7
                    found[kind].append(
                        _Amount(
                            a.value,
                            score * weight,
                            pi + 1,
                            (pi, ri),
                            rule="label_right",
                            label=row.cells[ci].text[:end],
                        )
                    )
                if header is not None and ri - header.row <= 12 and len(values) >= 2:
                    # "Total | 24.99 | 5.00 | 29.99" under "Net | VAT | Gross": by column.
                    for cell, vals in cells:
                        column = _under(header.columns, cell)
                        if column and vals:
                            found[column[1]].append(
                                _Amount(
                                    vals[-1].value,
                                    column[2] * 0.95,
                                    pi + 1,
                                    (pi, ri),
                                    rule="column_header",
                                    label=column[0].text,
                                )
                            )
            if unvalued and len(unvalued) == len(labels):
                columns = [(row.cells[ci], kind, score) for ci, kind, score, _e in unvalued]
                kinds = {kind for _c, kind, _s in columns}
                per_rate = "tax" in kinds and (
                    any(_VAT_BASE.search(c.text) for c, _k, _s in columns)
                    or not kinds & {"gross", "total", "due"}
                )
                header = _Header(ri, columns, per_rate)
    return found


def _header_values(
    doc: _Doc,
    header: _Header,
    pi: int,
    ri: int,
    usable: Callable[[str], list[AmountMatch]],
    found: dict[str, list[_Amount]],
) -> bool:
    """Read row `ri` as a row of values under `header`, when its amounts stand under the
    header's columns: a VAT breakdown's rate row (any number of them) or a totals table's one
    row of values. Returns whether the row was read so."""
    page = doc.pages[pi]
    row = page.rows[ri]
    em = max(page.rows[header.row].height, 6.0)
    limit = 3 if not header.per_rate else 12
    if (header.used and not header.per_rate) or ri - header.row > limit:
        return False
    if row.top - page.rows[header.row].bottom > (6 if not header.per_rate else 25) * em:
        return False
    hits: list[tuple[str, float, float, str]] = []
    for cell in row.cells:
        start = first_amount_start(cell.text)
        label = cell.text if start is None else cell.text[:start]
        if _WORDS.search(label) and _kind(label):
            header.closed = header.used
            return False  # a labelled row ("Positionssumme | 100.00"): it speaks for itself
    for cell in row.cells:
        column = _under(header.columns, cell)
        if column is None:
            continue
        vals = usable(cell.text)
        if not vals or len(vals) > 1:
            continue
        hits.append((column[1], column[2], vals[0].value, column[0].text))
    if not hits or (header.per_rate and not any(h[0] == "tax" for h in hits)):
        header.closed = header.used
        return False
    header.used = True
    header.closed = not header.per_rate  # a totals table has one row of values
    for kind, score, value, label in hits:
        found[kind].append(
            _Amount(value, score * 0.85, pi + 1, (pi, ri), header.per_rate,
                    rule="vat_breakdown" if header.per_rate else "label_below", label=label)
        )  # fmt: skip
    return True


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.015, abs(b) * 1e-6)


def _currency(doc: _Doc, total_where: tuple[int, int] | None) -> _Candidate | None:
    votes: dict[str, float] = defaultdict(float)
    first_page: dict[str, int] = {}
    near_total: set[str] = set()
    for pi, page in enumerate(doc.pages):
        found = doc.currencies if doc.currencies is not None else find_currencies(page.text)
        if not found:
            continue
        starts = _row_starts(page)
        for code, start, end in found:
            ri = bisect.bisect_right(starts, start) - 1
            row = page.rows[ri]
            offset = starts[ri]
            amounts = find_amounts(row.text, doc.decimal)
            weight = 1.0
            if any(a.start - 3 <= end - offset and start - offset <= a.end + 3 for a in amounts):
                weight = 2.0
            if total_where == (pi, ri):
                near_total.add(code)
                weight += 2.0
            votes[code] += weight
            first_page.setdefault(code, pi + 1)
    if votes:
        # "$" alone is USD unless another dollar currency is named.
        if "USD" in votes and any(c in votes for c in ("CAD", "AUD", "NZD", "SGD", "HKD")):
            votes["USD"] *= 0.5
        code = max(votes, key=lambda c: votes[c])
        conf = 0.93 if code in near_total else 0.8
        rule = "currency_near_total" if code in near_total else "currency_mentions"
        return _Candidate(code, conf, first_page[code], rule=rule)
    return None


def _largest_amount(doc: _Doc) -> tuple[_Amount, float] | None:
    best: _Amount | None = None
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if (pi, ri) in doc.item_rows:
                continue
            for a in find_amounts(row.text, doc.decimal):
                if a.decimals == 2 and (best is None or a.value > best.value):
                    best = _Amount(a.value, 0.35, pi + 1, (pi, ri), rule="largest_amount")
    return (best, 0.35) if best else None
