"""Line items: tables found by their header row and read column by column (or token by token),
charges listed without a header, and how well the items read add up.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from bastion.pipeline.extract.invoice.amounts import _close
from bastion.pipeline.extract.invoice.document import PlumberLoader, _Doc
from bastion.pipeline.extract.invoice.vocabulary import (
    _HAS_DIGIT,
    _HEADER_PATTERNS,
    _WORDS,
    _amount_kind,
)
from bastion.pipeline.extract.locale import (
    AmountMatch,
    find_amounts,
    find_currencies,
    first_amount_start,
)
from bastion.pipeline.extract.text import Cell, Page, Row


@dataclass(slots=True)
class _Item:
    """A line item (the fields of model.LineItem), made a dict only for the result: building
    and dumping a model for every row read was a noticeable part of the extraction's time."""

    description: str
    quantity: float | None
    unit_price: float | None
    amount: float | None

    def as_dict(self) -> dict[str, object]:  # LineItem(...).model_dump()
        return {
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
        }


@dataclass(slots=True)
class _Table:
    page: int  # index
    header_row: int
    columns: list[tuple[str, float, float]]  # kind, x0, x1
    tokenised: bool = False  # the header is one run of text: rows are read token by token


@lru_cache(maxsize=4096)
def _header_kind(text: str) -> str | None:
    text = text.strip()
    if len(text) > 40:
        return None
    for kind, pattern in _HEADER_PATTERNS:
        if pattern.match(text):
            return kind
    return None


def _find_tables(pages: list[Page]) -> list[_Table]:
    tables: list[_Table] = []
    for pi, page in enumerate(pages):
        for ri, row in enumerate(page.rows):
            if len(row.cells) == 1 and _single_run_header(row.text):
                cell = row.cells[0]
                tables.append(_Table(pi, ri, [("desc", cell.x0, cell.x1)], tokenised=True))
                continue
            if len(row.cells) < 2 or len(row.text) > 200:
                continue
            if 2 * sum(c.text[:1].isdigit() for c in row.cells) > len(row.cells):
                continue  # mostly numbers: a row of values, not a header
            columns: list[tuple[str | None, float, float]] = []
            for cell in row.cells:
                words = _header_words(cell.text)
                if words and len(words) > 1:
                    # "Menge Bezeichnung": two column names in one run, split where they are.
                    scale = (cell.x1 - cell.x0) / max(len(cell.text), 1)
                    for kind, start, end in words:
                        columns.append((kind, cell.x0 + start * scale, cell.x0 + end * scale))
                else:
                    columns.append((_header_kind(cell.text), cell.x0, cell.x1))
            known = [k for k, _x0, _x1 in columns if k]
            numeric = [k for k in known if k in _NUMERIC_COLUMNS]
            if len(known) < max(2, len(columns) - 2) or not numeric:
                continue
            if "desc" not in known and len(set(numeric)) < 2:
                continue  # e.g. a tax summary "VAT % | Base | VAT amount | Total"
            if find_amounts(row.text):
                continue
            kinds = [k or "other" for k, _x0, _x1 in columns]
            if "desc" not in kinds and "other" in kinds:  # the first unnamed column
                kinds[kinds.index("other")] = "desc"
            columns_named = [(k, x0, x1) for k, (_k, x0, x1) in zip(kinds, columns, strict=True)]
            tables.append(_Table(pi, ri, columns_named))
    return tables


_HEADER_WORD = re.compile(r"(?<![^\W\d_])[^\W\d_]")


@lru_cache(maxsize=4096)
def _header_words(text: str) -> tuple[tuple[str, int, int], ...] | None:
    """The column names in `text`, with their spans, when every word of it is one."""
    if len(text) > 120 or _HAS_DIGIT.search(text):
        return None
    words: list[tuple[str, int, int]] = []
    end = 0
    for m in _HEADER_WORD.finditer(text):
        if m.start() < end:
            continue
        for kind, pattern in _HEADER_PATTERNS:
            hit = pattern.match(text, m.start())
            if hit:
                words.append((kind, m.start(), hit.end()))
                end = hit.end()
                break
        else:
            return None  # a word that is not a column name
    return tuple(words) or None


def _single_run_header(text: str) -> bool:
    """ "Description Qty Unit price Amount" drawn as one run: a description column and at least
    two numeric ones, and nothing else."""
    words = _header_words(text)
    if not words:
        return False
    kinds = [kind for kind, _start, _end in words]
    numeric = {k for k in kinds if k in _NUMERIC_COLUMNS}
    return "desc" in kinds and len(numeric) >= 2


_NUMERIC_COLUMNS = frozenset({"qty", "unit", "amount"})
_NUMERIC_CELL = re.compile(r"^[\s$€£¥₹(+\-\u2212]*\d[\d\s.,'\u2019]*(?:\s*[%)€$£A-Za-zł.]{0,4})$")


def _column_of(table: _Table, cell: Cell) -> tuple[int, bool]:
    """The column a cell falls in, and whether it overlaps that column's header."""
    best, best_overlap = -1, 0.0
    cx0, cx1 = cell.x0, cell.x1
    for k, (_kind, x0, x1) in enumerate(table.columns):
        # min(x1, cx1) - max(x0, cx0), without the cost of two calls
        overlap = (cx1 if cx1 < x1 else x1) - (cx0 if cx0 > x0 else x0)
        if overlap > best_overlap:
            best, best_overlap = k, overlap
    if best >= 0:
        return best, True
    # No overlap: the nearest column, measured from the right edge for numbers.
    distances = [min(abs(cell.x1 - x1), abs(cell.x0 - x0)) for _kind, x0, x1 in table.columns]
    return min(range(len(distances)), key=distances.__getitem__), False


def _num(text: str, decimal: str | None) -> float | None:
    vals = find_amounts(text, decimal)
    return vals[0].value if vals else None


def _read_table(doc: _Doc, page: Page, table: _Table) -> tuple[list[_Item], list[int]]:
    items: list[_Item] = []
    rows_used: list[int] = []
    misses = 0
    header = page.rows[table.header_row]
    last_bottom = header.bottom
    desc_cols = [k for k, c in enumerate(table.columns) if c[0] == "desc"]
    after_totals = False
    for ri in range(table.header_row + 1, len(page.rows)):
        row = page.rows[ri]
        if row.top - page.rows[ri - 1].bottom > 6 * max(row.height, 6.0):
            break  # a wide vertical gap: the table has ended
        if _totals_row(row, doc.decimal):
            # A subtotal: the end of the table, or of a section of it when items follow.
            after_totals = True
            misses += 1
            if misses >= 3:
                break
            continue
        if _header_kind(row.cells[0].text) and len(row.cells) >= 2 and not find_amounts(row.text):
            break
        if items and _totals_header(row, doc.decimal):
            break  # "Net | VAT | Gross" over their values: the totals, after the items
        values: dict[str, list[str]] = defaultdict(list)
        clean = not table.tokenised and (len(row.cells) > 1 or len(table.columns) <= 2)
        for cell in row.cells:
            k, overlaps = _column_of(table, cell)
            kind = table.columns[k][0]
            if kind in _NUMERIC_COLUMNS and len(find_amounts(cell.text, doc.decimal)) > 1:
                clean = False  # "Rs. 2,899.04 Rs. 11,596.16": two columns in one run
            elif _NUMERIC_CELL.match(cell.text) and (
                (kind in _NUMERIC_COLUMNS and (values[kind] or not overlaps))
                or (kind == "desc" and values[kind])
            ):
                clean = False  # two numbers for one column, or a number under the description
            values[kind].append(cell.text)
        desc = " ".join(values.get("desc", [])).strip()
        qty = _num(" ".join(values.get("qty", [])), doc.decimal)
        unit = _num(" ".join(values.get("unit", [])), doc.decimal)
        amount = _num(" ".join(values.get("amount", [])), doc.decimal)
        if amount is None:
            # No amount column found (an unnamed or combined header): the rightmost money value
            # of the row outside the description and quantity is the line amount.
            money = [
                a.value
                for cell in row.cells
                if table.columns[_column_of(table, cell)[0]][0] not in ("desc", "qty")
                for a in find_amounts(cell.text, doc.decimal)
                if a.decimals or find_currencies(cell.text)
            ]
            if money:
                amount = money[-1]
                if unit is None and len(money) >= 2:
                    unit = money[-2]
        if not clean:
            parsed = _tokenised_item(row.text.replace("\t", "  "), doc.decimal)
            if parsed:
                desc, qty, unit, amount = parsed
        priced = unit is not None or amount is not None
        if after_totals and (qty is None or not priced):
            priced = False  # after a subtotal only a full item row continues the table
        if priced and _WORDS.search(desc):
            items.append(_Item(desc, qty, unit, amount))
            rows_used.append(ri)
            last_bottom = row.bottom
            misses = 0
            continue
        numeric = any(values.get(k) for k in ("qty", "unit", "amount"))
        if (
            desc
            and items
            and not numeric
            and all(_column_of(table, c)[0] in desc_cols for c in row.cells)
            and row.top - last_bottom < 1.6 * max(row.height, 6.0)
        ):
            # A description wrapped onto the next line.
            prev = items[-1]
            prev.description = f"{prev.description} {desc}"
            rows_used.append(ri)
            last_bottom = row.bottom
            continue
        misses += 1
        if misses >= 3 and items:
            break
        if misses >= 6:
            break
    return items, rows_used


def _totals_header(row: Row, decimal: str | None) -> bool:
    """A row of two or more amount labels and no amount ("Sous-total HT | TVA 20 % | Montant
    TTC"): the header of a totals table, whose values stand in the row below."""
    return (
        len(row.cells) >= 2
        and not find_amounts(row.text, decimal)
        and all(_amount_kind(c.text) is not None for c in row.cells)
    )


def _totals_row(row: Row, decimal: str | None) -> bool:
    """ "Subtotal  1,234.00", "VAT 20 %  246.80": the end of the item table."""
    start = first_amount_start(row.text)
    if start is None:
        return False  # no amount: a second header line ("excl. VAT"), not a total
    label = row.text[:start]
    if len(label.split()) > 5 or _amount_kind(label) is None:
        return False
    return len(find_amounts(row.text, decimal)) <= 2  # (the label first: it is cheaper)


def _tokenised_item(
    text: str, decimal: str | None
) -> tuple[str, float | None, float | None, float | None] | None:
    """`Blue widget 2 10.00 20.00` without columns: the numbers at the end, from the right."""
    amounts = find_amounts(text, decimal)
    if not amounts:
        return None
    trailing: list[AmountMatch] = []
    end = len(text.rstrip())
    for a in reversed(amounts):
        gap = text[a.end : end]
        if gap.strip(" €$£%¥₹\t") and not find_currencies(gap):
            break
        trailing.insert(0, a)
        end = a.start
    if not trailing:
        return None
    desc = text[:end].strip(" \t-")
    vals = [a.value for a in trailing]
    if len(vals) >= 3:
        qty, unit, amount = vals[-3], vals[-2], vals[-1]
        if _close(qty * unit, amount):
            return desc, qty, unit, amount
        return desc, None, vals[-2], vals[-1]
    if len(vals) == 2:
        return desc, None, vals[0], vals[1]
    return desc, None, None, vals[0]


def _score_items(items: list[_Item], totals: list[float]) -> float:
    if not items:
        return 0.0
    arithmetic = 0  # items whose quantity times unit price is their amount
    amounts: list[float] = []
    for it in items:
        quantity, unit, amount = it.quantity, it.unit_price, it.amount
        if amount is not None:
            amounts.append(amount)
            if (
                quantity is not None
                and unit is not None
                and _close(round(quantity * unit, 2), amount)
            ):
                arithmetic += 1
    score = arithmetic / len(items)
    if amounts and len(amounts) == len(items):
        line_sum = sum(amounts)
        if any(_close(line_sum, t) for t in totals):
            score += 1.0
    return score


def _line_items(
    doc: _Doc, plumber: PlumberLoader | None, totals: list[float]
) -> tuple[list[_Item], int, float] | None:
    tables = _find_tables(doc.pages)
    if not tables:
        return _listed_items(doc, totals)
    all_items: list[_Item] = []
    first_page = tables[0].page + 1
    pages_needing_help: list[int] = []
    for table in tables:
        page = doc.pages[table.page]
        items, used = _read_table(doc, page, table)
        if not items or _score_items(items, totals) < 0.5:
            pages_needing_help.append(table.page)
        doc.item_rows.update((table.page, ri) for ri in used)
        all_items.extend(items)
    score = _score_items(all_items, totals)
    if plumber is not None and pages_needing_help and score < 1.0:
        alt_items: list[_Item] = []
        for pi in dict.fromkeys(pages_needing_help):
            alt_page = plumber(pi + 1)
            if alt_page is None:
                continue
            for table in _find_tables([alt_page]):
                items, _used = _read_table(doc, alt_page, table)
                alt_items.extend(items)
        alt_score = _score_items(alt_items, totals)
        if alt_score > score:
            all_items, score = alt_items, alt_score
    if not all_items:
        return None
    return all_items, first_page, score


def _listed_items(doc: _Doc, totals: list[float]) -> tuple[list[_Item], int, float] | None:
    """Charges listed without a table header: a block of "description | amount" rows (each
    charge perhaps followed by more indented breakdown rows: "Charges", "VAT"), whose least
    indented, unlabelled rows are the items, when there are at least two and their amounts add
    up to a total of the document. Without quantities each charge is billed once: its amount is
    also its unit price."""
    for pi, page in enumerate(doc.pages):
        block: list[tuple[int, Cell, float]] = []  # row, description cell, amount
        for ri, row in enumerate([*page.rows, None]):
            entry = _listed_entry(row, doc.decimal) if row is not None else None
            if entry is not None:
                block.append((ri, entry[0], entry[1]))
                continue
            if len(block) >= 2:
                left = min(cell.x0 for _ri, cell, _v in block)
                top = [(r, c, v) for r, c, v in block if c.x0 < left + 2.0]
                if len(top) >= 2 and all(_amount_kind(c.text) is None for _r, c, _v in top):
                    amount = round(sum(v for _r, _c, v in top), 2)
                    if any(_close(amount, t) for t in totals):
                        items = [_Item(c.text, None, v, v) for _r, c, v in top]
                        doc.item_rows.update((pi, r) for r, _c, _v in top)
                        return items, pi + 1, 1.0
            block = []
    return None


def _listed_entry(row: Row, decimal: str | None) -> tuple[Cell, float] | None:
    """A row "description | amount" (two cells, one money amount with decimals)."""
    if len(row.cells) != 2:
        return None
    desc, value = row.cells
    amounts = find_amounts(value.text, decimal)
    if len(amounts) != 1 or not amounts[0].decimals or not _WORDS.search(desc.text):
        return None
    if find_amounts(desc.text, decimal) or len(value.text) > len(amounts[0].raw) + 4:
        return None
    return desc, amounts[0].value
