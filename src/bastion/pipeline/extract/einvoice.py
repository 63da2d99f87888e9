"""Embedded e-invoices: Factur-X / ZUGFeRD (UN/CEFACT CII) and XRechnung (CII or UBL) XML.

`find_einvoice_xml` returns the XML attached to a PDF, if any; `parse_einvoice` maps it onto
INVOICE_FIELDS with confidence 1.0 (the XML is the authoritative, machine-readable invoice).
Parsing goes through defusedxml (no DTDs, no entity expansion); elements are matched by local
name so that every CII and UBL namespace version is accepted.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from defusedxml import ElementTree as SafeET  # type: ignore[import-untyped]

from bastion.pipeline.model import Evidence, ExtractedField, LineItem

__all__ = ["MAX_XML_BYTES", "find_einvoice_xml", "parse_einvoice"]

MAX_XML_BYTES = 10 * 1024 * 1024
_KNOWN_NAMES = frozenset(
    {"factur-x.xml", "zugferd-invoice.xml", "zugferd_invoice.xml", "xrechnung.xml",
     "order-x.xml"}
)  # fmt: skip
_ROOT_RE = re.compile(
    rb"<(?:\w+:)?(?:CrossIndustryInvoice|CrossIndustryDocument|Invoice|CreditNote)\b"
)


def _attachment_bytes(att: pdfium.PdfAttachment) -> bytes | None:
    size = ctypes.c_ulong()
    if not pdfium_c.FPDFAttachment_GetFile(att, None, 0, size) or not size.value:
        return None
    if size.value > MAX_XML_BYTES:
        return None
    return bytes(att.get_data())


def find_einvoice_xml(pdf: pdfium.PdfDocument) -> bytes | None:
    """The e-invoice XML embedded in `pdf`: a known file name first, then any XML invoice."""
    candidates: list[tuple[int, bytes]] = []
    for i in range(pdf.count_attachments()):
        att = pdf.get_attachment(i)
        try:
            name = att.get_name().strip().lower()
        except pdfium.PdfiumError:
            continue
        if not name.endswith(".xml"):
            continue
        try:
            data = _attachment_bytes(att)
        except pdfium.PdfiumError:
            continue
        if data is None or not _ROOT_RE.search(data[:4096]):
            continue
        candidates.append((0 if name in _KNOWN_NAMES else 1, data))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


# ------------------------------------------------------------------------------------ helpers


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element | None, *names: str) -> Element | None:
    """Follow a path of local names through direct children."""
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _either(first: Element | None, second: Element | None) -> Element | None:
    # Elements without children are falsy: never use `or` between them.
    return first if first is not None else second


def _walk(el: Element, skip: frozenset[str] = frozenset()) -> Iterator[Element]:
    for child in el:
        if _local(child.tag) in skip:
            continue
        yield child
        yield from _walk(child, skip)


def _first(el: Element, name: str, skip: frozenset[str] = frozenset()) -> Element | None:
    return next((e for e in _walk(el, skip) if _local(e.tag) == name), None)


def _text(el: Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    text = " ".join(el.text.split())
    return text or None


def _amount(el: Element | None) -> float | None:
    text = _text(el)
    if text is None:
        return None
    try:
        return round(float(text), 2)
    except ValueError:
        return None


def _number(el: Element | None) -> float | None:
    text = _text(el)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _date(el: Element | None) -> str | None:
    text = _text(el)
    if text is None:
        return None
    if re.fullmatch(r"\d{8}", text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", text)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None


def _put(fields: dict[str, ExtractedField], name: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        return
    # Read from the XML, not from a place on a page: no page, no box.
    evidence = Evidence(rule="einvoice_xml", score=1.0)
    fields[name] = ExtractedField(value=value, confidence=1.0, page=None, evidence=evidence)


# ---------------------------------------------------------------------------------------- CII

_CII_LINE = frozenset({"IncludedSupplyChainTradeLineItem"})


def _cii(root: Element) -> dict[str, ExtractedField]:
    fields: dict[str, ExtractedField] = {}
    header = _either(_child(root, "ExchangedDocument"), _child(root, "HeaderExchangedDocument"))
    _put(fields, "invoice_number", _text(_child(header, "ID")))
    _put(fields, "issue_date", _date(_child(header, "IssueDateTime", "DateTimeString")))
    terms = _first(root, "SpecifiedTradePaymentTerms", _CII_LINE)
    if terms is not None:
        _put(fields, "due_date", _date(_child(terms, "DueDateDateTime", "DateTimeString")))
    seller = _first(root, "SellerTradeParty", _CII_LINE)
    buyer = _first(root, "BuyerTradeParty", _CII_LINE)
    _put(fields, "issuer", _text(_child(seller, "Name")))
    _put(fields, "customer", _text(_child(buyer, "Name")))
    if seller is not None:
        vat = None
        for reg in seller:
            if _local(reg.tag) != "SpecifiedTaxRegistration":
                continue
            rid = _child(reg, "ID")
            if rid is not None and rid.get("schemeID") == "VA":
                vat = _text(rid)
                break
            vat = vat or _text(rid)
        _put(fields, "vat_id", vat.replace(" ", "") if vat else None)
    currency = _text(_first(root, "InvoiceCurrencyCode", _CII_LINE))
    _put(fields, "currency", currency.upper() if currency else None)
    summation = _first(root, "SpecifiedTradeSettlementHeaderMonetarySummation", _CII_LINE)
    if summation is None:
        summation = _first(root, "SpecifiedTradeSettlementMonetarySummation", _CII_LINE)
    if summation is not None:
        subtotal = _amount(_child(summation, "TaxBasisTotalAmount"))
        if subtotal is None:
            subtotal = _amount(_child(summation, "LineTotalAmount"))
        _put(fields, "subtotal", subtotal)
        taxes = [c for c in summation if _local(c.tag) == "TaxTotalAmount"]
        tax_el = next((t for t in taxes if t.get("currencyID") in (None, currency)), None)
        _put(fields, "tax", _amount(tax_el))
        total = _amount(_child(summation, "GrandTotalAmount"))
        if total is None:
            total = _amount(_child(summation, "DuePayableAmount"))
        _put(fields, "total", total)
    _put(fields, "iban", _compact(_text(_first(root, "IBANID", _CII_LINE))))
    _put(fields, "bic", _compact(_text(_first(root, "BICID", _CII_LINE))))
    items: list[dict[str, Any]] = []
    for line in _walk(root):
        if _local(line.tag) != "IncludedSupplyChainTradeLineItem":
            continue
        name = _text(_first(line, "Name"))
        price_el = _first(line, "NetPriceProductTradePrice")
        price = _amount(_child(price_el, "ChargeAmount")) if price_el is not None else None
        if price is None:
            price = _amount(_first(line, "ChargeAmount"))
        item = LineItem(
            description=name or "",
            quantity=_number(_first(line, "BilledQuantity")),
            unit_price=price,
            amount=_amount(_first(line, "LineTotalAmount")),
        )
        items.append(item.model_dump())
    _put(fields, "line_items", items)
    return fields


# ---------------------------------------------------------------------------------------- UBL


def _ubl_party(party: Element | None) -> tuple[str | None, str | None]:
    if party is None:
        return None, None
    party = _either(_child(party, "Party"), party)
    name = _text(_child(party, "PartyLegalEntity", "RegistrationName")) or _text(
        _child(party, "PartyName", "Name")
    )
    vat = _text(_child(party, "PartyTaxScheme", "CompanyID"))
    return name, vat


def _ubl(root: Element) -> dict[str, ExtractedField]:
    fields: dict[str, ExtractedField] = {}
    _put(fields, "invoice_number", _text(_child(root, "ID")))
    _put(fields, "issue_date", _date(_child(root, "IssueDate")))
    due = _date(_child(root, "DueDate")) or _date(_child(root, "PaymentMeans", "PaymentDueDate"))
    _put(fields, "due_date", due)
    issuer, vat = _ubl_party(_child(root, "AccountingSupplierParty"))
    customer, _ = _ubl_party(_child(root, "AccountingCustomerParty"))
    _put(fields, "issuer", issuer)
    _put(fields, "customer", customer)
    _put(fields, "vat_id", vat.replace(" ", "") if vat else None)
    currency = _text(_child(root, "DocumentCurrencyCode"))
    _put(fields, "currency", currency.upper() if currency else None)
    totals = _child(root, "LegalMonetaryTotal")
    _put(fields, "subtotal", _amount(_child(totals, "TaxExclusiveAmount")))
    total = _amount(_child(totals, "TaxInclusiveAmount"))
    if total is None:
        total = _amount(_child(totals, "PayableAmount"))
    _put(fields, "total", total)
    for tax_total in root:
        if _local(tax_total.tag) != "TaxTotal":
            continue
        amount = _child(tax_total, "TaxAmount")
        if amount is not None and amount.get("currencyID") in (None, currency):
            _put(fields, "tax", _amount(amount))
            break
    means = _child(root, "PaymentMeans")
    account = _child(means, "PayeeFinancialAccount")
    _put(fields, "iban", _compact(_text(_child(account, "ID"))))
    branch = _child(account, "FinancialInstitutionBranch")
    bic = _text(_child(branch, "ID")) or _text(_child(branch, "FinancialInstitution", "ID"))
    _put(fields, "bic", _compact(bic))
    items: list[dict[str, Any]] = []
    for line in root:
        if _local(line.tag) not in {"InvoiceLine", "CreditNoteLine"}:
            continue
        item_el = _child(line, "Item")
        name = _text(_child(item_el, "Name")) or _text(_child(item_el, "Description"))
        qty = _either(_child(line, "InvoicedQuantity"), _child(line, "CreditedQuantity"))
        item = LineItem(
            description=name or "",
            quantity=_number(qty),
            unit_price=_amount(_child(line, "Price", "PriceAmount")),
            amount=_amount(_child(line, "LineExtensionAmount")),
        )
        items.append(item.model_dump())
    _put(fields, "line_items", items)
    return fields


def _compact(value: str | None) -> str | None:
    return value.replace(" ", "").upper() if value else None


def parse_einvoice(xml: bytes) -> dict[str, ExtractedField] | None:
    """Invoice fields from CII (Factur-X, ZUGFeRD, XRechnung) or UBL XML; None if unreadable."""
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except Exception:  # defusedxml refuses DTDs and entities; ParseError on malformed XML
        return None
    kind = _local(root.tag)
    if kind in {"CrossIndustryInvoice", "CrossIndustryDocument"}:
        fields = _cii(root)
    elif kind in {"Invoice", "CreditNote"}:
        fields = _ubl(root)
    else:
        return None
    return fields or None
