"""Invoice extraction end to end on PDFs generated here with reportlab: several layouts in
English, German and French, the reason codes for unreadable input, and the heuristics that
choose among candidates (arithmetic, IBAN checksum, position)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas

from bastion.business_ids import iban_valid
from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.invoice import extract_invoice, normalise_name
from bastion.pipeline.extract.text import Cell, Page, build_rows
from bastion.pipeline.model import INVOICE_FIELDS, ExtractionError, ExtractionResult


class Sheet:
    """A reportlab canvas with the few drawing calls the layouts need."""

    def __init__(self, pagesize: tuple[float, float] = A4, **kwargs: Any) -> None:
        self.buf = io.BytesIO()
        self.canvas = canvas.Canvas(self.buf, pagesize=pagesize, **kwargs)
        self.width, self.height = pagesize

    def text(
        self, x: float, y: float, s: str, size: float = 9, bold: bool = False, align: str = "left"
    ) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        draw = {
            "left": self.canvas.drawString,
            "right": self.canvas.drawRightString,
            "center": self.canvas.drawCentredString,
        }[align]
        draw(x, self.height - y, s)

    def rows(self, y: float, rows: list[list[str]], xs: list[float], right_from: int = 1) -> float:
        """A table: the first column left-aligned, the others right-aligned at their x."""
        for row in rows:
            for k, (value, x) in enumerate(zip(row, xs, strict=True)):
                self.text(x, y, value, align="right" if k >= right_from else "left")
            y += 15
        return y

    def new_page(self) -> None:
        self.canvas.showPage()

    def pdf(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buf.getvalue()


def english_classic() -> tuple[bytes, dict[str, Any]]:
    s = Sheet(LETTER)
    s.text(50, 60, "Northwind Traders Inc.", 18, bold=True)
    s.text(50, 76, "500 Market Street, San Francisco, CA 94105", 8)
    s.text(562, 60, "INVOICE", 22, bold=True, align="right")
    for k, (label, value) in enumerate(
        [
            ("Invoice No:", "NW-10234"),
            ("Invoice Date:", "March 3, 2025"),
            ("Due Date:", "04/02/2025"),
        ]
    ):
        s.text(380, 110 + 14 * k, label)
        s.text(562, 110 + 14 * k, value, align="right")
    s.text(50, 110, "Bill To:", bold=True)
    for k, line in enumerate(["Contoso Pharmaceuticals LLC", "12 Harbor Way", "Boston, MA 02110"]):
        s.text(50, 124 + 14 * k, line)
    xs = [50, 360, 460, 562]
    s.rows(210, [["Description", "Qty", "Unit Price", "Amount"]], xs)
    s.rows(
        228,
        [
            ["Consulting services (March)", "12", "$150.00", "$1,800.00"],
            ["Cloud hosting plan", "1", "$249.99", "$249.99"],
            ["Setup fee", "1", "$75.00", "$75.00"],
        ],
        xs,
    )
    s.rows(300, [["Subtotal", "$2,124.99"], ["Sales Tax (8.25%)", "$175.31"]], [400, 562])
    s.text(400, 330, "Total Due", 10, bold=True)
    s.text(562, 330, "$2,300.30", 10, bold=True, align="right")
    s.text(50, 380, "Thank you for your business. Payment terms: 30 days.", 8)
    expected = {
        "invoice_number": "NW-10234",
        "issue_date": "2025-03-03",
        "due_date": "2025-04-02",
        "issuer": "Northwind Traders Inc.",
        "customer": "Contoso Pharmaceuticals LLC",
        "currency": "USD",
        "subtotal": 2124.99,
        "tax": 175.31,
        "total": 2300.30,
        "line_items": [
            ("Consulting services (March)", 12.0, 150.0, 1800.0),
            ("Cloud hosting plan", 1.0, 249.99, 249.99),
            ("Setup fee", 1.0, 75.0, 75.0),
        ],
    }
    return s.pdf(), expected


def german_din() -> tuple[bytes, dict[str, Any]]:
    s = Sheet()
    s.text(50, 50, "Muster Software GmbH", 14, bold=True)
    s.text(50, 125, "Muster Software GmbH · Hauptstraße 1 · 10115 Berlin", 6)
    for k, line in enumerate(["Bergmann & Söhne KG", "Lindenallee 7", "80331 München"]):
        s.text(50, 140 + 13 * k, line, 10)
    for k, (label, value) in enumerate(
        [
            ("Rechnungsnummer:", "RE-2025-0815"),
            ("Rechnungsdatum:", "03.03.2025"),
            ("Kundennummer:", "40711"),
            ("Fällig am:", "02.04.2025"),
        ]
    ):
        s.text(360, 140 + 12 * k, label, 8)
        s.text(450, 140 + 12 * k, value, 8)
    s.text(50, 240, "Rechnung", 14, bold=True)
    xs = [50, 80, 380, 470, 545]
    s.rows(270, [["Pos", "Bezeichnung", "Menge", "Einzelpreis", "Gesamt"]], xs, right_from=2)
    s.rows(
        288,
        [
            ["1", "Softwarelizenz Jahresabo", "5", "240,00", "1.200,00"],
            ["2", "Einrichtung und Schulung", "1", "450,00", "450,00"],
        ],
        xs,
        right_from=2,
    )
    s.rows(
        340,
        [
            ["Nettobetrag", "1.650,00 €"],
            ["zzgl. 19 % USt.", "313,50 €"],
            ["Gesamtbetrag", "1.963,50 €"],
        ],
        [380, 545],
    )
    s.text(50, 400, "Zahlbar innerhalb von 30 Tagen ohne Abzug.", 8)
    s.text(
        50,
        790,
        "Muster Software GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00 · "
        "BIC COBADEFFXXX",
        6,
    )
    expected = {
        "invoice_number": "RE-2025-0815",
        "issue_date": "2025-03-03",
        "due_date": "2025-04-02",
        "issuer": "Muster Software GmbH",
        "customer": "Bergmann & Söhne KG",
        "currency": "EUR",
        "subtotal": 1650.0,
        "tax": 313.5,
        "total": 1963.5,
        "vat_id": "DE123456789",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "line_items": [
            ("Softwarelizenz Jahresabo", 5.0, 240.0, 1200.0),
            ("Einrichtung und Schulung", 1.0, 450.0, 450.0),
        ],
    }
    return s.pdf(), expected


def french_grid() -> tuple[bytes, dict[str, Any]]:
    s = Sheet()
    s.text(297, 50, "FACTURE", 22, bold=True, align="center")
    for x, label, value in [
        (50, "N° de facture", "F-2025-042"),
        (220, "Date", "3 mars 2025"),
        (390, "Échéance", "2 avril 2025"),
    ]:
        s.text(x, 90, label, 8, bold=True)
        s.text(x, 103, value, 10)
    s.text(50, 140, "Facturé à :", 9, bold=True)
    s.text(320, 140, "Émetteur :", 9, bold=True)
    for k, (left, right) in enumerate(
        [
            ("Boulangerie Martin SAS", "Atelier Lumière SARL"),
            ("22 place Bellecour", "8 rue des Tanneurs"),
            ("69002 Lyon", "69001 Lyon"),
        ]
    ):
        s.text(50, 154 + 13 * k, left)
        s.text(320, 154 + 13 * k, right)
    xs = [50, 330, 440, 545]
    s.rows(240, [["Désignation", "Qté", "Prix unitaire HT", "Montant HT"]], xs)
    s.rows(
        258,
        [
            ["Conception de l'éclairage", "1", "1 200,00 €", "1 200,00 €"],
            ["Pose et réglage", "4", "70,00 €", "280,00 €"],
        ],
        xs,
    )
    s.rows(
        310,
        [["Total HT", "1 480,00 €"], ["TVA 20 %", "296,00 €"], ["Total TTC", "1 776,00 €"]],
        [400, 545],
    )
    s.text(50, 380, "N° TVA intracommunautaire : FR44732829320", 7)
    s.text(50, 392, "IBAN : FR76 3000 6000 0112 3456 7890 189 — BIC : AGRIFRPP", 7)
    expected = {
        "invoice_number": "F-2025-042",
        "issue_date": "2025-03-03",
        "due_date": "2025-04-02",
        "issuer": "Atelier Lumière SARL",
        "customer": "Boulangerie Martin SAS",
        "currency": "EUR",
        "subtotal": 1480.0,
        "tax": 296.0,
        "total": 1776.0,
        "vat_id": "FR44732829320",
        "iban": "FR7630006000011234567890189",
        "bic": "AGRIFRPP",
        "line_items": [
            ("Conception de l'éclairage", 1.0, 1200.0, 1200.0),
            ("Pose et réglage", 4.0, 70.0, 280.0),
        ],
    }
    return s.pdf(), expected


def two_pages_inline() -> tuple[bytes, dict[str, Any]]:
    s = Sheet()
    s.text(50, 50, "Invoice", 20, bold=True)
    s.text(50, 80, "Invoice number: 2025/0042")
    s.text(50, 94, "Date: 2025-03-03")
    s.text(50, 108, "Payment terms: net 30 days")
    s.text(350, 80, "From: Blue Harbor Logistics B.V.")
    s.text(350, 94, "Invoice to: Polar Foods Ltd")
    xs = [50, 380, 460, 545]
    items = [(f"Pallet transport, route {k + 1}", 2.0, 85.5 + k, 2 * (85.5 + k)) for k in range(12)]
    s.rows(150, [["Item", "Quantity", "Rate", "Total"]], xs)
    y = s.rows(168, [[d, f"{q:g}", f"{u:.2f}", f"{a:.2f}"] for d, q, u, a in items[:8]], xs)
    s.text(297, 820, "Page 1 of 2", 7, align="center")
    s.new_page()
    s.text(50, 50, "Invoice 2025/0042 (continued)", 9)
    s.rows(80, [["Item", "Quantity", "Rate", "Total"]], xs)
    y = s.rows(98, [[d, f"{q:g}", f"{u:.2f}", f"{a:.2f}"] for d, q, u, a in items[8:]], xs)
    subtotal = round(sum(a for *_rest, a in items), 2)
    tax = round(subtotal * 0.21, 2)
    s.rows(
        y + 20,
        [
            ["Subtotal", f"{subtotal:,.2f}"],
            ["VAT 21%", f"{tax:,.2f}"],
            ["Balance due", f"EUR {subtotal + tax:,.2f}"],
        ],
        [380, 545],
    )
    s.text(50, y + 90, "IBAN NL91 ABNA 0417 1643 00 · VAT NL123456789B01", 7)
    s.text(297, 820, "Page 2 of 2", 7, align="center")
    expected = {
        "invoice_number": "2025/0042",
        "issue_date": "2025-03-03",
        "due_date": "2025-04-02",
        "issuer": "Blue Harbor Logistics B.V.",
        "customer": "Polar Foods Ltd",
        "currency": "EUR",
        "subtotal": subtotal,
        "tax": tax,
        "total": round(subtotal + tax, 2),
        "vat_id": "NL123456789B01",
        "iban": "NL91ABNA0417164300",
        "line_items": items,
    }
    return s.pdf(), expected


LAYOUTS: dict[str, Callable[[], tuple[bytes, dict[str, Any]]]] = {
    "english_classic": english_classic,
    "german_din": german_din,
    "french_grid": french_grid,
    "two_pages_inline": two_pages_inline,
}


def check(result: ExtractionResult, expected: dict[str, Any]) -> None:
    assert result.document_type == "invoice"
    assert result.source == "text"
    for name, value in expected.items():
        assert name in result.fields, f"{name} missing"
        got = result.value(name)
        if name == "line_items":
            assert len(got) == len(value), got
            for item, (desc, qty, unit, amount) in zip(got, value, strict=True):
                assert item["description"] == desc
                assert item["quantity"] == pytest.approx(qty)
                assert item["unit_price"] == pytest.approx(unit)
                assert item["amount"] == pytest.approx(amount)
        elif isinstance(value, float):
            assert got == pytest.approx(value, abs=0.005), name
        else:
            assert got == value, name
    for name, f in result.fields.items():
        assert name in INVOICE_FIELDS
        assert 0.0 < f.confidence <= 1.0
        assert f.page is not None and 1 <= f.page <= result.pages


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_invoice_layouts(layout: str) -> None:
    data, expected = LAYOUTS[layout]()
    result = extract_document(data)
    check(result, expected)
    assert result.confidence >= 0.8
    assert result.text_chars > 100


def test_fields_come_with_their_page() -> None:
    data, _expected = two_pages_inline()
    result = extract_document(data)
    assert result.pages == 2
    assert result.fields["invoice_number"].page == 1
    assert result.fields["total"].page == 2
    assert result.fields["line_items"].page == 1


def test_public_shape() -> None:
    data, _expected = german_din()
    public = extract_document(data).to_public()
    assert public["document_type"] == "invoice"
    assert set(public["fields"]["total"]) == {"value", "confidence", "page"}
    assert public["fields"]["issue_date"]["value"] == "2025-03-03"


# ------------------------------------------------------------------------- unreadable input


_CHILD = """
import sys
from bastion.pipeline.extract import extract_document
from bastion.pipeline.model import ExtractionError
try:
    extract_document(sys.stdin.buffer.read())
except ExtractionError as exc:
    print(exc.reason)
"""


def reason_in_child(data: bytes) -> str:
    """The reason code for a file PDFium cannot open, found in a child process: PDFium keeps
    its last error process-wide, and a failed open here would leave it set for later tests."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], input=data, capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode().strip()


def test_reason_codes_for_unreadable_input() -> None:
    for reason, payload in {"empty": b"", "not_pdf": b"hello, this is not a PDF at all"}.items():
        with pytest.raises(ExtractionError) as info:
            extract_document(payload)
        assert info.value.reason == reason
    data, _expected = english_classic()
    encrypted = Sheet(encrypt=StandardEncryption("secret", canPrint=0))
    encrypted.text(50, 50, "Invoice No: 1")
    assert reason_in_child(data[: len(data) // 2]) == "truncated"
    assert reason_in_child(encrypted.pdf()) == "encrypted"


def test_too_many_pages() -> None:
    s = Sheet()
    for k in range(3):
        s.text(50, 50, f"Page {k + 1}")
        s.new_page()
    data = s.pdf()
    with pytest.raises(ExtractionError) as info:
        extract_document(data, max_pages=2)
    assert info.value.reason == "too_many_pages"
    assert extract_document(data, max_pages=5).pages == 4  # the last showPage adds a blank page


def test_a_pdf_without_text_is_other_with_a_finding() -> None:
    s = Sheet()
    s.canvas.rect(50, 50, 100, 100)
    result = extract_document(s.pdf())
    assert result.document_type == "other"
    assert result.fields == {}
    assert [f.rule_id for f in result.findings] == ["no_text"]


# ------------------------------------------------------------------------------- heuristics


def test_a_labelled_total_is_kept_when_the_arithmetic_fails() -> None:
    s = Sheet()
    s.text(50, 50, "ACME Cleaning Ltd", 16, bold=True)
    s.text(50, 80, "INVOICE  Invoice number: BF-7731  Date: 10/01/2024")
    s.rows(
        120,
        [["Net amount", "2,000.00"], ["VAT at 20%", "400.00"], ["TOTAL (GBP)", "2,500.00"]],
        [50, 300],
    )
    result = extract_document(s.pdf())
    assert result.value("total") == 2500.0
    assert result.value("subtotal") == 2000.0
    assert result.value("tax") == 400.0
    # Consistent totals are more certain than these.
    consistent = extract_document(german_din()[0])
    assert result.fields["total"].confidence < consistent.fields["total"].confidence


def test_tax_lines_per_rate_add_up() -> None:
    s = Sheet()
    s.text(50, 50, "Feinkost Weber GmbH", 16, bold=True)
    s.text(50, 80, "Rechnung Nr. 2025-77 vom 03.03.2025")
    s.rows(
        120,
        [
            ["Warenwert netto", "200,00"],
            ["MwSt. 7 %", "7,00"],
            ["MwSt. 19 %", "19,00"],
            ["Rechnungsbetrag", "226,00 EUR"],
        ],
        [50, 300],
    )
    result = extract_document(s.pdf())
    assert result.value("invoice_number") == "2025-77"
    assert result.value("issue_date") == "2025-03-03"
    assert result.value("tax") == 26.0
    assert result.value("total") == 226.0
    assert result.value("currency") == "EUR"


def test_iban_checksum_picks_the_valid_one() -> None:
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("XX89370400440532013000")
    s = Sheet()
    s.text(50, 50, "Invoice No: 5  Total: 10.00 EUR")
    s.text(50, 70, "Old account: IBAN DE89 3704 0044 0532 0130 01")
    s.text(50, 84, "Please pay to: IBAN GB29 NWBK 6016 1331 9268 19")
    assert extract_document(s.pdf()).value("iban") == "GB29NWBK60161331926819"


def test_the_customer_address_block_does_not_become_the_issuer() -> None:
    s = Sheet()
    s.text(50, 50, "Bill To:", bold=True)
    s.text(50, 64, "Giant Customer Corporation")
    s.text(350, 50, "INVOICE", 20, bold=True)
    s.text(350, 80, "Invoice #: 881")
    s.text(50, 140, "Total due: $99.00")
    s.text(50, 800, "Tiny Vendor LLC · 1 Small Road · Austin, TX 78701", 6)
    result = extract_document(s.pdf())
    assert result.value("customer") == "Giant Customer Corporation"
    assert result.value("issuer") == "Tiny Vendor LLC"


def test_relative_due_date() -> None:
    s = Sheet()
    s.text(50, 50, "INVOICE", 18, bold=True)
    s.text(50, 80, "Invoice date: 15 January 2025")
    s.text(50, 94, "Invoice no.: 1001")
    s.text(50, 120, "Total: 100.00 EUR")
    s.text(50, 140, "Please pay within 14 days.")
    result = extract_document(s.pdf())
    assert result.value("due_date") == "2025-01-29"
    assert result.fields["due_date"].confidence < result.fields["issue_date"].confidence


def test_text_drawn_glyph_by_glyph() -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    s = Sheet()
    lines = [
        (50, 50, "Harbour Tools Ltd", 16),
        (400, 50, "INVOICE", 16),
        (50, 90, "Invoice No: GL-2025-77", 9),
        (50, 104, "Invoice Date: 03/03/2025", 9),
        (50, 118, "Bill To: Polar Foods Ltd", 9),
        (50, 160, "Subtotal", 9),
        (300, 160, "1,000.00", 9),
        (50, 174, "VAT 20%", 9),
        (300, 174, "200.00", 9),
        (50, 188, "Total due", 9),
        (300, 188, "GBP 1,200.00", 9),
        (50, 230, "Thank you for your business, payment within thirty days please.", 9),
    ]
    for x, y, text, size in lines:  # one text object per letter, as some generators do
        s.canvas.setFont("Helvetica", size)
        for k, ch in enumerate(text):
            if ch != " ":
                s.canvas.drawString(x + stringWidth(text[:k], "Helvetica", size), s.height - y, ch)
    result = extract_document(s.pdf())
    assert result.value("invoice_number") == "GL-2025-77"
    assert result.value("issue_date") == "2025-03-03"
    assert result.value("issuer") == "Harbour Tools Ltd"
    assert result.value("customer") == "Polar Foods Ltd"
    assert (result.value("subtotal"), result.value("tax"), result.value("total")) == (
        1000.0,
        200.0,
        1200.0,
    )


def test_monospace_text_dump() -> None:
    s = Sheet()
    s.canvas.setFont("Courier", 9)
    lines = [
        "NORTHWIND TRADING LTD" + " " * 40 + "INVOICE",
        "1 Dock Road, Leeds" + " " * 34 + "Invoice #: 55012",
        " " * 52 + "Date: 12 Mar 2025",
        "BILL TO:",
        "Contoso Retail PLC",
        "",
        f"{'DESCRIPTION':<36}{'QTY':>6}{'UNIT PRICE':>14}{'AMOUNT':>14}",
        f"{'Steel brackets':<36}{'10':>6}{'4.50':>14}{'45.00':>14}",
        f"{'Hinges, brass':<36}{'4':>6}{'2.25':>14}{'9.00':>14}",
        "",
        " " * 40 + f"{'Subtotal':<14}{'54.00':>16}",
        " " * 40 + f"{'VAT 20%':<14}{'10.80':>16}",
        " " * 40 + f"{'TOTAL DUE':<14}{'GBP 64.80':>16}",
    ]
    for k, line in enumerate(lines):
        s.canvas.drawString(40, s.height - 60 - 12 * k, line)
    result = extract_document(s.pdf())
    assert result.value("issuer") == "NORTHWIND TRADING LTD"
    assert result.value("invoice_number") == "55012"
    assert result.value("issue_date") == "2025-03-12"
    assert result.value("total") == 64.8
    assert [i["amount"] for i in result.value("line_items")] == [45.0, 9.0]


def test_normalise_name() -> None:
    assert normalise_name("ACME Widgets GmbH") == normalise_name("Acme widgets")
    assert normalise_name("Foo Bar Sp. z o.o.") == "foo bar"
    assert normalise_name("Northwind, Inc.") == "northwind"


def _page(rows: list[list[tuple[str, float]]]) -> Page:
    cells = [
        Cell(text, x, x + 6 * len(text), 100 + 15 * k, 108 + 15 * k)
        for k, row in enumerate(rows)
        for text, x in row
    ]
    built = build_rows(cells)
    return Page(1, 595, 842, built, "\n".join(r.text for r in built))


def test_pdfplumber_is_asked_only_when_the_item_table_does_not_add_up() -> None:
    header = [("Description", 50), ("Qty", 300), ("Price", 380), ("Amount", 480)]
    good = _page([header, [("Widget", 50), ("2", 300), ("5.00", 380), ("10.00", 480)],
                  [("Total", 380), ("10.00", 480)]])  # fmt: skip
    calls: list[int] = []

    def loader(number: int) -> Page | None:
        calls.append(number)
        return good

    fields = extract_invoice([good], plumber=loader)
    assert calls == []
    assert fields["line_items"].value[0]["amount"] == 10.0
    # The fast text lost the columns of the item rows: the page is read again.
    broken = _page([header, [("Widget 2", 50)], [("Total", 380), ("10.00", 480)]])
    fields = extract_invoice([broken], plumber=loader)
    assert calls == [1]
    assert fields["line_items"].value == good_items()


def good_items() -> list[dict[str, Any]]:
    return [{"description": "Widget", "quantity": 2.0, "unit_price": 5.0, "amount": 10.0}]


def test_invoice_number_printed_under_the_title() -> None:
    page = _page([
        [("ACME Tools", 50), ("INVOICE", 450)],
        [("hello@acme.example", 50)],
        [("# INV_77", 450)],
        [("Date:", 380), ("Jan 1, 2022", 460)],
    ])  # fmt: skip
    assert extract_invoice([page])["invoice_number"].value == "INV_77"
    # More than three lines below the title: not its number.
    far = _page([
        [("ACME Tools", 50), ("INVOICE", 450)],
        [("1 Main Street", 50)],
        [("Springfield", 50)],
        [("hello@acme.example", 50)],
        [("# INV_77", 450)],
    ])  # fmt: skip
    assert "invoice_number" not in extract_invoice([far])


def _statement(detail: list[list[tuple[str, float]]]) -> Page:
    return _page([
        [("Summary", 40)],
        [("Service charges", 50), ("$7.00", 480)],
        [("Charges", 60), ("$7.00", 480)],
        [("Total for this invoice", 40), ("$7.00", 480)],
        [("Detail", 40)],
        *detail,
    ])  # fmt: skip


def test_charges_listed_without_a_table_header() -> None:
    page = _statement([
        [("Hosting", 50), ("$5.00", 480)],
        [("Charges", 60), ("$5.00", 480)],
        [("VAT", 60), ("$0.00", 480)],
        [("Storage", 50), ("$2.00", 480)],
        [("Charges", 60), ("$2.00", 480)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["total"].value == 7.0
    assert fields["line_items"].value == [
        {"description": "Hosting", "quantity": None, "unit_price": 5.0, "amount": 5.0},
        {"description": "Storage", "quantity": None, "unit_price": 2.0, "amount": 2.0},
    ]


def test_listed_charges_must_add_up_to_a_total() -> None:
    page = _statement([
        [("Hosting", 50), ("$5.00", 480)],
        [("Charges", 60), ("$5.00", 480)],
        [("Storage", 50), ("$3.00", 480)],
        [("Charges", 60), ("$3.00", 480)],
    ])  # fmt: skip
    assert "line_items" not in extract_invoice([page])


def test_internal_line_items_have_the_models_fields() -> None:
    """Line items are read into a small dataclass and become dicts only for the result: its
    fields must stay those of the public LineItem model."""
    from dataclasses import fields

    from bastion.pipeline.extract.invoice.line_items import _Item
    from bastion.pipeline.model import LineItem

    assert [f.name for f in fields(_Item)] == list(LineItem.model_fields)
    item = _Item("Widget", 2.0, 1.5, 3.0)
    assert LineItem.model_validate(item.as_dict()).model_dump() == item.as_dict()


@pytest.mark.parametrize(
    ("lines", "number", "issued"),
    [
        (
            [
                "Darstellung der Rechnungsdaten, Vorlage 2.1 vom 10.11.2024",
                "Abschlagsrechnung Projekt (12) Nr. 4711-A vom 02.03.2025",
                "Waehrung: EUR",
            ],
            "4711-A",
            "2025-03-02",
        ),
        (
            ["Atelier Mercier SARL", "Facture d'acompte N° F-2025-17 du 14/02/2025"],
            "F-2025-17",
            "2025-02-14",
        ),
    ],
)
def test_a_title_line_gives_the_number_and_the_issue_date(
    lines: list[str], number: str, issued: str
) -> None:
    """A document-type word, a compound too, then other words, then "Nr."/"N°" and the number,
    then "vom"/"du" and the date: the number and the issue date, not a banner's date above."""
    fields = extract_invoice([_page([[(line, 50)] for line in lines])])
    assert fields["invoice_number"].value == number
    assert fields["issue_date"].value == issued


def test_a_title_line_yields_to_a_label_and_is_never_a_date_label() -> None:
    # An explicit label still wins over the title.
    labelled = _page([
        [("Schlussrechnung Bau Nr. 900 vom 01.04.2025", 50)],
        [("Rechnungsnummer:", 50), ("R-901", 200)],
    ])  # fmt: skip
    assert extract_invoice([labelled])["invoice_number"].value == "R-901"
    # A date label followed by a number is not a title.
    not_title = _page([[("Rechnungsdatum Nr. 5", 50)]])
    assert "invoice_number" not in extract_invoice([not_title])


def test_a_fallback_issue_date_never_discards_a_labelled_due_date() -> None:
    """The first date on page 1 stands in for a missing issue date; a labelled due date before
    it is kept (it is the fallback that is likely wrong), while a labelled issue date after a
    labelled due date still rules the due date out."""
    fallback = _page([
        [("Vorlage 2.1 vom 10.11.2025", 50)],
        [("Fällig am:", 50), ("01.06.2025", 200)],
    ])  # fmt: skip
    assert extract_invoice([fallback])["due_date"].value == "2025-06-01"
    labelled = _page([
        [("Rechnungsdatum:", 50), ("10.11.2025", 200)],
        [("Fällig am:", 50), ("01.06.2025", 200)],
    ])  # fmt: skip
    assert "due_date" not in extract_invoice([labelled])


@pytest.mark.parametrize(
    ("rows", "subtotal", "tax", "total"),
    [
        (  # a net qualifier beats the total word; a gross compound is the total
            [
                ("Gesamtsumme ohne MwSt.", "1.250,00"),
                ("Steuerbetrag", "237,50"),
                ("Bruttosumme", "1.487,50"),
            ],
            1250.0,
            237.5,
            1487.5,
        ),
        (  # "net à payer" is the amount to pay, not a net total
            [("Total HT", "200,00"), ("TVA 20 %", "40,00"), ("Net à payer", "240,00")],
            200.0,
            40.0,
            240.0,
        ),
    ],
)
def test_qualifiers_decide_net_and_gross_totals(
    rows: list[tuple[str, str]], subtotal: float, tax: float, total: float
) -> None:
    page = _page(
        [[("Rechnung Nr. 77", 50)], *([(label, 50), (value, 400)] for label, value in rows)]
    )
    fields = extract_invoice([page])
    assert fields["subtotal"].value == subtotal
    assert fields["tax"].value == tax
    assert fields["total"].value == total


def test_a_seller_block_laid_out_as_a_form_gives_the_name_key_s_value() -> None:
    page = _page([
        [("Rechnung Nr. 5001 vom 01.02.2025", 50)],
        [("Verkäufer", 50)],
        [("Nummer:", 50), ("4410", 200)],
        [("Name:", 50), ("Beispielwerk Nord", 200)],
        [("E-Mail:", 50), ("absender@beispielwerk-nord.example", 200)],
        [("Käufer", 50)],
        [("Name:", 50), ("Kundenhaus Süd GmbH", 200)],
    ])  # fmt: skip
    assert extract_invoice([page])["issuer"].value == "Beispielwerk Nord"
    # A name that starts with a party word stands when it carries a legal form.
    english = _page([
        [("Invoice No. 88", 50)],
        [("Seller", 50)],
        [("Company name:", 50), ("Supplier Direct Ltd", 200)],
        [("Buyer", 50)],
        [("Company name:", 50), ("Harbour Foods Ltd", 200)],
    ])  # fmt: skip
    assert extract_invoice([english])["issuer"].value == "Supplier Direct Ltd"


def test_an_e_mail_address_is_never_a_name() -> None:
    page = _page([
        [("Absender: kontakt@werkstatt.example", 50)],
        [("Rechnung Nr. 12", 50)],
        [("Werkstatt Lindner KG", 50)],
    ])  # fmt: skip
    assert extract_invoice([page])["issuer"].value == "Werkstatt Lindner KG"


def test_the_title_line_s_date_stands_when_the_number_comes_from_a_label() -> None:
    page = _page([
        [("Darstellung, Vorlage 3.0 vom 01.12.2024", 50)],
        [("Sammelrechnung (380) Nr. 777 vom 05.06.2025", 50)],
        [("Zahlungsreferenz: Rechnungsnummer: 777", 50)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["invoice_number"].value == "777"
    assert fields["issue_date"].value == "2025-06-05"


def test_zahlbar_zum_names_the_due_date() -> None:
    page = _page([
        [("Rechnungsdatum:", 50), ("03.03.2025", 200)],
        [("Bitte zahlbar zum 17.03.2025 ohne Abzug.", 50)],
    ])  # fmt: skip
    assert extract_invoice([page])["due_date"].value == "2025-03-17"


@pytest.mark.parametrize(
    ("rows", "tax"),
    [
        # The invoice says it carries no VAT.
        (
            [("Gesamtbetrag", "48,00"), ("Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.", "")],
            0.0,
        ),
        (
            [("Total", "120.00"), ("Reverse charge: VAT to be accounted for by the customer.", "")],
            0.0,
        ),
        # A printed net total equal to the total.
        ([("Total HT", "75,00"), ("Total TTC", "75,00")], 0.0),
        # Nothing says so: no tax is claimed.
        ([("Total", "120.00")], None),
    ],
)
def test_a_tax_of_zero_needs_a_reason(rows: list[tuple[str, str]], tax: float | None) -> None:
    page = _page(
        [[("Invoice No. 31", 50)], *([(a, 50), (b, 400)] if b else [(a, 50)] for a, b in rows)]
    )
    fields = extract_invoice([page])
    assert (fields["tax"].value if "tax" in fields else None) == tax


def test_dates_of_another_invoice_or_of_a_service_period_are_not_the_issue_date() -> None:
    """The date of the invoice this one follows ("date de facture associée") and the dates of
    a service period are told apart from the issue date, labelled generically here."""
    page = _page([
        [("FACTURE N° :", 300), ("F-2077", 450)],
        [("Date :", 300), ("31/01/2022", 450)],
        [("N° DE FACTURE ASSOCIÉE : F-2003", 50)],
        [("DATE DE FACTURE ASSOCIÉE : 01/01/2022", 50)],
        [("DATE DE DEBUT DE PRESTATION : 01/12/2021", 50)],
        [("Date d'échéance :", 50), ("02/03/2022", 150)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["invoice_number"].value == "F-2077"
    assert fields["issue_date"].value == "2022-01-31"
    assert fields["due_date"].value == "2022-03-02"


def test_a_stated_due_date_beats_one_computed_from_the_payment_terms() -> None:
    page = _page([
        [("Invoice No.", 50), ("A-1", 150)],
        [("Invoice date:", 50), ("2024-03-01", 150)],
        [("Payment within 30 days net.", 50)],
        [("Due date:", 50), ("2024-03-20", 150)],
    ])  # fmt: skip
    assert extract_invoice([page])["due_date"].value == "2024-03-20"
    computed = _page([
        [("Invoice No.", 50), ("A-1", 150)],
        [("Invoice date:", 50), ("2024-03-01", 150)],
        [("Payment within 30 days net.", 50)],
    ])  # fmt: skip
    assert extract_invoice([computed])["due_date"].value == "2024-03-31"


def test_a_party_word_inside_a_name_is_not_a_label() -> None:
    """ "Seller Trading Name" and "Le Fournisseur" hold a party word but are names: the value
    after the word is not the issuer, and the name printed again (as the payee) is."""
    page = _page([
        [("FACTURE N° :", 300), ("F-9", 450)],
        [("SELLER TRADING NAME", 50)],
        [("LE FOURNISSEUR", 50)],
        [("35 rue d'ici", 50)],
        [("75018 PARIS", 50)],
        [("Bénéficiaire", 50)],
        [("NOM : LE FOURNISSEUR", 55)],
    ])  # fmt: skip
    assert extract_invoice([page])["issuer"].value == "LE FOURNISSEUR"


def test_the_legal_name_on_the_registry_line_beats_a_department_printed_twice() -> None:
    page = _page([
        [("Hotline Service Abonné", 50)],
        [("Facture N° 123456", 300)],
        [("Courrier :", 50), ("Hotline Service Abonné 75371 Paris Cedex", 120)],
        [("Hotline SAS au capital de 3.441.812 Euros - RCS Paris", 50)],
    ])  # fmt: skip
    assert extract_invoice([page])["issuer"].value == "Hotline SAS"


def test_a_number_marked_n_degree_under_the_title_and_compact_dates_beside_labels() -> None:
    """ "N° FA-1" on the line under the title; dates written YYYYMMDD (EN 16931 format 102)
    read beside a date label, and only there."""
    page = _page([
        [("FACTURE", 50)],
        [("N° FA-2026-0001", 50)],
        [("Date : 20260815 · Échéance : 20260914", 50)],
        [("SIRET 39280913700027", 50)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["invoice_number"].value == "FA-2026-0001"
    assert fields["issue_date"].value == "2026-08-15"
    assert fields["due_date"].value == "2026-09-14"


def test_a_date_label_inside_a_sentence_is_not_a_label() -> None:
    page = _page([
        [("Facture n° :", 50), ("20221100001", 150)],
        [("Le lundi 21 novembre 2022", 300)],
        [("Passée la date d'échéance ci-dessus, une pénalité de retard sera appliquée.", 50)],
        [("(Loi 2008-776 du 4 août 2008) ainsi qu'une indemnité forfaitaire.", 50)],
    ])  # fmt: skip
    assert "due_date" not in extract_invoice([page])


def test_seller_and_buyer_forms_side_by_side_are_read_by_column() -> None:
    """Two party blocks laid out as forms in two columns: each name is the value of the name
    key in its own column, never the other party's."""
    page = _page([
        [("Rechnung Nr. 2024-88 vom 01.03.2024", 50)],
        [("Lieferant", 50), ("Kunde", 300)],
        [("Name:", 50), ("Lieferwerk Nord GmbH", 110), ("Name:", 300), ("Kundenhaus Süd AG", 360)],
        [("Straße:", 50), ("Hafenweg 3", 110), ("Straße:", 300), ("Ringstraße 9", 360)],
        [("Gesamtbetrag", 300), ("119,00", 480)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["issuer"].value == "Lieferwerk Nord GmbH"
    assert fields["customer"].value == "Kundenhaus Süd AG"


def test_a_totals_header_ends_the_item_table_and_a_form_key_is_not_a_customer() -> None:
    page = _page([
        [("Factura N° F-31", 50)],
        [("Cliente", 50)],
        [("Empresa:", 50), ("Gráficas Levante S.L.", 130)],
        [("Descripción", 50), ("Cantidad", 300), ("Precio", 400), ("Importe", 480)],
        [("Mantenimiento anual", 50), ("2", 300), ("298,49", 400), ("596,98", 480)],
        [("Base imponible", 150), ("IVA 21 %", 300), ("Total factura", 460)],
        [("596,98 EUR", 150), ("125,37 EUR", 300), ("722,35 EUR", 460)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["customer"].value == "Gráficas Levante S.L."
    assert (fields["subtotal"].value, fields["tax"].value, fields["total"].value) == (
        596.98,
        125.37,
        722.35,
    )
    assert [it["description"] for it in fields["line_items"].value] == ["Mantenimiento anual"]


def test_footer_seller_and_a_recipient_block_without_heading() -> None:
    """The seller printed only in the footer, over its VAT number and IBAN; the recipient's
    address block at the top without a heading: each found as what it is."""
    page = _page([
        [("VERDANT", 50)],
        [("", 50)],
        [("", 50)],
        [("Ashford Logistics LLP", 50), ("Invoice", 330)],
        [("37 Quay Street", 50), ("Invoice #:", 330), ("INV-2023-6998", 430)],
        [("Bristol BS1 5TR", 50), ("Date:", 330), ("30/12/2023", 430)],
        [("Total", 330), ("£1,200.00", 480)],
    ] + [[("", 50)]] * 40 + [
        [("Kestrel Catering Limited", 50), ("VAT No.: GB 086532720", 215)],
        [("Unit 33, Canal Wharf", 50), ("IBAN: GB30 KXAJ 7714 9286 7828 04", 215)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["issuer"].value == "Kestrel Catering Limited"
    assert fields["customer"].value == "Ashford Logistics LLP"


def test_two_address_blocks_without_headings_are_seller_then_buyer() -> None:
    page = _page([
        [("Menuiserie Lumière SAS", 50)],
        [("38 place Bellecour", 50)],
        [("44000 Nantes", 50)],
        [("N° TVA intracommunautaire: FR83242407227", 50)],
        [("", 50)],
        [("Atelier Marchand SA", 50)],
        [("25 rue des Tanneurs", 50)],
        [("75011 Paris", 50)],
        [("FACTURE F-2025-8912", 50)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert fields["issuer"].value == "Menuiserie Lumière SAS"
    assert fields["customer"].value == "Atelier Marchand SA"


@pytest.mark.parametrize(
    ("heading", "seller", "buyer"),
    [
        ("Datos del cliente", "Gráficas Iberia S.L.", "Transportes del Sur S.A."),
        ("Aan", "Oranje Media V.O.F.", "Molenaar Techniek N.V."),
        ("Cessionario / committente", "Consulenze Colombo S.n.c.", "Costruzioni del Po S.a.s."),
    ],
)
def test_buyer_headings_and_legal_forms_of_more_languages(
    heading: str, seller: str, buyer: str
) -> None:
    page = _page([
        [("NOVALUX", 50), ("Invoice No. X-5", 330)],
        [(seller, 50)],
        [("Via Roma 1, 20121 Milano", 50)],
        [("", 50)],
        [(heading, 50)],
        [(buyer, 50)],
        [("Corso Italia 47", 50)],
    ])  # fmt: skip
    fields = extract_invoice([page])
    assert (fields["issuer"].value, fields["customer"].value) == (seller, buyer)
