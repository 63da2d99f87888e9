"""The identifiers of an invoice checked by their format: IBANs (mod-97), BICs (beside their
label or the IBAN) and VAT identifiers (labelled, or of a known national format).
"""

from __future__ import annotations

import re
from functools import lru_cache

from bastion.business_ids import (
    COUNTRY_CODES,
    IBAN_LENGTHS,
    VAT_COUNTRIES,
    VAT_ID_PATTERN,
    iban_valid,
)
from bastion.pipeline.extract.invoice.document import _best, _Candidate, _Doc, _hits, _loc
from bastion.pipeline.extract.invoice.vocabulary import (
    _BIC_LABEL,
    _CUSTOMER_WORDS,
    _HAS_DIGIT,
    _TAX_NUMBER_LABEL,
    _VAT_LABEL,
)
from bastion.pipeline.extract.text import Hit, values_near

# "\b" then a capital, written as a capital then a lookbehind: see _VAT_HINT.
_IBAN_RE = re.compile(r"([A-Z](?<!\w[A-Z])[A-Z]\d{2}(?:[ ]?[A-Z0-9]){10,30})")

_BIC_RE = re.compile(r"\b([A-Z]{4}(?P<cc>[A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b")
# The country code comes first and the "not after a capital" test after it (the lookbehind spans
# the code): a pattern that starts with letters lets the regex engine skip ahead to candidates.
_VAT_HINT = re.compile(rf"(?:{'|'.join(sorted(VAT_COUNTRIES))})(?<![A-Z]..)[ .\-]?[0-9A-Z]")
_VAT_TOKEN_RE = re.compile(r"\b(?:[A-Z]{2,3}[ .\-]?)(?:[0-9A-Z]{1,12}[ .\-]?){1,6}")
_GSTIN_RE = re.compile(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b")
_SEPARATORS = re.compile(r"[ .\-]")


def _ibans(doc: _Doc) -> list[_Candidate]:
    out: list[_Candidate] = []
    seen: set[str] = set()
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _IBAN_RE.search(row.text):
                continue
            for ci, cell in enumerate(row.cells):
                for m in _IBAN_RE.finditer(cell.text):
                    value = _valid_iban_prefix(m.group(1))
                    if value is None or value in seen:
                        continue
                    seen.add(value)
                    score = 0.95
                    context = row.text.lower()
                    if (pi, ri, ci) in doc.customer_cells or _CUSTOMER_WORDS.search(
                        context[: context.find(m.group(1)[:4].lower()) + 1]
                    ):
                        score = 0.55
                    out.append(_Candidate(value, score, pi + 1, (pi, ri, ci), rule="iban_checksum"))
    return out


def _valid_iban_prefix(raw: str) -> str | None:
    """The IBAN at the start of `raw`, ending on a group boundary, when its checksum holds."""
    compact = ""
    for group in raw.split(" "):
        compact += group
        expected = IBAN_LENGTHS.get(compact[:2])
        if expected is None or len(compact) > expected:
            return None
        if len(compact) == expected:
            return compact if iban_valid(compact) else None
    return None


def _bic(doc: _Doc, iban: _Candidate | None) -> _Candidate | None:
    cands: list[_Candidate] = []
    for hit in _hits(doc, _BIC_LABEL):
        for text, score, where in values_near(doc.pages, hit):
            m = _BIC_RE.match(text.strip().replace(" ", "")[:11]) or _BIC_RE.search(text[:20])
            if m and m.group("cc") in COUNTRY_CODES:
                cands.append(
                    _Candidate(m.group(1), 0.92 * score, hit.page + 1, _loc(where), label=hit)
                )
                break
    if cands:
        return _best(cands)
    if iban is None:
        return None
    pi, ri, _ci = iban.where
    if pi < 0:
        return None
    row = doc.pages[pi].rows[ri]
    for m in _BIC_RE.finditer(row.text):
        token = m.group(1)
        if m.group("cc") == str(iban.value)[:2] and token != str(iban.value)[: len(token)]:
            return _Candidate(token, 0.7, pi + 1, iban.where, rule="beside_iban")
    return None


def _vat_ids(doc: _Doc) -> list[_Candidate]:
    cands: list[_Candidate] = []
    labelled: set[str] = set()
    for pattern, base in ((_VAT_LABEL, 1.0), (_TAX_NUMBER_LABEL, 0.45)):
        for hit in _hits(doc, pattern):
            for text, score, where in values_near(doc.pages, hit):
                value = _vat_value(text[:40])
                if value is None:
                    continue
                strict = bool(VAT_ID_PATTERN.fullmatch(value)) or bool(_GSTIN_RE.fullmatch(value))
                conf = base * score * (0.95 if strict else 0.75)
                if _is_customer(doc, where) or _CUSTOMER_WORDS.search(
                    doc.cell(hit.page, hit.row, hit.cell).text[: hit.start]
                ):
                    conf *= 0.5
                labelled.add(value)
                cands.append(_Candidate(value, conf, hit.page + 1, _loc(where), label=hit))
                break
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _VAT_HINT.search(row.text):
                continue
            for ci, cell in enumerate(row.cells):
                for value in _strict_vat_ids(cell.text):
                    if value in labelled:
                        continue
                    conf = 0.7 * (0.5 if (pi, ri, ci) in doc.customer_cells else 1.0)
                    cands.append(_Candidate(value, conf, pi + 1, (pi, ri, ci), rule="vat_format"))
    return cands


def _is_customer(doc: _Doc, where: Hit) -> bool:
    return (where.page, where.row, where.cell) in doc.customer_cells


_VAT_VALUE_RE = re.compile(r"[A-Z]{0,3}[ .\-]?[0-9][0-9A-Z .\-/]{4,20}")


def _vat_value(text: str) -> str | None:
    text = text.strip().lstrip(":#.- ")
    gst = _GSTIN_RE.search(text[:20])
    if gst:
        return gst.group(0)
    m = _VAT_VALUE_RE.match(text.upper()) if text[:2].isupper() or text[:1].isdigit() else None
    if not m:
        return None
    raw = m.group(0).strip(" .-/")
    # Stop at a gap of two spaces or a word that is not part of the identifier.
    raw = re.split(r"\s{2,}", raw)[0]
    compact = _SEPARATORS.sub("", raw).replace("/", "")
    for strict in VAT_ID_PATTERN.finditer(compact):
        if strict.start() == 0:
            return strict.group(0)
    digits = sum(ch.isdigit() for ch in compact)
    if digits < 6 or len(compact) > 16:
        return None
    return compact


@lru_cache(maxsize=4096)
def _strict_vat_ids(text: str) -> tuple[str, ...]:
    """VAT identifiers of a known national format, written with or without separators."""
    out: list[str] = []
    for m in _VAT_TOKEN_RE.finditer(text):
        token = m.group(0)
        if not _HAS_DIGIT.search(token):
            continue  # every known format has digits
        groups = [(g.start(), g.group(0)) for g in _VAT_GROUP_RE.finditer(token)]
        i = 0
        while i < len(groups):
            # The longest run of groups from here that forms a known VAT identifier.
            found = 0
            for n in range(len(groups), i, -1):
                compact = "".join(g for _start, g in groups[i:n])
                if VAT_ID_PATTERN.fullmatch(compact):
                    found = n
                    break
            start = m.start() + groups[i][0]
            if found and not _iban_at(text, start):
                out.append(compact)
                i = found
            else:
                i += 1
    return tuple(out)


_VAT_GROUP_RE = re.compile(r"[0-9A-Z]+")


def _iban_at(text: str, start: int) -> bool:
    """Whether a valid IBAN starts at `start` (its first digits look like a VAT id)."""
    window = text[start : start + 44].replace(" ", "")
    n = IBAN_LENGTHS.get(window[:2])
    return n is not None and len(window) >= n and iban_valid(window[:n])
