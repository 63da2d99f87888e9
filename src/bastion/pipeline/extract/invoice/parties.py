"""The parties: the customer (under its label, or in a DIN 5008 address window) and the
issuer (labelled, a company name with a legal form, the sender line, the top of page 1),
and the comparison of company names.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from bastion.pipeline.extract.invoice.document import _best, _Candidate, _Doc, _hits, _loc
from bastion.pipeline.extract.invoice.vocabulary import (
    _ACCOUNT_HOLDER,
    _CUSTOMER,
    _DATE_WORD,
    _HAS_DIGIT,
    _I,
    _ISSUER,
    _LABELS,
    _NAME_KEY,
    _OTHER_PARTY,
    _SHIP_TO,
    _VAT_LABEL,
    _WORDS,
    LEGAL_FORM,
    _amount_kind,
)
from bastion.pipeline.extract.locale import find_dates
from bastion.pipeline.extract.text import Hit, Page, values_near

_LEGAL_STRIP = re.compile(rf"(?:^|[\s,])(?:{LEGAL_FORM})(?=$|[\s,.])", _I)
_PUNCT = re.compile(r"[^\w\s]")


@lru_cache(maxsize=4096)
def normalise_name(name: str) -> str:
    """Lowercase, legal forms and punctuation removed: for comparing company names."""
    text = _LEGAL_STRIP.sub(" ", name)
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(text.split())


def _by_first_letter(alternation: str) -> str:
    """A case-sensitive alternation of patterns that each start with a literal letter (and have
    no "|" inside), with the alternatives grouped under their first letter: `Ab|B|Ac` becomes
    `A(?:b|c)|B(?:)`. It matches what the original matches (alternatives with different first
    letters never match at the same place, and each group keeps its order), but the regex
    engine tries a few letters at each position instead of every alternative."""
    groups: dict[str, list[str]] = {}
    for alternative in alternation.split("|"):
        assert alternative[:1].isalpha(), alternative
        groups.setdefault(alternative[0], []).append(alternative[1:])
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


_FORM_RE = re.compile(
    rf"(?:{_by_first_letter(LEGAL_FORM)})(?=$|[\s,;·|•)\]/\u2013\u2014-]|\.(?:\s|$))"
)
_TITLE_WORDS = re.compile(
    r"^(?:(?:tax|commercial|pro[\s-]?forma|vat|sales)\s+)?(?:invoice|rechnung|facture|factura|"
    r"fattura|faktura(?:\s+vat)?|factuur|credit\s+note|gutschrift|avoir|receipt|quittung|bill|"
    r"statement|original|copy|kopie|duplicate|page|seite)\b",
    _I,
)
_SENDER_SEP = re.compile(r"\s*[·•|]\s*|\s+[\u2013\u2014-]\s+")
_SENDER_SEP_CHAR = re.compile(r"[·•|\u2013\u2014-]")
_POSTCODE = re.compile(
    r"(?<![\d.,/])(?:\d{4,5}|\d{2}-\d{3}|\d{3}\s\d{2})(?![\d.,/])|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"
)
_DOMAIN_RE = re.compile(r"(?:@|\bwww\.)([a-z0-9][a-z0-9-]{1,40})\.[a-z]{2,}", _I)
_GENERIC_DOMAINS = frozenset(
    [
        "gmail",
        "googlemail",
        "yahoo",
        "hotmail",
        "outlook",
        "live",
        "gmx",
        "web",
        "t-online",
        "aol",
        "icloud",
        "orange",
        "free",
        "wanadoo",
        "laposte",
        "sfr",
        "protonmail",
        "mail",
        "example",
    ]
)
_NAME_STOP = re.compile(r"\s*(?:,|\s{2,}|\t|·|•|\|)\s*")


def _customer_blocks(doc: _Doc) -> list[tuple[Hit, list[tuple[int, int, int]]]]:
    """For each customer label: the cells of the address block it introduces."""
    blocks: list[tuple[Hit, list[tuple[int, int, int]]]] = []
    for pattern in (_CUSTOMER, _SHIP_TO):
        for hit in _hits(doc, pattern):
            if hit.start > 2:
                continue  # "Réf. client :", "Your customer number"
            page = doc.pages[hit.page]
            label = page.rows[hit.row].cells[hit.cell]
            cells = [(hit.page, hit.row, hit.cell)]
            nxt = hit.cell + 1
            rest = label.text[hit.end :].strip(" :")
            if not rest and nxt < len(page.rows[hit.row].cells):
                cells.append((hit.page, hit.row, nxt))
            x0 = label.x0 - 15
            x1 = max(label.x1, label.x0 + 150)
            last = page.rows[hit.row].bottom
            em = max(page.rows[hit.row].height, 5.0)
            for ri in range(hit.row + 1, min(hit.row + 8, len(page.rows))):
                row = page.rows[ri]
                if row.top - last > 2.2 * em:
                    break
                inside = [ci for ci, c in enumerate(row.cells) if c.x0 < x1 and c.x1 > x0]
                if not inside:
                    continue
                last = row.bottom
                cells.extend((hit.page, ri, ci) for ci in inside)
            blocks.append((hit, cells))
    return blocks


@lru_cache(maxsize=4096)
def _clean_name(text: str) -> str | None:
    if text.rstrip().endswith(":"):
        return None  # a form's key ("Raison sociale :"), not its value
    text = text.strip(" :;,-\u2013\u2014\t")
    text = _NAME_STOP.split(text)[0].strip(" :;,-")
    if len(text) < 2 or len(text) > 80 or not _WORDS.search(text) or ":" in text:
        return None  # "Siège social : ...": a label and its value, not a name
    if "@" in text or text.lower().startswith(("www.", "http")):
        return None  # an e-mail address or a web address (or what is left of one)
    has_digit = _HAS_DIGIT.search(text) is not None
    if has_digit and (not _LONG_WORD.search(text) or find_dates(text)):
        return None  # "PO2575", "SOL-24219", a date: not a name
    if _TITLE_WORDS.match(text) or _is_label(text):
        return None
    return text


_LONG_WORD = re.compile(r"[^\W\d_]{4,}")

_PARTY_LABELS = frozenset({"customer", "ship_to", "issuer"})


def _is_label(text: str) -> bool:
    """Whether `text` is or starts with a field label (then it is not a name)."""
    for m in _LABELS.pattern.finditer(text.lower()):
        name = _LABELS.name(m)
        if name in _PARTY_LABELS:
            # "Bill to", "Ship to", "From": first, or anywhere with a colon ("Le Fournisseur"
            # is a name).
            if m.start() <= 2 or text[m.end() :].lstrip().startswith(":") or ":" in m.group(0):
                return True
            continue
        if m.start() <= 2 and (name != "date" or not _legal_names(text)):
            return True
    short = len(text) < 40 and len(text.split()) <= 4
    if short and _DATE_WORD.search(text) and not _legal_names(text):
        return True  # "Order date", "Bestelldatum", "Date de commande"
    if len(text) < 30:
        kind = _amount_kind(text)
        return kind is not None and not _legal_names(text)
    return False


def _sender_line(doc: _Doc) -> tuple[int, str] | None:
    """DIN 5008 letters: a small sender line "ACME GmbH · Street 1 · 12345 City" above the
    address window. Its row and the sender's name."""
    if not doc.sender_done:
        doc.sender = _find_sender_line(doc)
        doc.sender_done = True
    return doc.sender


def _find_sender_line(doc: _Doc) -> tuple[int, str] | None:
    page = doc.pages[0]
    sizes = sorted(r.height for r in page.rows) or [1.0]
    median = sizes[len(sizes) // 2]
    for ri, row in enumerate(page.rows[:30]):
        if row.top > 0.45 * (page.height or 842):
            break  # a sender line sits above the address window, not in the footer
        text = row.cells[0].text
        if not _SENDER_SEP_CHAR.search(text):
            continue  # no separator: one part
        parts = _SENDER_SEP.split(text)
        small = row.height < 0.85 * median
        if len(parts) >= 3 and (_POSTCODE.search(text) or small) and row.height <= median:
            name = _clean_name(parts[0])
            if name and not _HAS_DIGIT.search(name[:3]):
                return ri, name
    return None


def _customer(doc: _Doc, blocks: list[tuple[Hit, list[tuple[int, int, int]]]]) -> _Candidate | None:
    forms = _form_names(doc, _CUSTOMER, _ISSUER)
    if forms:
        return _Candidate(forms[0][0], 0.9, forms[0][1], forms[0][2])
    cands: list[_Candidate] = []
    for hit, _cells in blocks:
        is_ship = bool(_SHIP_TO.search(doc.cell(hit.page, hit.row, hit.cell).text))
        for text, score, where in values_near(doc.pages, hit, below=3, block=True):
            if text.rstrip().endswith(":"):
                # A form's key ("Empresa:", "Naam:"): its value stands to its right.
                row = doc.pages[where.page].rows[where.row]
                if where.cell + 1 >= len(row.cells):
                    continue
                where = Hit(where.page, where.row, where.cell + 1, 0, 0)
                text = row.cells[where.cell].text
            name = _clean_name(text)
            if name and not _HAS_DIGIT.fullmatch(name):
                base = 0.55 if is_ship else 0.85
                cands.append(_Candidate(name, base * score, hit.page + 1, _loc(where), label=hit))
                break
    if cands:
        return _best(cands)
    # A DIN 5008 letter: the address window right under the sender line.
    sender = _sender_line(doc)
    if sender:
        page = doc.pages[0]
        line = page.rows[sender[0]]
        for ri in range(sender[0] + 1, min(sender[0] + 4, len(page.rows))):
            row = page.rows[ri]
            if row.top - line.bottom > 4 * max(row.height, 6.0):
                break
            first = row.cells[0]
            if abs(first.x0 - line.x0) < 20:
                name = _clean_name(first.text)
                if name:
                    doc.customer_cells.update((0, rj, 0) for rj in range(ri, ri + 4))
                    return _Candidate(name, 0.6, 1, (0, ri, 0), rule="address_window")
    return None


def _address_blocks(doc: _Doc) -> list[tuple[str, tuple[int, int, int]]]:
    """Address blocks without a heading in the upper half of page 1: a line that can be a
    name over one to three lines in the same column, one of them a postcode or street line.
    (name, where) for each, top to bottom."""
    page = doc.pages[0]
    out: list[tuple[str, tuple[int, int, int]]] = []
    rows = page.rows
    ri = 0
    while ri < len(rows) and rows[ri].top < 0.5 * (page.height or 842):
        first = rows[ri].cells[0]
        name = _clean_name(first.text) if not _HAS_DIGIT.search(first.text) else None
        if name is None or (0, ri, 0) in doc.customer_cells:
            ri += 1
            continue
        lines: list[str] = []
        last = rows[ri].bottom
        rj = ri + 1
        while rj < len(rows) and len(lines) < 3 and rows[rj].top - last <= 12:
            # The next line of the block: the cell of the row in the name's column (another
            # column, the invoice's data beside the address, may share the rows).
            below = next((c for c in rows[rj].cells if abs(c.x0 - first.x0) <= 10), None)
            if below is None:
                rj += 1
                continue
            lines.append(below.text)
            last = rows[rj].bottom
            rj += 1
        if any(_POSTCODE.search(line) for line in lines):
            out.append((name, (0, ri, 0)))
            ri = rj
            continue
        ri += 1
    return out


def _unlabelled_customer(doc: _Doc, issuer: _Candidate | None) -> _Candidate | None:
    """The customer of a letter whose recipient block has no heading: the address block on
    page 1 that is not the seller's (the issuer's name, or the first of two blocks)."""
    seller = normalise_name(str(issuer.value)) if issuer else ""
    blocks = [(n, w) for n, w in _address_blocks(doc) if normalise_name(n) != seller]
    everything = _address_blocks(doc)
    if len(everything) >= 2 and len(blocks) == len(everything):
        blocks = blocks[1:]  # two blocks, neither named as the seller: the first is its letterhead
    if not blocks:
        return None
    name, where = blocks[0]
    return _Candidate(name, 0.5, 1, where, rule="address_block")


# How many rows under a seller heading its block may run.
_FORM_ROWS = 10


def _form_names(
    doc: _Doc, heading: re.Pattern[str], other: re.Pattern[str]
) -> list[tuple[str, int, tuple[int, int, int]]]:
    """A party's name where its block is a form: the value of a name key ("Name:", "Firma:",
    "Company name:") in the rows under the party's `heading`, within the heading's column (up
    to the next cell of its row: forms put seller and buyer side by side), up to a heading of
    the `other` party. (name, page, where) for each."""
    out: list[tuple[str, int, tuple[int, int, int]]] = []
    for hit in _hits(doc, heading):
        rows = doc.pages[hit.page].rows
        head_row = rows[hit.row]
        head = head_row.cells[hit.cell]
        x0 = head.x0 - 15
        right = head_row.cells[hit.cell + 1 :]
        x1 = right[0].x0 - 5 if right else 1e9
        for ri in range(hit.row, min(len(rows), hit.row + _FORM_ROWS)):
            row = rows[ri]
            cells = [(ci, c) for ci, c in enumerate(row.cells) if c.x0 >= x0 and c.x0 < x1]
            if ri > hit.row and any(other.search(c.text) for _ci, c in cells):
                break
            for k, (ci, cell) in enumerate(cells):
                key = _NAME_KEY.match(cell.text)
                if key is None:
                    continue
                value = cell.text[key.end() :]
                if not value.strip() and k + 1 < len(cells):
                    value = cells[k + 1][1].text
                # The key says it is a name: one that starts with a party word ("Lieferant
                # GmbH & Co. KG") stands when it carries a legal form.
                legal = _legal_names(value.strip())
                name = _clean_name(value) or (legal[0] if legal else None)
                if name:
                    out.append((name, hit.page + 1, (hit.page, ri, ci)))
                    break
            else:
                continue
            break
    return out


# A registry line: share capital, trade register, company number ("SARL au capital de ...
# RCS Paris", "Amtsgericht Köln HRB 123", "Registered in England No. 123").
_REGISTRY = re.compile(
    r"au\s+capital|\brcs\b|\bsiren\b|\bsiret\b|handelsregister|amtsgericht|\bhr[ab]\b|"
    r"registergericht|registered\s+(?:in|office|no)|company\s+(?:no|number|reg)|\bkvk\b|"
    r"stammkapital|capital\s+social",
    re.IGNORECASE,
)


_IBAN_WORD = re.compile(r"\biban\b", re.IGNORECASE)


def _footer_ids(page: Page, ri: int) -> bool:
    """Whether the rows of a footer block around row `ri` give a VAT id, an IBAN or a
    registry number: the seller's identity, printed at the foot of its invoices."""
    text = "\n".join(r.text for r in page.rows[max(0, ri - 1) : ri + 4])
    return any(p.search(text) for p in (_VAT_LABEL, _IBAN_WORD, _REGISTRY))


def _printed_again(doc: _Doc, name: str) -> int:
    """How many times a name of several words and no digits is printed as a whole."""
    if len(name.split()) < 2 or _HAS_DIGIT.search(name):
        return 0
    return len(re.findall(rf"(?<!\w){re.escape(name.lower())}(?!\w)", doc.lower))


def _in_a_name(doc: _Doc, hit: Hit) -> bool:
    """Whether a one-word party label is a word of a name ("Seller Trading Name", "Le
    Fournisseur"), not a label: a label in a cell with more text ends in a colon."""
    text = doc.cell(hit.page, hit.row, hit.cell).text
    label = text[hit.start : hit.end]
    if ":" in label or " " in label.strip():
        return False
    return bool(text[hit.end :].strip() or text[: hit.start].strip())


def _issuer(doc: _Doc, customer: _Candidate | None) -> _Candidate | None:
    cands: dict[str, _Candidate] = {}
    counts: Counter[str] = Counter()
    customer_key = normalise_name(str(customer.value)) if customer else ""

    def add(
        name: str,
        score: float,
        page: int,
        where: tuple[int, int, int],
        rule: str = "",
        label: Hit | None = None,
    ) -> None:
        key = normalise_name(name)
        if not key or key == customer_key:
            return
        if where in doc.customer_cells:
            score -= 0.5
        old = cands.get(key)
        if old is None or score > old.score:
            cands[key] = _Candidate(name, score, page, where, rule=rule, label=label)

    for form_name, form_page, form_where in _form_names(doc, _ISSUER, _OTHER_PARTY):
        add(form_name, 0.9, form_page, form_where, rule="form_key")
    for pattern, base in ((_ISSUER, 0.85), (_ACCOUNT_HOLDER, 0.6)):
        for hit in _hits(doc, pattern):
            if _in_a_name(doc, hit):
                continue
            for text, score, where in values_near(doc.pages, hit, below=2, block=True):
                name_key = _NAME_KEY.match(text)  # "Nom : ACME SARL" under "Bénéficiaire"
                name = _clean_name(text[name_key.end() :] if name_key else text)
                if name:
                    add(name, base * score, hit.page + 1, _loc(where), label=hit)
                    break

    sizes = [r.height for r in doc.pages[0].rows] or [1.0]
    median = sorted(sizes)[len(sizes) // 2] or 1.0
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _FORM_RE.search(row.text):
                continue
            rel_top = row.top / page.height if page.height else 0.5
            for ci, cell in enumerate(row.cells):
                for name in _legal_names(cell.text):
                    counts[normalise_name(name)] += 1
                    score = 0.5
                    if pi == 0 and rel_top < 0.25:
                        score += 0.25
                    elif rel_top > 0.85:
                        score += 0.15
                    if row.height > 1.3 * median:
                        score += 0.1
                    if len(row.text) > 90:
                        score -= 0.2
                    if _REGISTRY.search(row.text):
                        score += 0.1  # the registry line: the seller's legal identity
                    elif rel_top > 0.85 and cell.text.strip() == name and _footer_ids(page, ri):
                        score += 0.25  # a footer block: the name over the VAT id, IBAN, registry
                    add(name, score, pi + 1, (pi, ri, ci), rule="legal_form")

    sender = _sender_line(doc)
    if sender:
        add(sender[1], 0.75, 1, (0, sender[0], 0), rule="sender_line")
    page = doc.pages[0]

    # The top of page 1: the first lines, a large font first, that are not a title or label.
    top_rows = [
        (ri, r) for ri, r in enumerate(page.rows[:12]) if r.top < 0.3 * (page.height or 842)
    ]
    biggest = max((r.height for _, r in top_rows), default=0.0)
    for rank, (ri, row) in enumerate(top_rows):
        for ci, cell in enumerate(row.cells[:2]):
            text = cell.text
            if (0, ri, ci) in doc.customer_cells or ":" in text or len(text) > 60:
                continue
            if _HAS_DIGIT.search(text):
                continue
            name = _clean_name(text)
            if not name or len(name) > 50:
                continue
            score = 0.42 - 0.03 * rank - 0.05 * ci
            if cell.height >= biggest * 0.95 and biggest > 1.2 * median:
                score += 0.18
            add(name, score, 1, (0, ri, ci), rule="page_top")

    if not cands:
        return None
    stems: set[str] = set()
    if "@" in doc.text or "www." in doc.lower:  # what _DOMAIN_RE starts with
        stems = {m.group(1).lower() for m in _DOMAIN_RE.finditer(doc.text)} - _GENERIC_DOMAINS
    for key, cand in cands.items():
        # A name printed again (the logo's text, the payee, the footer) is the seller's more
        # surely than a trade name or a line printed once.
        repeated = max(counts[key], _printed_again(doc, str(cand.value)))
        cand.score += 0.06 * min(repeated - 1, 3) if repeated > 1 else 0.0
        flat = key.replace(" ", "")
        if flat and any(s.replace("-", "") in flat or flat in s.replace("-", "") for s in stems):
            cand.score += 0.12
    best = _best(cands.values())
    if best is not None:
        best.score = min(best.score, 0.95)
    return best


@lru_cache(maxsize=4096)
def _legal_names(text: str) -> tuple[str, ...]:
    """Company names ending in a legal form ("ACME Widgets GmbH", "Foo Bar S.A.") in `text`."""
    out: list[str] = []
    for m in _FORM_RE.finditer(text):
        start = m.start()
        if start < 2 or text[start - 1] not in " ,":
            continue  # a form follows a name: "GmbH" alone, or inside a word, is not one
        name = _legal_name(text, start, m.end())
        if name:
            out.append(name)
    return tuple(out)


def _legal_name(text: str, form_start: int, form_end: int) -> str | None:
    head = text[:form_start]
    # Cut at separators: the name is the part after the last one.
    cut = 0
    for sep in (" · ", " | ", " • ", ": ", " - ", "  ", "\t"):
        idx = head.rfind(sep)
        if idx >= 0 and idx + len(sep) > cut:
            cut = idx + len(sep)
    words = head[cut:].replace(", ", " ").split()[-6:]
    if not words or not any(_WORDS.fullmatch(w.strip(".,&'\u2019-")) for w in words):
        return None
    after = text[form_end:].lstrip()
    form = text[form_start:form_end]
    if len(form.rstrip(".")) <= 3 and after[:1].isupper():
        return None  # "1012 AB Amsterdam", "AG Berlin" (but "Free SAS au capital de ...")
    # Trim leading lower-case words ("from ACME GmbH", "payable to ACME Ltd").
    while words and not (words[0][0].isupper() or words[0][0].isdigit()):
        words.pop(0)
    if not words or (len(words) == 1 and words[0].lower() in {"the", "der", "die", "la", "le"}):
        return None
    name = " ".join([*words, form])
    if _TITLE_WORDS.match(name) or _CUSTOMER.search(name):
        return None
    return name
