"""Contract fields from page text: parties, effective date, term, expiry, governing law,
total value and currency, signatories (English, German, French, some Spanish).

Each field comes from the phrase contracts use for it ("by and between A and B", "governed by
the laws of", "for a term of 12 months", "Name:" under a signature line...), not from templates.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from bastion.pipeline.extract.invoice import LEGAL_FORM
from bastion.pipeline.extract.locale import (
    detect_language,
    find_amounts,
    find_currencies,
    find_dates,
    guess_dayfirst,
    guess_decimal_separator,
)
from bastion.pipeline.extract.text import Page, Row
from bastion.pipeline.model import ExtractedField
from bastion.pipeline.model import read_field as _field

__all__ = ["extract_contract"]

_I = re.IGNORECASE

_BETWEEN = re.compile(
    r"\b(?:by\s+and\s+)?between\s*:?\s+|\bzwischen\s*:?\s+|\bentre\s*:?\s+(?:les\s+soussign[ée]s\s*:?\s*)?",
    _I,
)
_AND = re.compile(r"(?:^|\s)(?:and|und|et|y)\s*:?\s+", _I)
_PARTY_END = re.compile(r"\s*(?:\(|,|;|\n|\s(?:having|with\s+(?:its|offices)|located|whose|"
                        r"a\s+\w+\s+(?:corporation|company)|mit\s+sitz|dont\s+le\s+si[èe]ge|"
                        r"domicili|represented|vertreten|repr[ée]sent[ée]))", _I)  # fmt: skip
_LEADING_ARTICLE = re.compile(
    r"^(?:(?:the|der|die|dem|den|des|la|le|les|l['\u2019]|el|los)\s*)?"
    r"(?:(?:company|firma|gesellschaft|soci[ée]t[ée]|entreprise|empresa)\s+)?",
    _I,
)
_LEGAL_END = re.compile(rf"(?:{LEGAL_FORM})(?=$|[\s,;)(]|\.(?:\s|$))")
_ROLE_LABEL = re.compile(
    r"^(?:party\s+[a-d1-4]|first\s+party|second\s+party|client|customer|contractor|supplier|"
    r"provider|service\s+provider|consultant|licensor|licensee|landlord|tenant|lessor|lessee|"
    r"employer|employee|buyer|seller|vendor|purchaser|auftraggeber(?:in)?|auftragnehmer(?:in)?|"
    r"vermieter(?:in)?|mieter(?:in)?|käufer(?:in)?|verkäufer(?:in)?|arbeitgeber(?:in)?|"
    r"arbeitnehmer(?:in)?|dienstleister|le\s+prestataire|le\s+client|prestataire|le\s+bailleur|"
    r"le\s+preneur|bailleur|preneur|le\s+vendeur|l['\u2019]acheteur|le\s+fournisseur)\s*:\s*(?P<v>.+)$",
    _I,
)
_EFFECTIVE = re.compile(
    r"\beffective\s+(?:as\s+of|date|from|on)\b|\bdated(?:\s+as\s+of)?\b|"
    r"\b(?:made|entered\s+into)(?:\s+and\s+entered\s+into)?\s+(?:on|as\s+of)\b|"
    r"\bcommenc\w*\s+(?:on|date)\b|\b(?:takes?|taking)\s+effect\s+(?:on|from|as\s+of)\b|"
    r"\bcomes?\s+into\s+(?:force|effect)\s+on\b|\bstart\s+date\b|\bg[üu]ltig\s+ab\b|\bwirksam\s+ab\b|"
    r"\btritt\s+am\b|\bbeginnt\s+am\b|\bvertragsbeginn\b|\bmit\s+wirkung\s+(?:zum|ab|vom)\b|"
    r"\bprend\s+effet\s+(?:le|[àa]\s+compter\s+du)\b|\bentre(?:ra)?\s+en\s+vigueur\s+le\b|"
    r"\bdate\s+d['\u2019]effet\b|\b[àa]\s+compter\s+du\b|\bentrada\s+en\s+vigor\b|"
    r"\bcon\s+efecto\s+(?:a\s+partir\s+)?del?\b",
    _I,
)
_EXPIRY = re.compile(
    r"\bexpir\w*\s+on\b|\bexpir(?:y|ation)\s+date\b|\bterminat\w*\s+on\b|\bend\s+date\b|"
    r"\bend(?:s|ing)?\s+on\b|\buntil\b|\bthrough\b|\bendet\s+am\b|\bbis\s+(?:zum|einschlie[ßs]lich)\b|"
    r"\bl[äa]uft\s+bis\b|\bvertragsende\b|\bexpire(?:ra)?\s+le\b|\bjusqu['\u2019]au\b|"
    r"\bprend(?:ra)?\s+fin\s+le\b|\bdate\s+d['\u2019]expiration\b|\bhasta\s+el\b|\bvence\s+el\b",
    _I,
)
_TERM_WORD = re.compile(
    r"\bterm\b|\bperiod\b|\bduration\b|\blaufzeit\b|\bdauer\b|\bdur[ée]e\b|\bp[ée]riode\b|"
    r"\bplazo\b|\bduraci[óo]n\b|\bvigencia\b",
    _I,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty-four": 24,
    "thirty-six": 36, "ein": 1, "einem": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4,
    "fünf": 5, "sechs": 6, "zwölf": 12, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4,
    "cinq": 5, "douze": 12, "uno": 1, "dos": 2, "tres": 3, "doce": 12,
}  # fmt: skip
_UNITS = {
    "year": "years", "jahr": "years", "an": "years", "année": "years", "annee": "years",
    "año": "years", "ano": "years", "month": "months", "monat": "months", "mois": "months",
    "mes": "months", "week": "weeks", "woche": "weeks", "semaine": "weeks", "semana": "weeks",
    "day": "days", "tag": "days", "jour": "days", "día": "days", "dia": "days",
}  # fmt: skip
_NUM_ALT = "|".join(sorted((re.escape(w.strip()) for w in _NUMBER_WORDS), key=len, reverse=True))
_DURATION = re.compile(
    rf"\b(?P<n>\d{{1,3}}|{_NUM_ALT})\s*(?:\(\s*\d{{1,3}}\s*\)\s*)?"
    r"(?P<u>years?|jahren?|jahre|ans?|ann[ée]es?|a[ñn]os?|months?|monaten?|monate|mois|meses|"
    r"mes|weeks?|wochen|woche|semaines?|semanas?|days?|tagen?|tage|jours?|d[íi]as?)\b",
    _I,
)
_GOVERNING = re.compile(
    r"(?i:governed\s+by|construed\s+in\s+accordance\s+with|subject\s+to)\s+"
    r"(?i:and\s+construed\s+in\s+accordance\s+with\s+)?(?i:the\s+)?(?i:laws?\s+of)\s+"
    r"(?i:the\s+)?(?P<x>(?:(?:State|Commonwealth|Province|Republic|Federal\s+Republic|Kingdom|"
    r"Canton)\s+of\s+)?[A-Z][\w]+(?:\s+(?:and\s+)?[A-Z][\w]+){0,3})"
)
_GOVERNING_LABEL = re.compile(
    r"(?i:governing\s+law)\s*:\s*(?i:the\s+laws?\s+of\s+(?:the\s+)?)?"
    r"(?P<x>(?:(?:State|Commonwealth|Province|Republic|Kingdom)\s+of\s+)?[A-Z][\w]+"
    r"(?:\s+(?:and\s+)?[A-Z][\w]+){0,3})"
)
_GOVERNING_ADJ = re.compile(
    r"(?:unterliegt|unterliegen|gilt|gelten|anwendbar\s+ist)\s+(?:ausschlie[ßs]lich\s+)?"
    r"(?:dem\s+|das\s+)?(?P<adj>deutsche[mnrs]?|[öo]sterreichische[mnrs]?|"
    r"schweizerische[mnrs]?|schweizer|franz[öo]sische[mnrs]?|englische[mnrs]?)\s+recht|"
    r"recht\s+der\s+(?P<x>bundesrepublik\s+deutschland|republik\s+[öo]sterreich|schweiz)|"
    r"(?:soumis|r[ée]gi|r[ée]gie)e?s?\s+(?:au|par\s+le)\s+droit\s+(?P<fr>fran[çc]ais|belge|suisse|"
    r"luxembourgeois|allemand|anglais)|droit\s+applicable\s*:?\s*(?:le\s+)?droit\s+"
    r"(?P<fr2>fran[çc]ais|belge|suisse|luxembourgeois|allemand)|"
    r"(?:regir[áa]|sometido)\s+(?:por\s+la|a\s+la)\s+(?:legislaci[óo]n|ley)\s+(?P<es>espa[ñn]ola)",
    _I,
)
_COUNTRY_ADJ = {
    "deutsch": "Germany", "österreich": "Austria", "osterreich": "Austria",
    "schweiz": "Switzerland", "französ": "France", "franzos": "France", "englisch": "England",
    "bundesrepublik deutschland": "Germany", "republik österreich": "Austria",
    "republik osterreich": "Austria", "français": "France", "francais": "France",
    "belge": "Belgium", "suisse": "Switzerland", "luxembourgeois": "Luxembourg",
    "allemand": "Germany", "anglais": "England", "española": "Spain", "espanola": "Spain",
}  # fmt: skip
_VALUE_TOTAL = re.compile(
    r"\btotal\s+(?:contract\s+)?(?:value|price|fee|fees|amount|consideration|compensation)\b|"
    r"\bcontract\s+(?:value|price|sum)\b|\bin\s+the\s+total\s+amount\s+of\b|"
    r"\bgesamtverg[üu]tung\b|\bgesamtpreis\b|\bgesamtwert\b|\bmontant\s+(?:total|global)\b|"
    r"\bprix\s+(?:total|global)\b|\bpour\s+un\s+montant\s+total\s+de\b|"
    r"\br[ée]mun[ée]ration\s+totale\b|\bimporte\s+total\b|\bvalor\s+total\b",
    _I,
)
_VALUE_OTHER = re.compile(
    r"\bin\s+the\s+amount\s+of\b|\b(?:a|the)\s+(?:fixed\s+|flat\s+)?(?:fee|price|sum)\s+of\b|"
    r"\bverg[üu]tung\s+(?:betr[äa]gt|von|in\s+h[öo]he\s+von)\b|"
    r"\bpauschal\w*\s+(?:von|in\s+h[öo]he\s+von)\b|\bmontant\s+forfaitaire\b|"
    r"\bprix\s+forfaitaire\b|\bpour\s+un\s+montant\s+de\b|"
    r"\br[ée]mun[ée]ration\s+(?:forfaitaire\s+)?de\b",
    _I,
)
# "EUR 2,000.00 per month": a rate, not the contract's value.
_PER_PERIOD = re.compile(
    r"^\s*(?:\w{3}\s+)?(?:per|a|each|every|/|pro|par|je|al|por)\s*"
    r"(?:month|year|annum|week|day|hour|monat|jahr|woche|tag|stunde|mois|an|année|semaine|jour|"
    r"heure|mes|año)\b|^\s*(?:monthly|yearly|annually|weekly|daily|hourly|monatlich|jährlich|"
    r"mensuel|annuel)",
    _I,
)
_SIGN_NAME = re.compile(
    r"^(?:name|printed\s+name|print\s+name|signed\s+by|by|nom|nom\s+et\s+pr[ée]nom|"
    r"sign[ée]\s+par|unterzeichnet\s+von|name\s*/\s*title|nombre)\s*:\s*(?:/s/\s*)?"
    r"(?P<v>[A-ZÄÖÜÉ][\w.'\u2019\-]*(?:\s+[A-ZÄÖÜÉ][\w.'\u2019\-]*){1,3})",
    _I,
)
_SIGNED = re.compile(
    r"\bsigned\b|\bsignature|\bfor\s+and\s+on\s+behalf\b|\bunterschrift|\bunterzeichnet|"
    r"\bsign[ée]\b|\bpour\s+le\s+compte\b|\bfirma(?:do)?\b",
    _I,
)
_ORG_HINT = re.compile(rf"\s(?:{LEGAL_FORM})$|\b(?:Director|Manager|Officer|CEO|CFO|Partner|"
                       r"Geschäftsführer|Vorstand|Directeur|Gérant|Président)\b")  # fmt: skip
_UNDERLINE = re.compile(r"_{5,}|\.{8,}")
_PERSON = re.compile(r"^(?:(?:Dr|Prof|Mr|Mrs|Ms|Me|M|Mme)\.?\s+)*[A-ZÄÖÜÉ][a-zäöüéèçß'\u2019\-]+"
                     r"(?:\s+[A-ZÄÖÜÉ][\w'\u2019\-]*\.?){1,3}$")  # fmt: skip


@dataclass(slots=True)
class _Text:
    text: str
    starts: list[int]  # offset where each page begins

    def page_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def _party_name(text: str) -> str | None:
    text = text.lstrip(" :\n\"“'")
    legal = _LEGAL_END.search(text[:120])
    end = _PARTY_END.search(text)
    stop = end.start() if end else min(len(text), 100)
    if legal and legal.end() <= stop + 40 and (not end or legal.start() < stop + 5):
        stop = legal.end()
    name = text[:stop].strip(" ,;:\"”'").replace("\n", " ")
    name = _LEADING_ARTICLE.sub("", name)
    if len(name) < 2 or len(name) > 100 or not name[0].isalnum():
        return None
    return name


def _parties(doc: _Text, pages: list[Page]) -> ExtractedField | None:
    flat = doc.text.replace("\t", " ").replace("\n", " ")  # paragraphs wrap anywhere
    for m in _BETWEEN.finditer(flat[:20000]):
        first = _party_name(flat[m.end() : m.end() + 400])
        if not first:
            continue
        after = m.end() + flat[m.end() :].find(first) + len(first)
        window = flat[after : after + 600]
        depth = 0
        for i, ch in enumerate(window):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth = max(0, depth - 1)
            elif depth == 0:
                am = _AND.match(window, i) if ch in " \n" else None
                if am:
                    second = _party_name(window[am.end() :])
                    if second and second.lower() != first.lower():
                        return _field(
                            [first, second], 0.85, doc.page_of(m.start()), "between_clause"
                        )
                    break
        # "between" found but no second party: keep looking at labelled roles.
        break
    names: list[str] = []
    page_no: int | None = None
    for page in pages[:3]:
        for row in page.rows:
            for cell in row.cells:
                lm = _ROLE_LABEL.match(cell.text)
                if lm:
                    name = _party_name(lm.group("v"))
                    if name and name not in names:
                        names.append(name)
                        page_no = page_no or page.number
    if len(names) >= 2:
        return _field(names[:4], 0.7, page_no, "role_labels")
    return None


def _date_after(doc: _Text, pattern: re.Pattern[str], dayfirst: bool) -> tuple[str, int] | None:
    for m in pattern.finditer(doc.text):
        window = doc.text[m.end() : m.end() + 80]
        dates = find_dates(window, dayfirst)
        if dates and dates[0].start < 45:
            return dates[0].iso, doc.page_of(m.start())
    return None


def _term(doc: _Text) -> tuple[str, int] | None:
    for m in _TERM_WORD.finditer(doc.text):
        window = doc.text[m.end() : m.end() + 160]
        d = _DURATION.search(window)
        if d:
            raw_n = d.group("n").lower()
            n = int(raw_n) if raw_n.isdigit() else _NUMBER_WORDS.get(raw_n)
            unit_raw = d.group("u").lower()
            unit = next((v for k, v in _UNITS.items() if unit_raw.startswith(k)), None)
            if n and unit:
                return f"{n} {unit[:-1] if n == 1 else unit}", doc.page_of(m.start())
    return None


def _governing_law(doc: _Text) -> tuple[str, int] | None:
    m = _GOVERNING.search(doc.text) or _GOVERNING_LABEL.search(doc.text)
    if m:
        value = " ".join(m.group("x").split())
        value = re.sub(r"\s+(?:without|and\s+the|excluding|applicable|shall|in)\b.*$", "", value)
        if value:
            return value, doc.page_of(m.start())
    m2 = _GOVERNING_ADJ.search(doc.text)
    if m2:
        raw = next(g for g in m2.groups() if g).lower()
        for key, country in _COUNTRY_ADJ.items():
            if raw.startswith(key):
                return country, doc.page_of(m2.start())
    return None


def _value(doc: _Text, decimal: str | None) -> tuple[float, str | None, int, float] | None:
    for pattern, confidence in ((_VALUE_TOTAL, 0.8), (_VALUE_OTHER, 0.6)):
        for m in pattern.finditer(doc.text):
            window = doc.text[m.end() : m.end() + 90]
            amounts = [a for a in find_amounts(window, decimal) if a.value >= 1]
            if not amounts or amounts[0].start > 60:
                continue
            a = amounts[0]
            if _PER_PERIOD.match(window[a.end : a.end + 20]):
                continue
            near = window[max(0, a.start - 6) : a.end + 6]
            currencies = find_currencies(near)
            code = currencies[0][0] if currencies else None
            return a.value, code, doc.page_of(m.start()), confidence
    return None


def _signatories(pages: list[Page]) -> tuple[list[str], int] | None:
    names: list[str] = []
    first_page: int | None = None
    for page in pages[-2:]:
        rows = page.rows
        for ri, row in enumerate(rows):
            for cell in row.cells:
                m = _SIGN_NAME.match(cell.text)
                if m:
                    name = m.group("v").strip()
                    if name not in names and _PERSON.match(name):
                        names.append(name)
                        first_page = first_page or page.number
            # The line under a signature rule, or the first lines after "Signed by/for ...".
            following: list[Row] = []
            if _UNDERLINE.search(row.text):
                following = rows[ri + 1 : ri + 2]
            elif _SIGNED.search(row.text) and len(row.text) < 120:
                following = rows[ri + 1 : ri + 4]
            for nxt in following:
                for cell in nxt.cells:
                    candidate = re.split(r",|\s[\u2013\u2014-]\s", cell.text)[0].strip()
                    person = _PERSON.match(candidate) and not _ORG_HINT.search(candidate)
                    if person and candidate not in names:
                        names.append(candidate)
                        first_page = first_page or page.number
    if names:
        return names[:6], first_page or pages[-1].number
    return None


def extract_contract(pages: list[Page]) -> dict[str, ExtractedField]:
    """Contract fields (names from CONTRACT_FIELDS) found in `pages`; absent ones left out."""
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        parts.append(page.text)
        offset += len(page.text) + 1
    doc = _Text("\n".join(parts), starts)
    language = detect_language(doc.text)
    dayfirst = guess_dayfirst(doc.text, language)
    decimal = guess_decimal_separator(doc.text)
    fields: dict[str, ExtractedField] = {}

    parties = _parties(doc, pages)
    if parties:
        fields["parties"] = parties
    effective = _date_after(doc, _EFFECTIVE, dayfirst)
    if effective:
        fields["effective_date"] = _field(effective[0], 0.85, effective[1], "effective_label")
    else:
        dates = find_dates(doc.text[:3000], dayfirst)
        if dates:
            fields["effective_date"] = _field(
                dates[0].iso, 0.45, doc.page_of(dates[0].start), "fallback_first_date"
            )
    term = _term(doc)
    if term:
        fields["term"] = _field(term[0], 0.75, term[1], "term_clause")
    expiry = _date_after(doc, _EXPIRY, dayfirst)
    if expiry and (not effective or expiry[0] > effective[0]):
        fields["expiry_date"] = _field(expiry[0], 0.75, expiry[1], "expiry_label")
    law = _governing_law(doc)
    if law:
        fields["governing_law"] = _field(law[0], 0.85, law[1], "governing_law_clause")
    value = _value(doc, decimal)
    if value:
        fields["total_value"] = _field(round(value[0], 2), value[3], value[2], "value_clause")
        if value[1]:
            fields["currency"] = _field(value[1], 0.8, value[2], "value_clause")
    if "currency" not in fields:
        currencies = find_currencies(doc.text)
        if currencies:
            code, start, _end = currencies[0]
            fields["currency"] = _field(code, 0.5, doc.page_of(start), "currency_mentions")
    signatories = _signatories(pages)
    if signatories:
        fields["signatories"] = _field(signatories[0], 0.7, signatories[1], "signature_block")
    return fields
