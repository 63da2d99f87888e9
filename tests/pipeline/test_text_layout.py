"""The text layer's layout on PDFs drawn here: rotated margin text kept out of the rows (pages
drawn run by run and glyph by glyph), and minus signs set off the amount's baseline joined to
their number."""

from __future__ import annotations

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.text import open_document, pdfium_lock, read_pages
from tests.pipeline.test_extract_invoice import Sheet

_MARGIN = "Gedruckt am 01.01.2023 Ablage 4711 Archivkopie 999,99"
_TOTALS = [
    ("Nettobetrag", "100,00"),
    ("Umsatzsteuer 19 %", "19,00"),
    ("Gesamtbetrag", "119,00"),
    ("Zahlbetrag", "119,00"),
]


def _glyphs(sheet: Sheet, x: float, y: float, text: str, size: float = 9) -> None:
    """Draw `text` one glyph at a time, as some producers do."""
    sheet.canvas.setFont("Helvetica", size)
    for ch in text:
        sheet.canvas.drawString(x, sheet.height - y, ch)
        x += stringWidth(ch, "Helvetica", size)


def _invoice_with_margin_text(glyph_by_glyph: bool) -> bytes:
    s = Sheet()
    draw = (lambda x, y, t: _glyphs(s, x, y, t)) if glyph_by_glyph else s.text
    draw(50, 60, "Rechnung Nr. 2024-17 vom 03.02.2024")
    for k, (label, value) in enumerate(_TOTALS):
        draw(300, 400 + 15 * k, label)
        draw(500, 400 + 15 * k, value)
    if glyph_by_glyph:
        for k in range(12):  # enough glyph runs for the page to be read glyph by glyph
            _glyphs(s, 50, 120 + 12 * k, f"Position {k + 1} Beratungsleistung")
    # A filing line up the left margin, beside the totals, turned by 90 degrees.
    c = s.canvas
    c.saveState()
    c.setFont("Helvetica", 7)
    c.translate(20, s.height - 480)
    c.rotate(90)
    if glyph_by_glyph:
        x = 0.0
        for ch in _MARGIN:
            c.drawString(x, 0, ch)
            x += stringWidth(ch, "Helvetica", 7)
    else:
        c.drawString(0, 0, _MARGIN)
    c.restoreState()
    return s.pdf()


@pytest.mark.parametrize("glyph_by_glyph", [False, True], ids=["runs", "glyphs"])
def test_rotated_margin_text_stays_out_of_the_rows(glyph_by_glyph: bool) -> None:
    data = _invoice_with_margin_text(glyph_by_glyph)
    with pdfium_lock, open_document(data, 5) as pdf:
        page = read_pages(pdf)[0]
    flat = page.text.replace(" ", "")
    assert "Archivkopie" not in flat and "Ablage" not in flat and "4711" not in flat
    if glyph_by_glyph:
        return  # the glyph path's own spacing is another matter: only the margin is checked
    rows = [row.text for row in page.rows]
    for label, value in _TOTALS:
        assert f"{label}\t{value}" in rows
    result = extract_document(data)
    assert (result.value("subtotal"), result.value("tax"), result.value("total")) == (
        100.0,
        19.0,
        119.0,
    )


@pytest.mark.parametrize("offset", [3.5, -6.0], ids=["lowered", "raised"])
def test_a_minus_sign_off_the_baseline_is_joined_to_its_amount(offset: float) -> None:
    s = Sheet()
    s.text(50, 60, "Gutschrift Nr. GS-7 vom 03.02.2024", 14, bold=True)
    for k, (label, value) in enumerate(_TOTALS[:3]):
        y = 400 + 15 * k
        s.text(300, y, label)
        s.text(540, y, value, align="right")
        width = stringWidth(value, "Helvetica", 9)
        s.text(540 - width - 6, y + offset, "-", 7)
    result = extract_document(s.pdf())
    assert (result.value("subtotal"), result.value("tax"), result.value("total")) == (
        -100.0,
        -19.0,
        -119.0,
    )
