"""The invoice extraction as a whole: the fields in the order that lets each use the others,
each with its evidence (see `document._field`; amounts here), then calibrated."""

from __future__ import annotations

from collections import Counter

from bastion.pipeline.extract.calibration import calibrate
from bastion.pipeline.extract.invoice.amounts import (
    _Amount,
    _amount_candidates,
    _close,
    _currency,
    _largest_amount,
)
from bastion.pipeline.extract.invoice.dates import _due_date, _issue_date
from bastion.pipeline.extract.invoice.document import (
    PlumberLoader,
    _best,
    _box,
    _Doc,
    _field,
)
from bastion.pipeline.extract.invoice.identifiers import _bic, _ibans, _vat_ids
from bastion.pipeline.extract.invoice.line_items import _line_items
from bastion.pipeline.extract.invoice.parties import (
    _customer,
    _customer_blocks,
    _issuer,
    _unlabelled_customer,
)
from bastion.pipeline.extract.invoice.references import _invoice_number, _title_line_number
from bastion.pipeline.extract.invoice.totals import choose_totals
from bastion.pipeline.extract.invoice.vocabulary import _NO_TAX
from bastion.pipeline.extract.locale import (
    detect_language,
    find_amounts,
    find_currencies,
    guess_dayfirst,
    guess_decimal_separator,
)
from bastion.pipeline.extract.text import Page
from bastion.pipeline.model import MAX_ALTERNATIVES, Alternative, Evidence, ExtractedField

# The candidate kinds (amounts.KINDS) an amount field's rivals come from.
_RIVAL_KINDS = {"subtotal": ("net",), "tax": ("tax",), "total": ("gross", "total", "due")}


def extract_invoice(
    pages: list[Page], *, plumber: PlumberLoader | None = None
) -> dict[str, ExtractedField]:
    """Invoice fields (names from INVOICE_FIELDS) found in `pages`; absent fields are left out.

    `plumber(page_number)` re-reads one page with pdfplumber; it is called only when a line-item
    table could not be read consistently from the fast text.
    """
    text = "\n".join(p.text for p in pages)
    language = detect_language(text)
    decimal = guess_decimal_separator(text)
    found_currencies = find_currencies(text)
    currencies = Counter(code for code, _s, _e in found_currencies)
    currency_hint = currencies.most_common(1)[0][0] if currencies else None
    doc = _Doc(pages, text, language, decimal, guess_dayfirst(text, language, currency_hint))
    if len(pages) == 1:  # the text is the page's text: no need to look again
        doc.currencies = found_currencies
    fields: dict[str, ExtractedField] = {}

    blocks = _customer_blocks(doc)
    for _hit, cells in blocks:
        doc.customer_cells.update(cells)

    title = _title_line_number(doc)
    number = _invoice_number(doc, title)
    if number:
        fields["invoice_number"] = _field(doc, number)
    issue = _issue_date(doc, number, title)
    if issue:
        fields["issue_date"] = _field(doc, issue)
    due = _due_date(doc, issue)
    if due:
        fields["due_date"] = _field(doc, due)

    customer = _customer(doc, blocks)
    issuer = _issuer(doc, customer)
    if issuer:
        fields["issuer"] = _field(doc, issuer)
    customer = customer or _unlabelled_customer(doc, issuer)
    if customer:
        fields["customer"] = _field(doc, customer)

    # Line items first (their rows are not totals), then the amounts, checked against them.
    prelim = _amount_candidates(doc)
    prelim_totals = [a.value for k in ("net", "gross", "total", "due") for a in prelim.get(k, [])]
    items = _line_items(doc, plumber, prelim_totals)
    found = {
        kind: [a for a in amounts if a.where not in doc.item_rows]
        for kind, amounts in prelim.items()
    }
    line_sum: float | None = None
    if items:
        amounts = [it.amount for it in items[0] if it.amount is not None]
        if amounts and len(amounts) == len(items[0]):
            line_sum = round(sum(amounts), 2)
    chosen = choose_totals(found, line_sum)
    if not chosen.get("total"):
        fallback = _largest_amount(doc)
        if fallback:
            chosen["total"] = fallback
    if "total" in chosen and "subtotal" not in chosen:
        total, total_conf = chosen["total"]
        if "tax" in chosen:
            # Total and tax given, no net line: the net amount is their difference.
            tax, tax_conf = chosen["tax"]
            net = _Amount(
                round(total.value - tax.value, 2), 0.0, total.page, (-1, -1), rule="arithmetic"
            )
            chosen["subtotal"] = (net, 0.6 * min(total_conf, tax_conf))
        elif not found.get("tax") and not found.get("net"):
            # No tax anywhere: the untaxed amount is the total.
            untaxed = _Amount(total.value, 0.0, total.page, total.where, rule="no_tax")
            chosen["subtotal"] = (untaxed, 0.4 * total_conf)
    if "total" in chosen and "tax" not in chosen and not found.get("tax"):
        # No tax amount printed: it is 0 when a net total equal to the total is printed too
        # (net + VAT = gross), or when the invoice says it carries no VAT.
        total, total_conf = chosen["total"]
        printed_net = chosen.get("subtotal")
        stated = (
            printed_net is not None
            and printed_net[0].rule != "no_tax"  # printed, not the total itself
            and _close(printed_net[0].value, total.value)
        )
        if stated or _NO_TAX.search(doc.text):
            chosen["tax"] = (
                _Amount(0.0, 0.0, total.page, (-1, -1), rule="no_tax"),
                0.5 * total_conf,
            )
    for name in ("subtotal", "tax", "total"):
        if name in chosen:
            amt, conf = chosen[name]
            rivals = [a for kind in _RIVAL_KINDS[name] for a in found.get(kind, [])]
            fields[name] = _amount_field(doc, amt, conf, rivals)

    total_where = chosen["total"][0].where if "total" in chosen else None
    currency = _currency(doc, total_where)
    if currency:
        fields["currency"] = _field(doc, currency)

    vat = _best(_vat_ids(doc))
    if vat:
        fields["vat_id"] = _field(doc, vat)
    iban = _best(_ibans(doc))
    if iban:
        fields["iban"] = _field(doc, iban)
    bic = _bic(doc, iban)
    if bic:
        fields["bic"] = _field(doc, bic)

    if items:
        line_items, page_no, score = items
        conf = 0.9 if score >= 1.0 else 0.75 if score >= 0.5 else 0.55
        fields["line_items"] = ExtractedField(
            value=[it.as_dict() for it in line_items],
            confidence=conf,
            page=page_no,
            evidence=Evidence(page=page_no, rule="line_item_table", score=conf),
        )
    calibrate(fields)
    return fields


def _amount_field(doc: _Doc, amt: _Amount, conf: float, rivals: list[_Amount]) -> ExtractedField:
    """An amount's field: its evidence (the cell on its row that holds it), and the best of
    the other values labelled as the same amount."""
    alternatives: list[Alternative] = []
    seen = {round(amt.value, 2)}
    for rival in sorted(rivals, key=lambda a: -a.score):
        if len(alternatives) == MAX_ALTERNATIVES:
            break
        if round(rival.value, 2) not in seen:
            seen.add(round(rival.value, 2))
            alternatives.append(
                Alternative(
                    value=round(rival.value, 2),
                    score=round(rival.score, 3),
                    rule=rival.rule,
                    page=rival.page,
                )
            )
    label = amt.label.strip()[:80] if amt.label else None
    return ExtractedField(
        value=round(amt.value, 2),
        confidence=round(conf, 3),
        page=amt.page,
        evidence=Evidence(
            page=amt.page,
            bbox=_amount_box(doc, amt),
            label=label or None,
            rule=amt.rule,
            score=round(conf, 3),
        ),
        alternatives=alternatives,
    )


def _amount_box(doc: _Doc, amt: _Amount) -> tuple[float, float, float, float] | None:
    """The box of the rightmost cell of the amount's row that holds its value."""
    pi, ri = amt.where
    if pi < 0 or ri < 0:
        return None
    for cell in reversed(doc.pages[pi].rows[ri].cells):
        if any(_close(a.value, amt.value) for a in find_amounts(cell.text, doc.decimal)):
            return _box(cell)
    return None
