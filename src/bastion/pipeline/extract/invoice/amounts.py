"""Amounts: the labelled candidates for total, subtotal and tax, the choice among them that
makes subtotal + tax = total hold, the largest amount when nothing is labelled a total, and
the currency.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

from bastion.pipeline.extract.invoice.document import _Candidate, _Doc, _row_starts
from bastion.pipeline.extract.invoice.vocabulary import _WORDS, _YEAR_LIKE, _amount_kind
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
    rule: str = "unknown"  # the reading rule (Evidence.rule)
    label: str | None = None  # the label text matched


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


def _amount_candidates(doc: _Doc) -> dict[str, list[_Amount]]:
    found: dict[str, list[_Amount]] = defaultdict(list)
    decimals_expected = doc.decimal is not None

    def usable(text: str) -> list[AmountMatch]:
        return _usable(find_amounts(text, doc.decimal), decimals_expected, text)

    for pi, page in enumerate(doc.pages):
        # The last row of amount labels without amounts ("Net | VAT | Total"), for the rows of
        # values under it.
        header: tuple[int, list[tuple[Cell, str, float]]] | None = None
        for ri, row in enumerate(page.rows):
            if (pi, ri) in doc.item_rows:
                continue
            labels: list[tuple[int, str, float, int]] = []  # cell, kind, score, label end
            for ci, cell in enumerate(row.cells):
                start = first_amount_start(cell.text)
                label_text = cell.text if start is None else cell.text[:start]
                if not _WORDS.search(label_text):
                    continue
                kind_score = _amount_kind(label_text)
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
                if header is not None and ri - header[0] <= 12 and len(values) >= 2:
                    # "Total | 24.99 | 5.00 | 29.99" under "Net | VAT | Gross": by column.
                    for cell, vals in cells:
                        column = next(
                            (h for h in header[1] if h[0].x0 < cell.x1 and h[0].x1 > cell.x0), None
                        )
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
            if len(unvalued) >= 2 and len(unvalued) == len(labels):
                header = (ri, [(row.cells[ci], kind, score) for ci, kind, score, _e in labels])
            # Labels with no amount beside them: a header row, values in the row below.
            if unvalued and ri + 1 < len(page.rows):
                below = page.rows[ri + 1]
                for ci, kind, score, _end in unvalued:
                    label_cell = row.cells[ci]
                    for other in below.cells:
                        if other.x0 < label_cell.x1 + 10 and other.x1 > label_cell.x0 - 10:
                            vals = usable(other.text)
                            if vals:
                                found[kind].append(
                                    _Amount(
                                        vals[-1].value,
                                        score * 0.85,
                                        pi + 1,
                                        (pi, ri + 1),
                                        rule="label_below",
                                        label=label_cell.text,
                                    )
                                )
                            break
    return found


def _top(cands: list[_Amount], n: int = 6) -> list[_Amount]:
    best: dict[float, _Amount] = {}
    for c in cands:
        key = round(c.value, 2)
        if key not in best or c.score > best[key].score:
            best[key] = c
    return sorted(best.values(), key=lambda c: -c.score)[:n]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.015, abs(b) * 1e-6)


def _choose_amounts(
    found: dict[str, list[_Amount]], line_sum: float | None
) -> dict[str, tuple[_Amount, float]]:
    subs = _top(found.get("subtotal", []))
    taxes = _top(found.get("tax", []))
    totals = _top(found.get("total", []))
    # Several tax rows (one per rate): their sum is a candidate too.
    distinct_rows = {t.where: t for t in sorted(found.get("tax", []), key=lambda t: t.score)}
    if len(distinct_rows) >= 2:
        rows = list(distinct_rows.values())
        for k in range(2, min(len(rows), 4) + 1):
            for combo in combinations(rows, k):
                score = min(c.score for c in combo) * 0.9
                taxes.append(
                    _Amount(
                        sum(c.value for c in combo),
                        score,
                        combo[-1].page,
                        (-1, -1),
                        rule="tax_rows_sum",
                    )
                )
    best: tuple[float, _Amount | None, _Amount | None, _Amount | None, bool] | None = None
    # A labelled total is always reported, even when the arithmetic does not hold (that is
    # for validation to flag): only a document without one goes without.
    total_options: list[_Amount | None] = list(totals) if totals else [None]
    for g in total_options:
        for s in [*subs, None]:
            for t in [*taxes, None]:
                score = sum(x.score for x in (g, s, t) if x is not None)
                consistent = False
                if g and s and t:
                    if _close(s.value + t.value, g.value):
                        score += 1.5
                        consistent = True
                    else:
                        score -= 0.8
                elif g and s:
                    if _close(g.value, s.value):
                        score += 0.1
                    elif g.value < s.value:
                        score -= 0.6
                    else:
                        score -= 0.3
                elif g and t:
                    score -= 0.6 if t.value >= g.value else 0.0
                elif s and t:
                    score -= 0.6 if t.value >= s.value else 0.0
                if (s and t and s.where == t.where) or (
                    g and s and g.where == s.where and not (_close(g.value, s.value))
                ):
                    score -= 1.0
                if line_sum is not None:
                    if s and _close(line_sum, s.value):
                        score += 0.5
                    elif not s and g and _close(line_sum, g.value):
                        score += 0.3
                if best is None or score > best[0]:
                    best = (score, g, s, t, consistent)
    out: dict[str, tuple[_Amount, float]] = {}
    if best is None:
        return out
    _score, best_total, best_sub, best_tax, consistent = best
    for name, amt in (("total", best_total), ("subtotal", best_sub), ("tax", best_tax)):
        if amt is not None:
            conf = 0.96 if consistent else min(0.85, 0.5 + 0.35 * amt.score)
            out[name] = (amt, conf)
    return out


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
