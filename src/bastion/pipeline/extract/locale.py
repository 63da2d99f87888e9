"""Locale-aware parsing of amounts, dates, currencies and the document language.

Amounts may be written either way (`1.234,56`, `1,234.56`, `1 234,56`, `1'234.56`, `-12,50`,
`(12.50)`, `12,50-`) with currency symbols or codes around them; dates may be numeric (ISO,
`DD.MM.YYYY`, `DD/MM/YYYY` or `MM/DD/YYYY`) or written out in English, German, French, Spanish,
Italian, Dutch or Polish. Dates come out as ISO `YYYY-MM-DD` strings, amounts as floats.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CURRENCY_CODES",
    "AmountMatch",
    "DateMatch",
    "detect_language",
    "find_amounts",
    "find_currencies",
    "find_dates",
    "first_amount_start",
    "guess_dayfirst",
    "guess_decimal_separator",
    "parse_amount",
    "parse_date",
]

# ----------------------------------------------------------------------------------- amounts

_SPACES = "\u00a0\u202f\u2009\u2007 "
_MINUS = "-\u2212\u2013"

_AMOUNT_RE = re.compile(
    r"(?=[\-\u2212\u2013$€£¥₹\d])"  # a cheap first test: most positions fail here
    r"(?<![\w.,/\-\u2212])"
    r"(?P<sign>[\-\u2212\u2013]\s?)?"
    r"(?:[$€£¥₹]\s?)?"
    r"(?P<body>"
    r"\d{1,2}(?:,\d{2})+,\d{3}(?:\.\d{1,2})?"  # Indian grouping: 1,23,456.00
    r"|\d{1,3}(?P<sep>[.,'\u2019\u00a0\u202f\u2009\u2007 ])\d{3}(?:(?P=sep)\d{3})*(?:[.,]\d{1,3})?"
    r"|\d+(?:[.,]\d{1,4})?"
    r")"
    r"(?P<trail>-(?![\w]))?"
    r"(?![.,]?\d)(?!\s?%)(?![A-Za-z\d])(?!-\d)"
)
_CLEAN_RE = re.compile(r"[^\d.,'\u2019" + _SPACES + _MINUS + "()]")


@dataclass(frozen=True, slots=True)
class AmountMatch:
    value: float
    start: int
    end: int
    raw: str
    decimals: int  # digits after the decimal separator (0 when none)


def _body_value(body: str, sep: str | None, decimal: str | None) -> tuple[float, int]:
    """The value of a digit body and how many decimals it has."""
    if sep is None and body.count(",") >= 2:  # Indian grouping
        whole, _, frac = body.replace(",", "").partition(".")
        return float(f"{whole}.{frac or 0}"), len(frac)
    if sep:
        groups = body.split(sep)
        last = groups[-1]
        tail = ""
        for mark in ".,":
            if mark != sep and mark in last:
                last, tail = last.split(mark, 1)
        if not tail and len(groups) == 2 and sep in ".," and decimal == sep:
            # `1.234` in a document that writes decimals with `.`: one and a bit, not 1234.
            return float(groups[0] + "." + groups[1]), 3
        digits = "".join(groups[:-1]) + last
        if tail:
            return float(digits + "." + tail), len(tail)
        return float(digits), 0
    for mark in ".,":
        if mark in body:
            whole, frac = body.split(mark, 1)
            if len(frac) == 3 and decimal is not None and decimal != mark:
                return float(whole + frac), 0
            return float(whole + "." + frac), len(frac)
    return float(body), 0


def find_amounts(text: str, decimal: str | None = None) -> list[AmountMatch]:
    """Every number in `text` that can be an amount, left to right (percentages excluded).

    `decimal` is the document's decimal separator when known ("." or ","); it settles
    `1.234` and `1,234`. Without it a single group of three digits is read as thousands.
    """
    return list(_find_amounts(text, decimal))


@lru_cache(maxsize=8192)
def _find_amounts(text: str, decimal: str | None) -> tuple[AmountMatch, ...]:
    out: list[AmountMatch] = []
    for m in _AMOUNT_RE.finditer(text):
        sign, body, sep, trail = m.group("sign", "body", "sep", "trail")
        if sep is None and body.isdigit():
            value, decimals = float(body), 0  # the common case: digits only
        else:
            value, decimals = _body_value(body, sep, decimal)
        start, end = m.span()
        negative = bool(sign or trail)
        if start > 0 and text[start - 1] == "(" and end < len(text) and text[end] == ")":
            negative = True
        out.append(AmountMatch(-value if negative else value, start, end, m.group(0), decimals))
    return tuple(out)


@lru_cache(maxsize=8192)
def first_amount_start(text: str) -> int | None:
    """Where the first amount of `text` starts (`find_amounts(text)[0].start`), or None when
    there is none: cheaper than reading every amount when only that is needed."""
    m = _AMOUNT_RE.search(text)  # every match is an amount
    return m.start() if m else None


def parse_amount(text: str, decimal: str | None = None) -> float | None:
    """The amount written in `text` (currency symbols and codes around it are ignored).

    >>> parse_amount("1.234,56 €"), parse_amount("USD 1,234.56"), parse_amount("-12,50")
    (1234.56, 1234.56, -12.5)
    """
    stripped = text.strip()
    if not stripped:
        return None
    negative = stripped.startswith("(") and stripped.endswith(")")
    cleaned = _CLEAN_RE.sub("", stripped).strip(_SPACES + "()")
    if not cleaned:
        return None
    matches = find_amounts(cleaned, decimal)
    if len(matches) != 1:
        return None
    value = matches[0].value
    return -abs(value) if negative else value


def guess_decimal_separator(text: str) -> str | None:
    """ "," or "." from how the document writes two-decimal amounts; None when unclear."""
    comma = len(_DEC_COMMA_RE.findall(text))
    dot = len(_DEC_DOT_RE.findall(text))
    if comma == dot:
        return None
    return "," if comma > dot else "."


# Both start with a digit, consumed before the lookbehind (which then spans it): a pattern
# that starts with a character class lets the regex engine skip quickly to the next digit.
_DEC_COMMA_RE = re.compile(r"\d(?<![\d,]\d)\d{0,2}(?:[.\u00a0\u202f ]\d{3})*,\d{2}(?![\d,.])")
_DEC_DOT_RE = re.compile(r"\d(?<![\d.]\d)\d{0,2}(?:,\d{3})*\.\d{2}(?![\d,.])")

# -------------------------------------------------------------------------------- currencies

CURRENCY_CODES = frozenset(
    [
        "EUR",
        "USD",
        "GBP",
        "CHF",
        "PLN",
        "INR",
        "JPY",
        "CNY",
        "SEK",
        "NOK",
        "DKK",
        "CZK",
        "HUF",
        "RON",
        "BGN",
        "CAD",
        "AUD",
        "NZD",
        "SGD",
        "HKD",
        "ZAR",
        "BRL",
        "MXN",
        "TRY",
        "RUB",
        "UAH",
        "AED",
        "SAR",
        "ILS",
        "KRW",
        "THB",
        "MYR",
        "IDR",
        "PHP",
        "VND",
        "NGN",
        "KES",
        "EGP",
        "MAD",
        "TND",
        "ARS",
        "CLP",
        "COP",
        "PEN",
    ]
)
_SYMBOLS = {
    "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "zł": "PLN", "zl": "PLN", "Kč": "CZK",
    "Ft": "HUF", "US$": "USD", "CA$": "CAD", "C$": "CAD", "A$": "AUD", "AU$": "AUD",
    "NZ$": "NZD", "S$": "SGD", "HK$": "HKD", "R$": "BRL", "Rs.": "INR", "Rs": "INR",
    "₽": "RUB", "₩": "KRW", "₺": "TRY", "₪": "ILS", "Fr.": "CHF", "SFr.": "CHF", "$": "USD",
    "kr": "SEK", "€uro": "EUR", "Euro": "EUR", "Euros": "EUR", "euro": "EUR", "euros": "EUR",
    "Dollar": "USD", "dollars": "USD", "Rupees": "INR", "złotych": "PLN", "Franken": "CHF",
}  # fmt: skip
_CODE_ALT = "|".join(sorted(CURRENCY_CODES))
_SYM_ALT = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_SYMBOL_FIRST = "".join(sorted({re.escape(s[0]) for s in _SYMBOLS}))
_CURRENCY_RE = re.compile(
    # A cheap first-character test before the alternations keeps the scan fast.
    rf"(?=[A-Z{_SYMBOL_FIRST}])"
    rf"(?:(?<![A-Za-z])(?P<code>{_CODE_ALT})(?![A-Za-z])|(?P<sym>{_SYM_ALT})(?![A-Za-z]))"
)
_SYMBOL_LETTER_START = re.compile(r"[A-Za-z]")


def find_currencies(text: str) -> list[tuple[str, int, int]]:
    """ISO 4217 codes for every currency code or symbol in `text`: (code, start, end)."""
    out: list[tuple[str, int, int]] = []
    for m in _CURRENCY_RE.finditer(text):
        code = m.group("code")
        if code:
            out.append((code, m.start(), m.end()))
            continue
        sym = m.group("sym")
        start = m.start()
        if _SYMBOL_LETTER_START.match(sym) and start > 0 and text[start - 1].isalpha():
            continue  # "Rs" inside a word
        if sym in {"kr", "Rs", "Ft", "zl"} and not _near_digit(text, start, m.end()):
            continue  # short words that are currencies only next to an amount
        out.append((_SYMBOLS[sym], start, m.end()))
    return out


def _near_digit(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 3) : start]
    after = text[end : end + 3]
    return any(c.isdigit() for c in before + after)


# ------------------------------------------------------------------------------------- dates

_MONTHS: dict[str, int] = {}


def _months(names: str) -> None:
    for month, group in enumerate(names.split(";"), start=1):
        for name in group.split(","):
            _MONTHS[name.strip()] = month


# English, German, French, Spanish, Italian, Dutch, Polish (nominative and genitive).
_months(
    "january,jan;february,feb;march,mar;april,apr;may;june,jun;july,jul;august,aug;"
    "september,sep,sept;october,oct;november,nov;december,dec"
)
_months(
    "januar,jänner,jän;februar,feber;märz,maerz,mär,mrz;april;mai;juni;juli;august;"
    "september;oktober,okt;november;dezember,dez"
)
_months(
    "janvier,janv;février,fevrier,févr,fevr,fév;mars;avril,avr;mai;juin;juillet,juil;"
    "août,aout;septembre;octobre;novembre;décembre,decembre,déc"
)
_months(
    "enero,ene;febrero;marzo;abril,abr;mayo;junio;julio;agosto,ago;septiembre,setiembre;"
    "octubre;noviembre;diciembre,dic"
)
_months(
    "gennaio,gen;febbraio;marzo;aprile;maggio,mag;giugno,giu;luglio,lug;agosto;settembre,set;"
    "ottobre,ott;novembre;dicembre"
)
_months(
    "januari;februari;maart,mrt;april;mei;juni;juli;augustus;september;oktober;november;december"
)
_months(
    "styczeń,stycznia,sty;luty,lutego,lut;marzec,marca;kwiecień,kwietnia,kwi;maj,maja;"
    "czerwiec,czerwca,cze;lipiec,lipca,lip;sierpień,sierpnia,sie;wrzesień,września,wrz;"
    "październik,października,paź;listopad,listopada,lis;grudzień,grudnia,gru"
)

_Trie = dict[str, "_Trie"]


def _trie_alternation(words: list[str]) -> str:
    """`words` as one regex alternation, factored into a trie on their letters.

    It matches what `a|b|c...` of the same words, longest first, matches: the words that match
    at one position are prefixes of each other, and the trie also tries the longest of them
    first (a word ending at a node is that node's last choice). The regex engine tries a few
    letters at each node instead of every word at every position: several times faster.
    """
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def emit(node: _Trie) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in node.items() if ch]
        if "" in node:
            alts.append("")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root)


_MONTH_ALT = _trie_alternation(sorted(_MONTHS, key=len, reverse=True))

_ISO_RE = re.compile(r"(\d{4})(?<![\d.,/]\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d])")
_NUMERIC_RE = re.compile(r"(?<![\d.,/-])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d]|[.,]\d)")
_DAY_MONTH_RE = re.compile(
    rf"(?<![\w.])(?=\d)(\d{{1,2}})(?:er|e|st|nd|rd|th|\.|º|°)?[\s\-./]*(?:de\s+|of\s+)?"
    rf"({_MONTH_ALT})(?![^\W\d_])\.?,?[\s\-./]*(?:de\s+)?(\d{{4}}|\d{{2}}(?![\d:]))(?![\d])",
    re.IGNORECASE,
)
_MONTH_DAY_RE = re.compile(
    rf"(?<![^\W\d_])(?=[^\W\d_])({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s?,?\s+(\d{{4}})"
    r"(?![\d])",
    re.IGNORECASE,
)
_MONTH_YEAR_RE = re.compile(
    rf"(?<![^\W\d_])(?=[^\W\d_])({_MONTH_ALT})\.?\s+(\d{{4}})(?![\d])", re.IGNORECASE
)


_TWO_DIGITS = re.compile(r"\d\d")


@dataclass(frozen=True, slots=True)
class DateMatch:
    iso: str
    start: int
    end: int
    kind: str  # "iso", "numeric", "text"


def _iso(year: int, month: int, day: int) -> str | None:
    if year < 100:
        year += 2000 if year < 70 else 1900
    if not 1900 <= year <= 2199:
        return None
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def find_dates(text: str, dayfirst: bool | None = None) -> list[DateMatch]:
    """Every date in `text`, left to right.

    `dayfirst` settles `03/04/2025` (True: 3 April; False: March 4; None: day first unless only
    month first is possible). Dotted dates are always day first.
    """
    found: list[DateMatch] = []
    if not _TWO_DIGITS.search(text):
        return found  # every date pattern has a year of two or four digits
    taken: list[tuple[int, int]] = []

    def add(iso: str | None, start: int, end: int, kind: str) -> None:
        if iso is None or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(DateMatch(iso, start, end, kind))

    for m in _ISO_RE.finditer(text):
        add(_iso(int(m.group(1)), int(m.group(3)), int(m.group(4))), m.start(), m.end(), "iso")
    for m in _DAY_MONTH_RE.finditer(text):
        month = _MONTHS.get(m.group(2).lower())
        if month:
            iso = _iso(int(m.group(3)), month, int(m.group(1)))
            add(iso, m.start(), m.end(), "text")
    for m in _MONTH_DAY_RE.finditer(text):
        month = _MONTHS.get(m.group(1).lower())
        if month:
            add(_iso(int(m.group(3)), month, int(m.group(2))), m.start(), m.end(), "text")
    for m in _NUMERIC_RE.finditer(text):
        a, sep, b, year = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        if sep == "." or a > 12:
            iso = _iso(year, b, a)
        elif b > 12 or dayfirst is False:
            iso = _iso(year, a, b)
        else:
            iso = _iso(year, b, a)
        add(iso, m.start(), m.end(), "numeric")
    found.sort(key=lambda d: d.start)
    return found


def parse_date(text: str, dayfirst: bool | None = None) -> str | None:
    """The first date in `text` as ISO `YYYY-MM-DD`, or None.

    >>> parse_date("3. März 2025"), parse_date("March 3, 2025"), parse_date("1er janvier 2025")
    ('2025-03-03', '2025-03-03', '2025-01-01')
    """
    dates = find_dates(text, dayfirst)
    return dates[0].iso if dates else None


def parse_month_year(text: str) -> str | None:
    """`March 2025` as `2025-03-01` (the first of the month), or None."""
    m = _MONTH_YEAR_RE.search(text)
    if not m:
        return None
    month = _MONTHS.get(m.group(1).lower())
    return _iso(int(m.group(2)), month, 1) if month else None


# Both start with a character class and test what precedes it in a lookbehind that spans it:
# "(?<![\d/])\d" and "\b[A-Z]", in a form that lets the regex engine skip ahead to candidates.
_SLASH_DATE_RE = re.compile(r"(\d(?<![\d/]\d)\d?)[/-](\d{1,2})[/-](?:\d{4}|\d{2})(?!\d)")
_US_STATE_ZIP_RE = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z],?\s+\d{5}(?:-\d{4})?\b")


def guess_dayfirst(text: str, language: str, currency: str | None = None) -> bool:
    """Whether `NN/NN/YYYY` dates in this document are day first.

    Unambiguous dates in the document decide; otherwise US conventions (English text with
    dollars or a US state and ZIP code) mean month first, everything else day first.
    """
    day_first = month_first = 0
    for m in _SLASH_DATE_RE.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if a > 12 >= b:
            day_first += 1
        elif b > 12 >= a:
            month_first += 1
    if day_first != month_first:
        return day_first > month_first
    if language != "en":
        return True
    if currency is not None:
        return currency != "USD"
    return not _US_STATE_ZIP_RE.search(text)


# ---------------------------------------------------------------------------------- language

_STOPWORDS = {
    "en": "the and of to for invoice total date due amount please payment your with from this is "
    "bill tax number description quantity price thank you",
    "de": "der die das und für mit rechnung betrag datum zahlung bitte nicht ist von den wir "
    "ihre sie zu zahlen summe menge preis steuer gesamt netto bis",
    "fr": "le la les et des pour facture montant du de à votre paiement nous vous en sur date "
    "total prix quantité tva réglement échéance client",
    "es": "el la los las y para factura importe fecha del con por su pago cantidad precio "
    "total iva cliente",
    "it": "il la di e per fattura importo data della con del pagamento quantità prezzo totale "
    "iva cliente",
    "nl": "de het en van voor factuur bedrag datum betaling een uw op te aantal prijs totaal "
    "btw klant",
    "pl": "i w z na faktura kwota data do zapłaty nabywca sprzedawca netto brutto vat razem "
    "cena ilość nazwa",
}
_WORD_LANGS: dict[str, list[str]] = {}
for _lang, _words in _STOPWORDS.items():
    for _word in _words.split():
        _WORD_LANGS.setdefault(_word, []).append(_lang)
_WORD_RE = re.compile(r"[^\W\d_]+")


def detect_language(text: str) -> str:
    """The most likely language of `text` (en, de, fr, es, it, nl, pl); "en" when unclear."""
    counts: dict[str, int] = {}
    get = _WORD_LANGS.get
    for word in _WORD_RE.findall(text[:20000].lower()):
        langs = get(word)
        if langs:
            for lang in langs:
                counts[lang] = counts.get(lang, 0) + 1
    if not counts:
        return "en"
    best = max(counts, key=counts.__getitem__)  # the first counted wins a tie, as most_common
    return best if counts[best] >= 2 else "en"
