"""The generated-invoice corpus: reproducible, broad (families x languages), arithmetically
sound, and printing its truth where a reader of the PDF text can find it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from bastion.business_ids import check_vat_id, iban_valid
from bastion.pipeline.generated import (
    CREDIT_NOTE_SIGN,
    FAMILIES,
    HELD_OUT_FAMILIES,
    LANGUAGES,
    GeneratedInvoice,
    corpus,
    generate,
    render,
)
from bastion.pipeline.generated.__main__ import main
from bastion.pipeline.generated.formats import Formats

GRID = [(family, language) for family, spec in FAMILIES.items() for language in spec.languages]
_SYMBOLS = {"EUR": "€", "GBP": "£"}


def _pages(data: bytes) -> list[str]:
    pdf = pdfium.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


@cache
def _doc(family: str, language: str, seed: int = 0) -> GeneratedInvoice:
    return render(family, language, seed)


@cache
def _text(family: str, language: str, seed: int = 0) -> str:
    return "\n".join(_pages(_doc(family, language, seed).pdf))


def test_same_arguments_same_bytes_other_seed_other_document() -> None:
    first, truth = generate("classic", "de", 3)
    again, truth_again = generate("classic", "de", 3)
    assert first == again and truth == truth_again
    other, other_truth = generate("classic", "de", 4)
    assert other != first and other_truth != truth


def test_at_least_twenty_families_in_at_least_four_languages() -> None:
    assert len(FAMILIES) >= 20
    assert len(LANGUAGES) >= 4
    assert {"en", "de", "fr"} <= set(LANGUAGES)
    for spec in FAMILIES.values():
        assert len(spec.languages) >= 4, spec.name
        assert spec.description


def test_about_a_quarter_of_the_families_is_held_out() -> None:
    assert HELD_OUT_FAMILIES.issubset(FAMILIES) and set(FAMILIES) != HELD_OUT_FAMILIES
    assert 0.15 <= len(HELD_OUT_FAMILIES) / len(FAMILIES) <= 0.35


def test_unknown_family_or_language_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="classic"):
        generate("no_such_family", "de", 0)
    with pytest.raises(ValueError, match="not drawn in"):
        generate("classic", "xx", 0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_renders_in_each_of_its_languages(family: str) -> None:
    for language in FAMILIES[family].languages:
        doc = _doc(family, language)
        assert doc.pdf.startswith(b"%PDF-")
        pages = _pages(doc.pdf)
        assert len(pages) >= (2 if family == "multi_page" else 1)
        assert all(page.strip() for page in pages), (family, language)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_truth_adds_up_and_identifiers_are_valid() -> None:
    for doc in corpus(range(2)):
        inv, truth = doc.invoice, doc.truth
        sign = CREDIT_NOTE_SIGN if inv.credit_note else 1
        assert abs(truth["subtotal"] + truth["tax"] - truth["total"]) < 0.005, doc.name
        assert truth["total"] == float(sign * inv.total)
        adjustments = sum(
            (a.amount if a.kind == "charge" else -a.amount for a in inv.adjustments), Decimal(0)
        )
        assert sum(line.amount for line in inv.lines) == inv.lines_total
        assert inv.lines_total + adjustments == inv.subtotal
        for line in inv.lines:
            assert _cents(line.quantity * line.unit_price) == line.amount
        for row in inv.tax_rows:
            assert _cents(row.base * row.rate / 100) == row.tax
        assert sum(row.tax for row in inv.tax_rows) == inv.tax
        assert inv.amount_due == inv.total - inv.prepaid
        assert check_vat_id(truth["vat_id"]).ok and iban_valid(truth["iban"]), doc.name
        assert truth["issuer"].split()[0] != truth["customer"].split()[0], doc.name
        if inv.credit_note:
            assert truth["total"] < 0 and truth["due_date"] is None
        else:
            assert truth["total"] > 0
            issued = dt.date.fromisoformat(truth["issue_date"])
            assert dt.date.fromisoformat(truth["due_date"]) == issued + dt.timedelta(
                days=inv.terms_days
            )


def test_family_options_reach_the_content() -> None:
    docs = list(corpus(range(2)))
    by_family: dict[str, list[GeneratedInvoice]] = {}
    for doc in docs:
        by_family.setdefault(doc.family, []).append(doc)
    assert all(d.invoice.credit_note for d in by_family["trailing_minus"])
    assert all(len(d.invoice.tax_rows) >= 2 for d in by_family["multi_rate"])
    assert all(d.invoice.adjustments for d in by_family["charges_allowances"])
    assert all(d.invoice.prepaid > 0 for d in by_family["prepaid_due"])
    assert not any(d.invoice.credit_note or d.invoice.prepaid for d in by_family["classic"])


def test_formats_print_each_languages_conventions() -> None:
    value, day, first = Decimal("-1234.5"), dt.date(2024, 2, 3), dt.date(2024, 2, 1)
    de, fr, en = (Formats(LANGUAGES[c], "EUR") for c in ("de", "fr", "en"))
    assert de.amount(value) == "-1.234,50 €"
    assert fr.amount(-value) == "1 234,50 €"
    assert Formats(LANGUAGES["en"], "GBP").amount(-value) == "£1,234.50"
    assert Formats(LANGUAGES["nl"], "EUR", money="code").amount(-value) == "EUR 1.234,50"
    assert Formats(LANGUAGES["it"], "EUR", money="plain", minus="trailing").amount(value) == (
        "1.234,50-"
    )
    assert Formats(LANGUAGES["de"], "EUR", minus="apart").amount(value) == "1.234,50 €"
    assert de.date(day) == "03.02.2024" and en.date(day) == "03/02/2024"
    assert Formats(LANGUAGES["nl"], "EUR").date(day) == "03-02-2024"
    assert Formats(LANGUAGES["fr"], "EUR", dates="long").date(first) == "1er février 2024"
    assert Formats(LANGUAGES["de"], "EUR", dates="long").date(day) == "3. Februar 2024"
    assert Formats(LANGUAGES["es"], "EUR", dates="long").date(day) == "3 de febrero de 2024"
    assert Formats(LANGUAGES["it"], "EUR", dates="iso").date(day) == "2024-02-03"
    assert de.rate(Decimal("5.5")) == "5,5 %" and en.rate(Decimal("20")) == "20%"
    assert en.iban("GB29NWBK60161331926819") == "GB29 NWBK 6016 1331 9268 19"


def _printed_amount(doc: GeneratedInvoice, value: float) -> str:
    """A truth amount as the document prints it: a credit note's negative, whatever sign
    the truth convention gives it."""
    amount = Decimal(str(value))
    return doc.formats.amount(-abs(amount) if doc.invoice.credit_note else amount)


@pytest.mark.parametrize(("family", "language"), GRID)
def test_the_text_layer_holds_the_truth_as_the_family_prints_it(family: str, language: str) -> None:
    doc, text = _doc(family, language), _text(family, language)
    inv, truth, fmt = doc.invoice, doc.truth, doc.formats
    compact = "".join(text.split())
    assert truth["invoice_number"] in text
    assert fmt.date(inv.issue_date) in text
    assert truth["issuer"] in text and truth["customer"] in text
    assert truth["currency"] in text or _SYMBOLS[truth["currency"]] in text
    for name in ("subtotal", "tax", "total"):
        assert _printed_amount(doc, truth[name]) in text, (name, truth[name])
    assert truth["vat_id"][2:] in compact and truth["iban"] in compact
    if inv.due_date is None:
        return
    terms = [t.format(days=inv.terms_days) for t in inv.language.labels["terms"]]
    if family == "payment_terms":
        assert fmt.date(inv.due_date) not in text
        assert any(t in text for t in terms)
    else:
        assert fmt.date(inv.due_date) in text


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_family_features_are_in_the_text(language: str) -> None:
    doc = _doc("title_line", language)
    title_line = next(line for line in _text("title_line", language).splitlines()
                      if doc.invoice.number in line)  # fmt: skip
    assert doc.formats.date(doc.invoice.issue_date) in title_line
    assert _text("title_line", language).count(doc.invoice.number) == 1
    spaced = _doc("letter_spaced", language)
    title = spaced.invoice.language.labels["invoice"]
    assert any(" ".join(t.upper()) in _text("letter_spaced", language) for t in title)
    credit = _doc("trailing_minus", language)
    assert credit.formats.number(credit.invoice.total) + "-" in _text("trailing_minus", language)
    footer = _doc("footer_seller", language)
    pdf = pdfium.PdfDocument(footer.pdf)
    try:
        page = pdf[0].get_textpage()
        top = page.get_text_bounded(bottom=200)
    finally:
        pdf.close()
    assert footer.invoice.seller.name not in top and footer.invoice.buyer.name in top


def test_the_command_writes_pdf_and_json_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(tmp_path), "--seeds", "2", "--family", "classic", "--family", "bank_box"]
    assert main([*args, "--language", "de", "--language", "fr"]) == 0
    pdfs = sorted(p.name for p in tmp_path.glob("*.pdf"))
    assert len(pdfs) == 8 and "bank_box_fr_1.pdf" in pdfs
    record = json.loads((tmp_path / "bank_box_fr_1.json").read_text(encoding="utf-8"))
    pdf, truth = generate("bank_box", "fr", 1)
    assert (tmp_path / "bank_box_fr_1.pdf").read_bytes() == pdf
    assert record == {**truth, "family": "bank_box", "language": "fr", "seed": 1,
                      "held_out": True}  # fmt: skip
    out = capsys.readouterr().out
    assert "8/8 written" in out and "8 invoices in" in out
