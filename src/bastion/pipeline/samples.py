"""The bundled sample documents: what they contain, and how to regenerate them.

The files live in `bastion/data/samples/` and are committed, so the demo never needs reportlab
(a development dependency) at run time. `python -m bastion.pipeline.samples DIR` regenerates
them; reportlab's invariant mode (fixed dates and document ID) and fixed content make the output
byte-identical from run to run with the same reportlab and zlib (`GENERATED_WITH` records the
versions the committed files were made with).

`SAMPLES` describes every file: its document type, language, the field values an extractor
should find (dates ISO, amounts numbers) and phrases its text must contain.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

GENERATED_WITH = {"reportlab": "5.1.0", "zlib": "1.2.13"}


@dataclass(frozen=True)
class Sample:
    """One bundled file and what it should yield."""

    name: str
    document_type: str  # "invoice", "contract", "report" or "other"
    language: str
    description: str
    fields: dict[str, Any] = field(default_factory=dict)
    texts: tuple[str, ...] = ()  # phrases the extracted text contains
    reason: str | None = None  # reason code the file is refused with, if it is


_LINE_ITEMS: list[dict[str, Any]] = [
    {"description": description, "quantity": quantity, "unit_price": price, "amount": amount}
    for description, quantity, price, amount in (
        ("Ergonomic office chair", 4.0, 189.0, 756.0),
        ("Standing desk, oak", 2.0, 420.0, 840.0),
        ("Monitor arm, dual", 4.0, 61.5, 246.0),
        ("Delivery and assembly", 1.0, 95.0, 95.0),
    )
]

_NORDLICHT = {
    "invoice_number": "RE-2024-0815",
    "issue_date": "2024-03-15",
    "due_date": "2024-04-14",
    "issuer": "Nordlicht Software GmbH",
    "customer": "Bergmann & Söhne KG",
    "currency": "EUR",
    "subtotal": 1250.0,
    "tax": 237.5,
    "total": 1487.5,
    "vat_id": "DE812345673",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
}

SAMPLES: tuple[Sample, ...] = (
    Sample(
        name="invoice_en_line_items.pdf",
        document_type="invoice",
        language="en",
        description="English invoice with a table of line items (GBP, 20 % VAT)",
        fields={
            "invoice_number": "INV-2024-0042",
            "issue_date": "2024-02-29",
            "due_date": "2024-03-30",
            "issuer": "Acme Office Supplies Ltd",
            "customer": "Harbour View Dental Practice",
            "currency": "GBP",
            "subtotal": 1937.0,
            "tax": 387.4,
            "total": 2324.4,
            "vat_id": "GB284916325",
            "iban": "GB29NWBK60161331926819",
            "bic": "NWBKGB2L",
            "line_items": _LINE_ITEMS,
        },
        texts=("INVOICE", "INV-2024-0042", "Standing desk, oak", "2,324.40"),
    ),
    Sample(
        name="invoice_de.pdf",
        document_type="invoice",
        language="de",
        description="German invoice (Rechnung), 19 % MwSt., German number and date formats",
        fields=_NORDLICHT,
        texts=("Rechnung", "RE-2024-0815", "15.03.2024", "1.487,50 €"),
    ),
    Sample(
        name="invoice_de_duplicate.pdf",
        document_type="invoice",
        language="de",
        description="The German invoice sent again: same issuer and invoice number, same "
        "content, different file bytes (its metadata says it was resent)",
        fields=_NORDLICHT,
        texts=("Rechnung", "RE-2024-0815", "1.487,50 €"),
    ),
    Sample(
        name="invoice_fr.pdf",
        document_type="invoice",
        language="fr",
        description="French invoice (Facture), TVA 20 %, French number and date formats",
        fields={
            "invoice_number": "F-2024-042",
            "issue_date": "2024-04-02",
            "due_date": "2024-05-02",
            "issuer": "Atelier Lumière SARL",
            "customer": "Boulangerie Martin",
            "currency": "EUR",
            "subtotal": 840.0,
            "tax": 168.0,
            "total": 1008.0,
            "vat_id": "FR44732829320",
            "iban": "FR7630006000011234567890189",
            "bic": "AGRIFRPP",
        },
        texts=("FACTURE", "F-2024-042", "02/04/2024", "1 008,00 €"),
    ),
    Sample(
        name="invoice_en_wrong_total.pdf",
        document_type="invoice",
        language="en",
        description="English invoice whose total is wrong: 2,000.00 + 400.00 VAT is printed "
        "as 2,500.00",
        fields={
            "invoice_number": "BF-7731",
            "issue_date": "2024-01-10",
            "due_date": "2024-02-09",
            "issuer": "Brightside Facilities Ltd",
            "customer": "Northgate Property Management",
            "currency": "GBP",
            "subtotal": 2000.0,
            "tax": 400.0,
            "total": 2500.0,
            "vat_id": "GB617053264",
            "iban": "GB82WEST12345698765432",
            "bic": "WESTGB2L",
        },
        texts=("BF-7731", "2,000.00", "2,500.00"),
    ),
    Sample(
        name="contract_services.pdf",
        document_type="contract",
        language="en",
        description="Two-page services agreement between two companies",
        fields={
            "parties": ["Nordlicht Software GmbH", "Acme Office Supplies Ltd"],
            "effective_date": "2024-04-01",
            "term": "24 months",
            "expiry_date": "2026-03-31",
            "governing_law": "England and Wales",
            "total_value": 48000.0,
            "currency": "EUR",
            "signatories": ["Dr. Katrin Vogel", "James Whitfield"],
        },
        texts=("SERVICES AGREEMENT", "Governing Law", "England and Wales", "EUR 48,000.00"),
    ),
    Sample(
        name="report_quarterly.pdf",
        document_type="report",
        language="en",
        description="Two-page quarterly operations report with numbered headings",
        fields={
            "title": "Quarterly Operations Report Q1 2024",
            "author": "Priya Raman",
            "organisation": "Harbour Logistics Group",
            "date": "2024-04-12",
            "headings": ["Executive Summary", "Shipment Volumes", "Incidents", "Outlook"],
        },
        texts=("Quarterly Operations Report Q1 2024", "Executive Summary", "Outlook"),
    ),
    Sample(
        name="not_a_pdf.pdf",
        document_type="other",
        language="",
        description="A PNG image renamed to .pdf: refused before any parse",
        reason="not_pdf",
    ),
)


def bundled_dir() -> Path:
    """Where the committed sample files are installed."""
    return Path(str(resources.files("bastion") / "data" / "samples"))


def bundled_paths() -> list[Path]:
    return [bundled_dir() / sample.name for sample in SAMPLES]


# --- generation (needs reportlab) ------------------------------------------------------------


def render_samples() -> dict[str, bytes]:
    """Every sample file's bytes, by file name."""
    renderers: dict[str, Callable[[], bytes]] = {
        "invoice_en_line_items.pdf": _invoice_en_line_items,
        "invoice_de.pdf": lambda: _invoice_de(resent=False),
        "invoice_de_duplicate.pdf": lambda: _invoice_de(resent=True),
        "invoice_fr.pdf": _invoice_fr,
        "invoice_en_wrong_total.pdf": _invoice_en_wrong_total,
        "contract_services.pdf": _contract,
        "report_quarterly.pdf": _report,
        "not_a_pdf.pdf": _png,
    }
    return {sample.name: renderers[sample.name]() for sample in SAMPLES}


def write_samples(directory: Path) -> list[Path]:
    """Write every sample into `directory` (created if missing); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in render_samples().items():
        path = directory / name
        path.write_bytes(data)
        written.append(path)
    return written


class SamplePage:
    """A reportlab canvas with the few drawing helpers the samples need."""

    def __init__(self, title: str, author: str, subject: str = "") -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        self.buffer = io.BytesIO()
        self.width, self.height = A4
        self.canvas = canvas.Canvas(self.buffer, pagesize=A4, invariant=1, pageCompression=1)
        self.canvas.setTitle(title)
        self.canvas.setAuthor(author)
        self.canvas.setSubject(subject or title)
        self.canvas.setCreator("Bastion sample generator")

    def text(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        self.canvas.drawString(x, y, text)

    def right(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        self.canvas.drawRightString(x, y, text)

    def rule(self, y: float, x0: float = 50, x1: float = 545) -> None:
        self.canvas.setLineWidth(0.5)
        self.canvas.line(x0, y, x1, y)

    def paragraph(self, x: float, y: float, lines: list[str], size: float = 10) -> float:
        for line in lines:
            self.text(x, y, line, size)
            y -= size * 1.45
        return y

    def next_page(self) -> None:
        self.canvas.showPage()

    def finish(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def _en(amount: float) -> str:
    return f"{amount:,.2f}"


def _de(amount: float) -> str:
    return f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _fr(amount: float) -> str:
    return f"{amount:,.2f}".replace(",", " ").replace(".", ",")


def _invoice_en_line_items() -> bytes:
    page = SamplePage("Invoice INV-2024-0042", "Acme Office Supplies Ltd")
    page.text(50, 790, "Acme Office Supplies Ltd", 16, bold=True)
    page.paragraph(50, 772, ["14 Foundry Lane", "Leeds LS1 4AB", "United Kingdom",
                             "VAT Reg. No. GB 284 9163 25"], 9)  # fmt: skip
    page.right(545, 790, "INVOICE", 22, bold=True)
    page.right(545, 766, "Invoice No.: INV-2024-0042")
    page.right(545, 752, "Invoice Date: 29 February 2024")
    page.right(545, 738, "Due Date: 30 March 2024")
    page.text(50, 690, "Bill To:", bold=True)
    page.paragraph(50, 675, ["Harbour View Dental Practice", "3 Quay Street",
                             "Whitby YO21 3PU"])  # fmt: skip
    y = 610.0
    page.rule(y + 14)
    page.text(50, y, "Description", bold=True)
    page.right(380, y, "Qty", bold=True)
    page.right(460, y, "Unit Price", bold=True)
    page.right(545, y, "Amount", bold=True)
    page.rule(y - 6)
    for item in _LINE_ITEMS:
        y -= 22
        page.text(50, y, str(item["description"]))
        page.right(380, y, f"{item['quantity']:g}")
        page.right(460, y, _en(float(item["unit_price"])))
        page.right(545, y, _en(float(item["amount"])))
    page.rule(y - 10)
    y -= 30
    for label, value, bold in (
        ("Subtotal", "1,937.00", False),
        ("VAT 20%", "387.40", False),
        ("Total Due (GBP)", "2,324.40", True),
    ):
        page.right(460, y, label, bold=bold)
        page.right(545, y, value, bold=bold)
        y -= 18
    page.text(50, 200, "Payment terms: 30 days net. Please quote the invoice number.", 9)
    page.text(50, 186, "Bank: NatWest  IBAN: GB29 NWBK 6016 1331 9268 19  BIC: NWBKGB2L", 9)
    return page.finish()


def _invoice_de(*, resent: bool) -> bytes:
    subject = "Rechnung RE-2024-0815 (erneut gesendet)" if resent else "Rechnung RE-2024-0815"
    page = SamplePage("Rechnung RE-2024-0815", "Nordlicht Software GmbH", subject)
    page.text(50, 800, "Nordlicht Software GmbH · Hafenstraße 12 · 20457 Hamburg", 8)
    page.paragraph(50, 760, ["Bergmann & Söhne KG", "z. Hd. Frau Elke Bergmann",
                             "Industrieweg 7", "40213 Düsseldorf"])  # fmt: skip
    page.text(360, 760, "Nordlicht Software GmbH", 12, bold=True)
    page.paragraph(360, 744, ["Hafenstraße 12", "20457 Hamburg",
                              "USt-IdNr.: DE812345673"], 9)  # fmt: skip
    page.text(50, 660, "Rechnung", 18, bold=True)
    page.paragraph(50, 636, ["Rechnungsnummer: RE-2024-0815", "Rechnungsdatum: 15.03.2024",
                             "Leistungszeitraum: 01.02.2024 \u2013 29.02.2024",
                             "Fällig am: 14.04.2024"])  # fmt: skip
    page.paragraph(50, 560, ["Sehr geehrte Frau Bergmann,",
                             "für die Wartung und Weiterentwicklung Ihres Warenwirtschaftssystems",
                             "im Februar 2024 berechnen wir Ihnen wie vereinbart:"])  # fmt: skip
    y = 490.0
    for label, value, bold in (
        ("Wartungspauschale Februar 2024", "850,00 €", False),
        ("Weiterentwicklung, 5 Stunden à 80,00 €", "400,00 €", False),
        ("Nettobetrag", "1.250,00 €", False),
        ("zzgl. 19 % MwSt.", "237,50 €", False),
        ("Gesamtbetrag", "1.487,50 €", True),
    ):
        if label == "Nettobetrag":
            page.rule(y + 12, 300, 545)
        page.text(300 if bold or label.startswith(("Netto", "zzgl")) else 50, y, label, bold=bold)
        page.right(545, y, value, bold=bold)
        y -= 20
    page.paragraph(50, 340, ["Bitte überweisen Sie den Gesamtbetrag bis zum 14.04.2024 auf",
                             "folgendes Konto:", "Commerzbank Köln",
                             "IBAN: DE89 3704 0044 0532 0130 00", "BIC: COBADEFFXXX"])  # fmt: skip
    page.text(50, 240, "Mit freundlichen Grüßen", 10)
    page.text(50, 226, "Nordlicht Software GmbH", 10)
    page.text(50, 80, "Geschäftsführerin: Dr. Katrin Vogel · Amtsgericht Hamburg HRB 123456", 7)
    return page.finish()


def _invoice_fr() -> bytes:
    page = SamplePage("Facture F-2024-042", "Atelier Lumière SARL")
    page.text(50, 790, "Atelier Lumière SARL", 15, bold=True)
    page.paragraph(50, 772, ["8 rue des Tanneurs", "69001 Lyon", "France",
                             "SIREN 732 829 320", "TVA intracommunautaire : FR44732829320"],
                   9)  # fmt: skip
    page.text(330, 790, "FACTURE", 20, bold=True)
    page.paragraph(330, 766, ["N° de facture : F-2024-042", "Date : 02/04/2024",
                              "Échéance : 02/05/2024"])  # fmt: skip
    page.text(330, 700, "Client :", bold=True)
    page.paragraph(330, 685, ["Boulangerie Martin", "22 place Bellecour", "69002 Lyon"])
    y = 600.0
    page.rule(y + 14)
    page.text(50, y, "Désignation", bold=True)
    page.right(545, y, "Montant HT", bold=True)
    page.rule(y - 6)
    for label, value in (
        ("Conception de l'éclairage de la vitrine", "560,00 €"),
        ("Pose et réglage (4 h à 70,00 €)", "280,00 €"),
    ):
        y -= 22
        page.text(50, y, label)
        page.right(545, y, value)
    y -= 40
    for label, value, bold in (
        ("Total HT", "840,00 €", False),
        ("TVA 20 %", "168,00 €", False),
        ("Total TTC", "1 008,00 €", True),
    ):
        page.right(460, y, label, bold=bold)
        page.right(545, y, value, bold=bold)
        y -= 18
    page.paragraph(50, 300, ["Conditions de paiement : 30 jours à réception de la facture.",
                             "Règlement par virement :",
                             "IBAN : FR76 3000 6000 0112 3456 7890 189",
                             "BIC : AGRIFRPP",
                             "Pénalités de retard : trois fois le taux d'intérêt légal."],
                   9)  # fmt: skip
    return page.finish()


def _invoice_en_wrong_total() -> bytes:
    page = SamplePage("Invoice BF-7731", "Brightside Facilities Ltd")
    page.text(50, 800, "INVOICE", 24, bold=True)
    page.text(50, 770, "Brightside Facilities Ltd", 12, bold=True)
    page.paragraph(50, 755, ["Unit 5, Canal Wharf, Birmingham B1 2JR",
                             "VAT number: GB617053264"], 9)  # fmt: skip
    page.paragraph(350, 770, ["Invoice number: BF-7731", "Date of issue: 10/01/2024",
                              "Payment due: 09/02/2024"])  # fmt: skip
    page.text(50, 700, "Customer", bold=True)
    page.paragraph(50, 685, ["Northgate Property Management", "40 Colmore Row",
                             "Birmingham B3 2BJ"])  # fmt: skip
    page.text(50, 610, "Office cleaning, December 2023 (contract NPM-2023-11)")
    page.right(545, 610, "2,000.00")
    page.rule(590)
    y = 570.0
    for label, value, bold in (
        ("Net amount", "2,000.00", False),
        ("VAT at 20%", "400.00", False),
        ("TOTAL (GBP)", "2,500.00", True),
    ):
        page.text(350, y, label, bold=bold)
        page.right(545, y, value, bold=bold)
        y -= 18
    page.paragraph(50, 420, ["Please pay by bank transfer within 30 days.",
                             "IBAN: GB82 WEST 1234 5698 7654 32", "BIC: WESTGB2L"], 9)  # fmt: skip
    return page.finish()


_CONTRACT_CLAUSES = [
    ("1. Parties", [
        "This Services Agreement (the \"Agreement\") is made between Nordlicht Software GmbH,",
        "Hafenstraße 12, 20457 Hamburg, Germany (the \"Provider\"), and Acme Office Supplies",
        "Ltd, 14 Foundry Lane, Leeds LS1 4AB, United Kingdom (the \"Client\").",
    ]),
    ("2. Services", [
        "The Provider shall operate, maintain and support the Client's order management",
        "platform as described in Schedule 1, including monitoring, security updates and",
        "a service desk available on business days from 08:00 to 18:00 UK time.",
    ]),
    ("3. Term", [
        "This Agreement takes effect on 1 April 2024 (the \"Effective Date\") and continues for",
        "a term of 24 months, ending on 31 March 2026, unless terminated earlier under",
        "clause 7.",
    ]),
    ("4. Fees", [
        "The Client shall pay the Provider a fixed fee of EUR 2,000.00 per month, a total",
        "contract value of EUR 48,000.00 over the term, excluding VAT. Invoices are issued",
        "monthly in arrears and are payable within 30 days.",
    ]),
    ("5. Confidentiality", [
        "Each party shall keep the other party's confidential information secret and use it",
        "only to perform this Agreement.",
    ]),
    ("6. Liability", [
        "Neither party's total liability under this Agreement shall exceed the fees paid in",
        "the twelve months before the claim.",
    ]),
    ("7. Termination", [
        "Either party may terminate this Agreement for material breach that remains",
        "unremedied 30 days after written notice.",
    ]),
    ("8. Governing Law", [
        "This Agreement is governed by the laws of England and Wales, and the courts of",
        "England and Wales have exclusive jurisdiction.",
    ]),
]  # fmt: skip


def _contract() -> bytes:
    page = SamplePage("Services Agreement", "Nordlicht Software GmbH")
    page.text(50, 790, "SERVICES AGREEMENT", 18, bold=True)
    page.text(50, 770, "Agreement No. SA-2024-017", 10)
    y = 735.0
    for index, (heading, lines) in enumerate(_CONTRACT_CLAUSES):
        if index == 5:
            page.next_page()
            y = 790.0
        page.text(50, y, heading, 11, bold=True)
        y = page.paragraph(50, y - 16, lines) - 12
    y -= 20
    page.text(50, y, "Signed for and on behalf of the parties:", bold=True)
    y -= 50
    page.rule(y + 14, 50, 250)
    page.rule(y + 14, 320, 520)
    page.paragraph(50, y, ["Dr. Katrin Vogel", "Managing Director",
                           "Nordlicht Software GmbH", "Hamburg, 20 March 2024"])  # fmt: skip
    page.paragraph(320, y, ["James Whitfield", "Director",
                            "Acme Office Supplies Ltd", "Leeds, 22 March 2024"])  # fmt: skip
    return page.finish()


_REPORT_SECTIONS = [
    ("1. Executive Summary", [
        "Shipment volumes rose 8.4% on the previous quarter to 41,250 consignments, while",
        "on-time delivery held at 96.1%. Two warehouse incidents caused minor delays; neither",
        "led to injuries. Costs per consignment fell 3.2% after the Rotterdam route change.",
    ]),
    ("2. Shipment Volumes", [
        "January: 12,870 consignments. February: 13,410. March: 14,970.",
        "Cross-border shipments made up 38% of the total, up from 35% in Q4 2023.",
    ]),
    ("3. Incidents", [
        "On 6 February a conveyor fault in the Leeds hub stopped sorting for four hours.",
        "On 19 March a data-feed outage delayed tracking updates for 212 consignments.",
    ]),
    ("4. Outlook", [
        "We expect volumes of about 44,000 consignments in Q2 2024. The new Hamburg",
        "cross-dock opens in May and should shorten German deliveries by half a day.",
    ]),
]  # fmt: skip


def _report() -> bytes:
    page = SamplePage("Quarterly Operations Report Q1 2024", "Priya Raman")
    page.text(50, 760, "Harbour Logistics Group", 12)
    page.text(50, 720, "Quarterly Operations Report Q1 2024", 22, bold=True)
    page.paragraph(50, 680, ["Prepared by: Priya Raman, Head of Operations",
                             "Date: 12 April 2024", "Classification: Internal"])  # fmt: skip
    y = 600.0
    for index, (heading, lines) in enumerate(_REPORT_SECTIONS):
        if index == 2:
            page.next_page()
            y = 790.0
        page.text(50, y, heading, 13, bold=True)
        y = page.paragraph(50, y - 18, lines) - 16
    return page.finish()


def _png() -> bytes:
    """A 2x2 grey PNG image."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80\x80\x00\x80\x80", 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bastion.pipeline.samples DIR", file=sys.stderr)
        return 2
    for path in write_samples(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
