"""Generated invoices for tests and benchmarks: distinct, valid and reproducible.

`synthetic_invoice(n)` renders invoice number `n` (reportlab): one of several issuers, one to
four line items whose amounts add up, 20% VAT, an IBAN with a valid checksum. The same `n` and
`seed` always give the same bytes; different `n` give different documents (and SHA-256s).
`extra_pages` appends pages of terms, for documents that take longer to extract. `copy` renders
the same invoice sent again (other file bytes: its metadata counts the copies) and `number`
replaces its invoice number, for duplicate tests.
"""

from __future__ import annotations

import random

from bastion.pipeline.samples import SamplePage

_ISSUERS = (
    ("Acme Office Supplies Ltd", "GB284916325", "GB29NWBK60161331926819", "NWBKGB2L"),
    ("Northwind Traders Ltd", "GB123456782", "GB82WEST12345698765432", "WESTGB22"),
    ("Blauhafen Beratung GmbH", "DE812345673", "DE89370400440532013000", "COBADEFFXXX"),
    ("Cedar & Pine Joinery Ltd", "GB987654321", "GB94BARC10201530093459", "BARCGB22"),
    ("Lumen Analytics Ltd", "GB555555559", "GB47LOYD30963800283716", "LOYDGB21"),
)
_CUSTOMERS = ("Harbour View Dental Practice", "Riverside Library Trust", "Kestrel Logistics Ltd")
_ITEMS = ("Consulting hours", "Printer paper A4", "Annual licence", "Site visit", "Toner cartridge")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def synthetic_invoice(
    n: int, *, seed: int = 0, extra_pages: int = 0, copy: int = 0, number: str | None = None
) -> bytes:
    rng = random.Random(seed * 1_000_003 + n)  # noqa: S311 (test data, not security)
    issuer, vat, iban, bic = _ISSUERS[n % len(_ISSUERS)]
    number = number or f"INV-{seed:02d}-{n:06d}"
    month = rng.randrange(12)
    day = rng.randint(1, 28)
    subject = f"Invoice {number}" + (f" (copy {copy})" if copy else "")
    page = SamplePage(f"Invoice {number}", issuer, subject)
    page.text(50, 790, issuer, 16, bold=True)
    page.paragraph(50, 772, ["1 Market Street", "London EC1A 1BB", f"VAT Reg. No. {vat}"], 9)
    page.right(545, 790, "INVOICE", 22, bold=True)
    page.right(545, 766, f"Invoice No.: {number}")
    page.right(545, 752, f"Invoice Date: {day} {_MONTHS[month]} 2024")
    page.right(545, 738, f"Due Date: {day} {_MONTHS[(month + 1) % 12]} 202{4 + (month == 11)}")
    page.text(50, 690, "Bill To:", bold=True)
    page.paragraph(50, 675, [_CUSTOMERS[rng.randrange(len(_CUSTOMERS))], "3 Quay Street"])
    y = 610.0
    page.text(50, y, "Description", bold=True)
    page.right(380, y, "Qty", bold=True)
    page.right(460, y, "Unit Price", bold=True)
    page.right(545, y, "Amount", bold=True)
    subtotal = 0.0
    for _ in range(rng.randint(1, 4)):
        y -= 22
        qty = rng.randint(1, 9)
        price = rng.randint(500, 50_000) / 100
        amount = round(qty * price, 2)
        subtotal = round(subtotal + amount, 2)
        page.text(50, y, _ITEMS[rng.randrange(len(_ITEMS))])
        page.right(380, y, str(qty))
        page.right(460, y, f"{price:,.2f}")
        page.right(545, y, f"{amount:,.2f}")
    tax = round(subtotal * 0.2, 2)
    y -= 36
    for label, value in (
        ("Subtotal", subtotal),
        ("VAT 20%", tax),
        ("Total Due (GBP)", subtotal + tax),
    ):
        page.right(460, y, label)
        page.right(545, y, f"{value:,.2f}")
        y -= 18
    page.text(50, 186, f"Bank IBAN: {iban}  BIC: {bic}", 9)
    for extra in range(extra_pages):
        page.next_page()
        lines = [f"Terms and conditions, page {extra + 2}: clause {c}." for c in range(45)]
        page.paragraph(50, 800, lines, 9)
    return page.finish()
