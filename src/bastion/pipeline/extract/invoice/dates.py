"""The issue date and the due date: next to their labels, after the invoice number ("Nr. 123
vom 03.03.2025"), next to a generic date label, or (the due date) from payment terms in days.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from bastion.pipeline.extract.invoice.document import _best, _Candidate, _Doc, _hits, _loc
from bastion.pipeline.extract.invoice.references import _names_another_document
from bastion.pipeline.extract.invoice.vocabulary import (
    _DATED,
    _DUE_DATE,
    _DUE_DAYS,
    _GENERIC_DATE,
    _ISSUE_DATE,
    _NOT_ISSUE,
)
from bastion.pipeline.extract.locale import find_dates
from bastion.pipeline.extract.text import Hit, values_near

# The score of an issue date found by no label: the first date on page 1 (a banner or version
# date, as often as not).
FALLBACK_SCORE = 0.45


# Dates of a delivery or service period, not the issue date (beside `_NOT_ISSUE`).
_PERIOD = re.compile(
    r"d[\u00e9e]but|\bfin\b|prestation|p[\u00e9e]riode|zeitraum|\bvon\b|\bbis\b|\bto\b",
    re.IGNORECASE,
)


# A date written as EN 16931's format 102, YYYYMMDD ("Date : 20260815"): read only beside a
# date label, where it cannot be another eight-digit number.
_COMPACT_DATE = re.compile(r"\s*((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")


def _labelled_date(text: str, dayfirst: bool) -> str | None:
    """The ISO date a label's value starts with (within its first 25 characters)."""
    dates = find_dates(text[:60], dayfirst)
    if dates and dates[0].start <= 25:
        return dates[0].iso
    m = _COMPACT_DATE.match(text)
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            return None
    return None


def _in_prose(doc: _Doc, hit: Hit) -> bool:
    """Whether a label is a word of a sentence ("Passée la date d'échéance ci-dessus, une
    pénalité ..."): its cell goes on with words, not a value."""
    rest = doc.cell(hit.page, hit.row, hit.cell).text[hit.end :]
    head = re.split(r"\d", rest[:40], maxsplit=1)[0]
    return len(head.split()) >= 4 and ":" not in head


def _date_after(doc: _Doc, pattern: re.Pattern[str], base: float) -> list[_Candidate]:
    out: list[_Candidate] = []
    for hit in _hits(doc, pattern):
        if _names_another_document(doc, hit) or _in_prose(doc, hit):
            continue
        for text, score, where in values_near(doc.pages, hit):
            iso = _labelled_date(text, doc.dayfirst)
            if iso:
                out.append(_Candidate(iso, base * score, hit.page + 1, _loc(where), label=hit))
                break
    return out


def _issue_date(
    doc: _Doc, number: _Candidate | None, title: _Candidate | None
) -> _Candidate | None:
    """The issue date; `title` is the document's `_title_line_number`, found once."""
    cands = _date_after(doc, _ISSUE_DATE, 0.93)
    if cands:
        return _best(cands)
    # "Rechnung Nr. 123 vom 03.03.2025", "Facture n° F12 du 03/03/2025", "No. 5 dated ...":
    # after the number, or after the title line's (the number may have come from a label).
    for anchor in (number, None if title is number else title):
        if anchor is None or anchor.where[0] < 0:
            continue
        pi, ri, ci = anchor.where
        row = doc.pages[pi].rows[ri]
        rest = " ".join(c.text for c in row.cells[ci:])
        m = _DATED.search(rest)
        if m:
            dates = find_dates(rest[m.end() : m.end() + 40], doc.dayfirst)
            if dates and dates[0].start <= 3:
                return _Candidate(dates[0].iso, 0.85, pi + 1, anchor.where, rule="after_number")
    due_cells = {c.where for c in _date_after(doc, _DUE_DATE, 1.0)}
    for hit in _hits(doc, _GENERIC_DATE):
        label = doc.cell(hit.page, hit.row, hit.cell).text
        before = label[max(0, hit.start - 25) : hit.start]
        after = re.split(r"\d", label[hit.end : hit.end + 30], maxsplit=1)[0]
        if any(p.search(before) or p.search(after) for p in (_NOT_ISSUE, _PERIOD)):
            continue
        if _names_another_document(doc, hit):
            continue
        if _in_prose(doc, hit):
            continue
        for text, score, where in values_near(doc.pages, hit):
            iso = _labelled_date(text, doc.dayfirst)
            if iso:
                page_bias = 1.0 if hit.page == 0 else 0.8
                out = _Candidate(
                    iso,
                    0.8 * score * page_bias,
                    hit.page + 1,
                    _loc(where),
                    rule="generic_date_label",
                    label=hit,
                )
                cands.append(out)
                break
    if cands:
        return _best(cands)
    # No label: the first date on page 1 that is not labelled as something else.
    page = doc.pages[0]
    for ri, row in enumerate(page.rows):
        for ci, cell in enumerate(row.cells):
            if (0, ri, ci) in doc.customer_cells or (0, ri, ci) in due_cells:
                continue
            dates = find_dates(cell.text, doc.dayfirst)
            if not dates:
                continue
            before = cell.text[: dates[0].start]
            prev = row.cells[ci - 1].text if ci else ""
            if _NOT_ISSUE.search(before) or _NOT_ISSUE.search(prev):
                continue
            return _Candidate(
                dates[0].iso, FALLBACK_SCORE, 1, (0, ri, ci), rule="fallback_first_date"
            )
    return None


def _due_date(doc: _Doc, issue: _Candidate | None) -> _Candidate | None:
    cands = _date_after(doc, _DUE_DATE, 0.92)
    if issue is not None and issue.score > FALLBACK_SCORE:
        # A labelled due date before a labelled issue date is a misreading; an issue date found
        # only by the fallback (the first date on page 1) never overrides a labelled one.
        cands = [c for c in cands if str(c.value) >= str(issue.value)]
    if cands:
        return _best(cands)
    if issue is None:
        return None
    for pi, page in enumerate(doc.pages):
        m = _DUE_DAYS.search(page.text)
        if m:
            days = next(int(v) for v in m.groupdict().values() if v)
            if 0 < days <= 180:
                due = date.fromisoformat(str(issue.value)) + timedelta(days=days)
                return _Candidate(due.isoformat(), 0.6, pi + 1, rule="payment_terms")
    return None
