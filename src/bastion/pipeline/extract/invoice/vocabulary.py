"""The words invoices use, as patterns: the terms of the lexicon (`lexicon.yaml`, by business
term and language) arranged into what the extractor scans with: the label vocabularies of each
field combined into one alternation, so that one scan of a page finds every label; the kinds of
amount a row can announce; the title line; the line-item column headers; the legal forms of
company names.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

from bastion.pipeline.extract.alternation import NamedAlternation, named_alternation
from bastion.pipeline.extract.invoice.lexicon import lexicon

_I = re.IGNORECASE

# Every label starts a word: testing that once, before the alternation, keeps the scan fast.
_WORD_START = r"(?<![^\W\d_])(?=[^\W\d_])"


def _fast(pattern: str) -> re.Pattern[str]:
    return re.compile(f"{_WORD_START}(?:{pattern})", _I)


_LEX = lexicon()


def _terms(key: str, *, compounds: bool = True) -> str:
    return _LEX.body(key, compounds=compounds)


def _words(key: str) -> re.Pattern[str]:
    """`key`'s terms, from a word start."""
    return _fast(rf"\b(?:{_terms(key)})")


# ------------------------------------------------------------------------------------ labels

_INVOICE_NO = _words("BT-1")
_NUMBER_MARK = _terms("number-marker")
_TITLE_NO = re.compile(
    rf"\b(?:{_terms('BT-3', compounds=False)})\s*(?:(?:{_NUMBER_MARK})\.?)?\s*[:.]?\s*", _I
)
# A title line: a document-type word, also inside a compound ("Teilrechnung",
# "Schlussrechnung", "Gutschrift"), then up to five words, then a number marker and the number
# ("Teilrechnung Bau (875) Nr. 210111 vom 30.05.2025", "Facture d'acompte N° F-17 du ...",
# "Credit note for order 55 No. CN-9 dated ...").
_TITLE_LINE = re.compile(
    rf"(?<![^\W\d_])(?P<type>(?:{_terms('BT-3')})[^\W\d_]*)"
    r"(?P<between>(?:\s+\S+){0,5}?)\s*"
    rf"(?<![^\W\d_])(?:{_NUMBER_MARK})(?![^\W\d_])\.?\s*[:.]?\s*"
    r"(?P<number>\S+)",
    _I,
)
# Words, also inside a compound, that make a title-line match a label of something else
# ("Rechnungsdatum Nr.", "Rechnungsbetrag").
_NOT_TITLE = re.compile(_terms("not-title", compounds=False), _I)
_REFERENCE_NO = _words("reference")
_ISSUE_DATE = _words("BT-2")
_DATED = _words("dated")
_GENERIC_DATE = _fast(rf"(?<![\w-])(?:{_terms('date')})(?![\w-])")
_NOT_ISSUE = _words("not-issue")
_DUE_DATE = _words("BT-9")


def _numbered(source: str) -> str:
    """`source` with each `<days>` slot a group of its own (`d1`, `d2`, ...)."""
    count = itertools.count(1)
    return re.sub(r"\(\?P<days>", lambda _: f"(?P<d{next(count)}>", source)


# Payment terms: each phrase names its number of days in a group of its own.
_DUE_DAYS = re.compile(rf"\b(?:{_numbered(_terms('BT-20'))})", _I)
_CUSTOMER = _words("BG-7")
_SHIP_TO = _words("BG-13")
_ISSUER = _words("BG-4")
# In a party block laid out as a form: the key whose value is the party's name ("Name:",
# "Firma:", "Company name:", "Raison sociale :"), and the headings that end the seller's block.
_NAME_KEY = re.compile(rf"^\s*(?:{_terms('name-key')})\s*:\s*", _I)
_OTHER_PARTY = re.compile(rf"\b(?:{_terms('other-party')})", _I)
_ACCOUNT_HOLDER = _words("BT-85")
_VAT_LABEL = _words("BT-31")
_TAX_NUMBER_LABEL = _words("BT-32")
_BIC_LABEL = _words("BT-86")
_CUSTOMER_WORDS = _words("buyer-words")
_DATE_WORD = _words("date-word")

# The kinds of amount a row can hold, most specific first. A total word followed by a net or
# gross qualifier ("Total HT", "Summe ohne USt", "Gesamt inkl. MwSt") is the one or the other.
_TOTAL_WORD = _terms("total-word")


def _qualified(key: str) -> str:
    return rf"(?:{_TOTAL_WORD})\s*\(?\s*(?:{_terms(key, compounds=False)})"


_TOTAL_STRONG = _fast(f"{_terms('BT-112')}|{_terms('BT-115')}|{_qualified('qualifier-gross')}")
_SUBTOTAL = _fast(f"{_terms('BT-109')}|{_terms('BT-106')}|{_qualified('qualifier-net')}")
# A tax word followed by an identifier's word ("VAT No.", "USt-IdNr.") labels an identifier.
_TAX = _fast(
    rf"{_terms('BT-110')}|"
    rf"(?:{_terms('tax-word')})(?![\s\-.]*(?:{_terms('id-suffix', compounds=False)}))"
)
# A statement that the invoice carries no VAT (small-business exemption, reverse charge, an
# exempt supply): with no tax amount printed, the tax is 0.
_NO_TAX = re.compile(_terms("no-vat", compounds=False), _I)
_TOTAL_WEAK = _fast(_TOTAL_WORD)
# The kinds of a totals block beyond net, VAT and gross (read by the totals model).
_PREPAID = _words("BT-113")
_DUE = _fast(f"{_terms('BT-115')}|{_terms('qualifier-due')}")
_ALLOWANCE = _words("BT-107")
_CHARGE = _words("BT-108")
_LINE_NET_SUM = _words("line-net-sum")
_VAT_BASE = _words("vat-base")
_VAT_TOTAL = _words("BT-110")
_CARRIED = _words("carried-forward")
_SKIP_AMOUNT_ROW = _fast(
    "|".join(_terms(key) for key in ("carried-forward", "BT-113", "BT-107", "BT-108"))
)

# Line-item table header vocabulary.
_COL_DESC = re.compile(f"^(?:{_terms('column-description')})", _I)
_COL_QTY = re.compile(f"^(?:{_terms('column-quantity')})", _I)
_COL_UNIT = re.compile(f"^(?:{_terms('column-unit-price')})", _I)
_COL_AMOUNT = re.compile(f"^(?:{_terms('column-line-amount')})", _I)
_COL_SKIP = re.compile(f"^(?:{_terms('column-other')})", _I)

LEGAL_FORM = _terms("legal-form")

# The shapes of tokens: a digit, a word of letters, a year.
_HAS_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W\d_]{2,}")
_YEAR_LIKE = re.compile(r"^(?:19|20)\d{2}$")

# Every label vocabulary in one alternation, most specific first: one scan of each page finds
# all labels (at a given position the first vocabulary that matches takes it).
_LABEL_ORDER = (
    ("invoice_number", _INVOICE_NO),
    ("due_date", _DUE_DATE),
    ("issue_date", _ISSUE_DATE),
    ("vat", _VAT_LABEL),
    ("tax_number", _TAX_NUMBER_LABEL),
    ("bic", _BIC_LABEL),
    ("customer", _CUSTOMER),
    ("ship_to", _SHIP_TO),
    ("issuer", _ISSUER),
    ("holder", _ACCOUNT_HOLDER),
    ("date", _GENERIC_DATE),
)
_LABEL_NAMES = {id(pattern): name for name, pattern in _LABEL_ORDER}


def _body(pattern: re.Pattern[str]) -> str:
    source = pattern.pattern
    return source[len(_WORD_START) :] if source.startswith(_WORD_START) else source


def _combine(named: tuple[tuple[str, re.Pattern[str]], ...]) -> NamedAlternation:
    """One alternation of named vocabularies, for text already in lower case.

    Case-sensitive and without a word boundary before each alternative (the word-start test
    comes once, first), and dispatched on each alternative's first letter: several times faster
    than the case-insensitive patterns one by one.
    """
    parts = []
    for name, pattern in named:
        body = re.sub(r"(^|\||\(\?:)\\b", r"\1", _body(pattern))
        assert not re.search(r"[A-Z]", re.sub(r"\\.", "", body)), f"{name}: upper case"
        parts.append((name, body))
    return named_alternation(_WORD_START, parts)


_LABELS = _combine(_LABEL_ORDER)

_KINDS = (
    ("skip", _SKIP_AMOUNT_ROW),
    ("vat_total", _VAT_TOTAL),
    ("strong", _TOTAL_STRONG),
    ("subtotal", _SUBTOTAL),
    ("tax", _TAX),
    ("weak", _TOTAL_WEAK),
)
_KIND = _combine(_KINDS)
_KIND_RESULT = {
    "strong": ("total", 1.0),
    "subtotal": ("subtotal", 0.95),
    "tax": ("tax", 0.9),
    "weak": ("total", 0.75),
}


# Qualifiers that make a total label a gross total or an amount to pay, whatever net word it
# also holds ("net à payer", "Gesamtbetrag inkl. USt.").
_GROSS_OR_DUE = re.compile(
    f"{_terms('qualifier-gross', compounds=False)}|{_terms('qualifier-due', compounds=False)}", _I
)


# A total word qualified as net, searched on its own: a longer total term may have taken the
# total word in the scan ("Importe total sin IVA").
_NET_QUALIFIED = re.compile(_qualified("qualifier-net"), _I)


@lru_cache(maxsize=4096)
def _amount_kind(label: str) -> tuple[str, float] | None:
    """What amount a label announces: the most specific kind named in it wins, and a net
    qualifier beats a generic total word ("Rechnungssumme ohne USt." is the net total) unless
    the label also says gross or due."""
    found = {_KIND.name(m) for m in _KIND.pattern.finditer(label.lower())}
    if not found or "skip" in found:
        return None
    if "vat_total" in found:
        return _KIND_RESULT["tax"]  # "Montant total de la TVA": the VAT total, not a total
    net = "subtotal" in found or ("strong" in found and _NET_QUALIFIED.search(label))
    if "strong" in found and net and not _GROSS_OR_DUE.search(label):
        return _KIND_RESULT["subtotal"]  # "Importe total sin IVA": a total without VAT
    for name in ("strong", "subtotal", "tax", "weak"):
        if name in found:
            return _KIND_RESULT[name]
    return None


# The column vocabularies, matched at a given position (no "^" anchor).
_HEADER_PATTERNS = tuple(
    (kind, re.compile(pattern.pattern.removeprefix("^"), _I))
    for kind, pattern in (
        ("qty", _COL_QTY),
        ("unit", _COL_UNIT),
        ("amount", _COL_AMOUNT),
        ("desc", _COL_DESC),
        ("skip", _COL_SKIP),
    )
)
