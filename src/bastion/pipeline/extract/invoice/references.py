"""The invoice number: next to its label, else in a title line ("Teilrechnung Bau Nr. 210111
vom ...", "INVOICE 2025-0042"), else a receipt or booking reference that stands for it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bastion.pipeline.extract.invoice.document import (
    _best,
    _Candidate,
    _cell_under,
    _Doc,
    _hits,
    _loc,
)
from bastion.pipeline.extract.invoice.vocabulary import (
    _HAS_DIGIT,
    _I,
    _INVOICE_NO,
    _NOT_TITLE,
    _REFERENCE_NO,
    _TITLE_LINE,
    _TITLE_NO,
    _WORDS,
    _YEAR_LIKE,
)
from bastion.pipeline.extract.locale import find_dates
from bastion.pipeline.extract.text import Hit, find_labels, values_near

_INVNO_TOKEN = re.compile(r"^[#№]?\s*([A-Za-z0-9][A-Za-z0-9\-/_.:]*[A-Za-z0-9]|\d)")


@lru_cache(maxsize=4096)
def _parse_invoice_number(text: str) -> str | None:
    text = text.strip()
    text = re.sub(
        r"^(?:(?:no(?![^\W\d_])|n[°º])\.?|nr\b\.?|number|nummer|num[ée]ro|#|:)\s*",
        "",
        text,
        flags=_I,
    )
    m = _INVNO_TOKEN.match(text)
    if not m:
        return None
    token = m.group(1).rstrip(".:/-")
    if not _HAS_DIGIT.search(token) or len(token) > 30 or "@" in token:
        return None
    if find_dates(token) or _YEAR_LIKE.match(token):
        return None
    # A token of the shape "1.234,56" is an amount, not a number.
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", token):
        return None
    return token


def _title_line_number(doc: _Doc) -> _Candidate | None:
    """The number of a title line near the top of page 1: a document-type word (a compound
    too), a few words, then "Nr."/"No."/"N°" and the number. Its candidate points at the
    title's first cell, so that a date after it ("vom", "du", "dated") can be read as the issue
    date."""
    page = doc.pages[0]
    for ri, row in enumerate(page.rows[:40]):
        starts: list[int] = []
        text = ""
        for cell in row.cells:
            starts.append(len(text) + (1 if text else 0))
            text = f"{text} {cell.text}" if text else cell.text
        for m in _TITLE_LINE.finditer(text):
            if _NOT_TITLE.search(m.group("type")) or _NOT_TITLE.search(m.group("between")):
                continue
            value = _parse_invoice_number(m.group("number"))
            if value is None:
                continue
            ci = max(k for k, start in enumerate(starts) if start <= m.start())
            return _Candidate(value, 0.75, 1, (0, ri, ci), rule="title_line")
    return None


# A qualifier that makes an invoice-number or invoice-date label name another document: the
# invoice this one corrects or follows (EN 16931 BT-25/BT-26, "N° de facture associée",
# "Ursprungsrechnung", "Original invoice date").
_PRECEDING = re.compile(
    r"associ[\u00e9e]e|d['\u2019]origine|originale?|pr[\u00e9e]c[\u00e9e]dente|initiale|"
    r"rectifi[\u00e9e]e|preceding|original|referenced|related|corrected|previous|"
    r"urspr[\u00fcu]ng|vorherige|bezogene|korrigierte|stornierte",
    re.IGNORECASE,
)


def _names_another_document(doc: _Doc, hit: Hit) -> bool:
    """Whether the label at `hit` is qualified as another document's ("facture associée")."""
    text = doc.cell(hit.page, hit.row, hit.cell).text
    around = (
        text[max(0, hit.start - 20) : hit.start]
        + re.split(r"\d", text[hit.end : hit.end + 30], maxsplit=1)[0]
    )
    return _PRECEDING.search(around) is not None


def _invoice_number(doc: _Doc, title: _Candidate | None) -> _Candidate | None:
    """The invoice number; `title` is the document's `_title_line_number`, found once."""
    cands: list[_Candidate] = []
    for hit in _hits(doc, _INVOICE_NO):
        if _names_another_document(doc, hit):
            continue
        for text, score, where in values_near(doc.pages, hit):
            value = _parse_invoice_number(text)
            if value:
                cands.append(_Candidate(value, 0.92 * score, hit.page + 1, _loc(where), label=hit))
                break
    if cands:
        return _best(cands)
    if title is not None:
        return title
    # "INVOICE 2025-0042" / "Rechnung Nr. 123" / "Facture N° F-12" in a title.
    page = doc.pages[0]
    for ri, row in enumerate(page.rows[:40]):
        for ci, cell in enumerate(row.cells):
            m = _TITLE_NO.search(cell.text)
            if not m:
                continue
            rest = cell.text[m.end() :]
            after_word = _WORDS.match(rest.strip())
            if after_word and after_word.group(0).lower() in {"date", "datum", "fecha", "data"}:
                continue
            value = _parse_invoice_number(rest) if rest.strip() else None
            if value is None and ci + 1 < len(row.cells) and not rest.strip():
                value = _parse_invoice_number(row.cells[ci + 1].text)
            if value is None and not rest.strip():
                # A column "Invoice" in a header row, or an "INVOICE" title: its value under it
                # (the first cell below that overlaps it, a line or two down).
                under = _cell_under(page, ri, cell)
                value = _parse_invoice_number(under.text) if under else None
            if value:
                cands.append(_Candidate(value, 0.7, 1, (0, ri, ci), rule="title_word"))
    if cands:
        return _best(cands)
    # No invoice number: a receipt or booking reference stands for it.
    for hit in find_labels(doc.pages[:1], _REFERENCE_NO, first=True):
        for text, score, where in values_near(doc.pages, hit):
            value = _parse_invoice_number(text)
            if value:
                cands.append(
                    _Candidate(
                        value, 0.5 * score, hit.page + 1, _loc(where), rule="reference", label=hit
                    )
                )
                break
    return _best(cands)
