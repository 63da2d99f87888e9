"""`bastion extract FILE [--text-only]`: JSON on stdout, one-line errors with a reason code."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdfium2 as pdfium
from reportlab.pdfgen import canvas

from tests.cli.runner import run, run_process

FACTUR_X = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice
    xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocument><ram:ID>XML-9</ram:ID></rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>
"""


def invoice(path: Path, attach: bool = False) -> Path:
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("Helvetica", 10)
    lines = [
        "Harbour Supplies Ltd",
        "INVOICE",
        "Invoice No: HS-42",
        "Invoice date: 12/02/2025",
        "Subtotal 100.00",
        "VAT 20% 20.00",
        "Total due GBP 120.00",
    ]
    for k, line in enumerate(lines):
        c.drawString(50, 780 - 16 * k, line)
    c.save()
    data = buf.getvalue()
    if attach:
        pdf = pdfium.PdfDocument(data)
        pdf.new_attachment("factur-x.xml").set_data(FACTUR_X)
        out = io.BytesIO()
        pdf.save(out)
        pdf.close()
        data = out.getvalue()
    path.write_bytes(data)
    return path


def test_extract_prints_the_public_json(tmp_path: Path) -> None:
    result = run("extract", str(invoice(tmp_path / "inv.pdf")))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["document_type"] == "invoice"
    assert 0 < payload["confidence"] <= 1
    fields = payload["fields"]
    # The shape of today: value, confidence, page; nothing more without --explain.
    assert set(fields["invoice_number"]) == {"value", "confidence", "page"}
    assert (fields["invoice_number"]["value"], fields["invoice_number"]["page"]) == ("HS-42", 1)
    assert 0 < fields["invoice_number"]["confidence"] <= 1
    assert fields["issue_date"]["value"] == "2025-02-12"
    assert fields["total"]["value"] == 120.0
    assert fields["currency"]["value"] == "GBP"
    assert result.stdout.startswith("{\n  ")  # indented


def test_text_only_ignores_embedded_xml(tmp_path: Path) -> None:
    path = invoice(tmp_path / "fx.pdf", attach=True)
    full = json.loads(run("extract", str(path)).stdout)
    text = json.loads(run("extract", str(path), "--text-only").stdout)
    assert full["fields"]["invoice_number"]["value"] == "XML-9"
    assert full["confidence"] == 1.0
    assert text["fields"]["invoice_number"]["value"] == "HS-42"


def test_errors_are_one_line_with_a_reason(tmp_path: Path) -> None:
    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_text("just some text")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    cases = {
        str(not_pdf): "error: not_pdf: ",
        str(empty): "error: empty: ",
        str(tmp_path / "missing.pdf"): "error: unreadable: ",
    }
    for path, prefix in cases.items():
        result = run("extract", path)
        assert result.exit_code != 0
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr


def test_explain_adds_each_fields_evidence(tmp_path: Path) -> None:
    path = invoice(tmp_path / "inv.pdf")
    plain = json.loads(run("extract", str(path)).stdout)
    explained = json.loads(run("extract", str(path), "--explain", "--json").stdout)
    # The same fields and values; each now with its evidence and the candidates it beat.
    assert explained["fields"].keys() == plain["fields"].keys()
    for name, f in explained["fields"].items():
        assert {k: f[k] for k in ("value", "confidence", "page")} == plain["fields"][name]
        assert isinstance(f["alternatives"], list)
        assert f["evidence"]["rule"]
    total = explained["fields"]["total"]["evidence"]
    assert total["page"] == 1 and total["label"].lower().startswith("total")
    x0, top, x1, bottom = total["bbox"]
    baseline = 841.89 - (780 - 16 * 6)  # drawn at y = 684 points from the bottom of A4
    assert abs(x0 - 50) < 1 and top < baseline <= bottom + 0.5 and x1 > x0
    number = explained["fields"]["invoice_number"]["evidence"]
    assert (number["label"], number["rule"]) == ("Invoice No", "label_inline")


def test_explain_prints_a_table(tmp_path: Path) -> None:
    path = invoice(tmp_path / "inv.pdf")
    shown = run_process("extract", str(path), "--explain")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("field" in line and "rule" in line and "bbox" in line for line in lines)
    row = next(line for line in lines if "invoice_number" in line)
    assert "HS-42" in row and "label_inline" in row and "Invoice No" in row
    assert any("total" in line and "120.0" in line for line in lines)
