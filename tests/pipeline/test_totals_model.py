"""The totals model: the document-level amounts chosen by the arithmetic of an invoice (net +
VAT = gross, gross - prepaid = due, VAT rows summing to the VAT total, lines less allowances
plus charges = net), on small pages built here."""

from __future__ import annotations

import pytest

from bastion.pipeline.extract.invoice import extract_invoice
from bastion.pipeline.extract.invoice.amounts import _Amount
from bastion.pipeline.extract.invoice.totals import choose_totals
from tests.pipeline.test_extract_invoice import _page


def _amounts(fields: dict[str, object]) -> tuple[object, object, object]:
    return tuple(fields[k].value if k in fields else None for k in ("subtotal", "tax", "total"))  # type: ignore[attr-defined, return-value]


def test_a_totals_table_read_by_columns_with_prepaid_and_amount_due() -> None:
    """Labels in one row, values a few rows below (a paragraph beside them in between); then a
    prepayment and the amount due: the total is the gross total, not what is left to pay."""
    page = _page([
        [("Facture N°", 300), ("F-2031", 450)],
        [("TOTAL HT", 330), ("TOTAL TVA", 400), ("TOTAL TTC", 470)],
        [("Tout retard de paiement engendre", 40)],
        [("une pénalité exigible.", 40)],
        [("Conditions générales", 40), ("250,00", 330), ("50,00", 400), ("300,00", 470)],
        [("Acompte :", 400), ("100,00", 470)],
        [("NET A PAYER", 330), ("200,00 EUR", 450)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (250.0, 50.0, 300.0)


def test_the_vat_breakdown_rows_sum_to_the_vat_total() -> None:
    """One row per rate under "Base | Rate | VAT": the VAT total is their sum, and a labelled
    row after the table is not one of them."""
    page = _page([
        [("Invoice No.", 50), ("A-17", 150)],
        [("Rate", 250), ("Taxable base", 320), ("VAT amount", 450)],
        [("20.00%", 250), ("100.00", 320), ("20.00", 450)],
        [("10.00%", 250), ("50.00", 320), ("5.00", 450)],
        [("Total incl. VAT", 320), ("175.00", 450)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (150.0, 25.0, 175.0)


def test_a_breakdown_whose_last_row_sums_the_rates_is_read_once() -> None:
    page = _page([
        [("Factuur", 50), ("F-9", 150)],
        [("BTW %", 250), ("Grondslag", 320), ("BTW bedrag", 400), ("Totaal", 480)],
        [("21 %", 250), ("41,31", 320), ("8,68", 400), ("49,99", 480)],
        [("41,31", 320), ("8,68", 400), ("49,99", 480)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (41.31, 8.68, 49.99)


def test_german_totals_with_a_received_prepayment() -> None:
    page = _page([
        [("Rechnung Nr. 2025-04", 50)],
        [("Positionssumme", 230), ("20.000,00", 480)],
        [("Rechnungssumme ohne USt.", 230), ("20.000,00", 480)],
        [("Steuerbetrag in EUR", 230), ("3.800,00", 480)],
        [("Bruttosumme", 230), ("23.800,00", 480)],
        [("Erhaltene Anzahlungen", 230), ("11.900,00", 480)],
        [("Zahlbetrag", 230), ("11.900,00", 480)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (20000.0, 3800.0, 23800.0)


def test_allowances_and_charges_reconcile_the_lines_with_the_net_total() -> None:
    found = {
        "net": [_Amount(100.0, 0.7, 1, (0, 9)), _Amount(95.0, 0.7, 1, (0, 10))],
        "tax": [_Amount(10.0, 0.9, 1, (0, 11))],
        "allowance": [_Amount(-5.0, 0.8, 1, (0, 5))],
        "charge": [_Amount(10.0, 0.8, 1, (0, 6))],
    }
    # The lines add up to 95.00; less 5.00 off, plus 10.00 of charges: the net total is 100.00.
    chosen = choose_totals(found, line_sum=95.0)
    assert chosen["subtotal"][0].value == 100.0
    assert chosen["total"][0].value == 110.0  # derived: net + VAT, nothing printed


def test_the_gross_total_is_derived_from_the_amount_due_and_the_prepayment() -> None:
    found = {
        "net": [_Amount(80.0, 0.95, 1, (0, 1))],
        "tax": [_Amount(16.0, 0.9, 1, (0, 2))],
        "prepaid": [_Amount(46.0, 0.9, 1, (0, 3))],
        "due": [_Amount(50.0, 1.0, 1, (0, 4))],
    }
    chosen = choose_totals(found, line_sum=None)
    assert chosen["total"][0].value == 96.0
    assert chosen["due"][0].value == 50.0


def test_a_credit_note_keeps_the_signs_as_printed() -> None:
    page = _page([
        [("Gutschrift Nr. GS-7", 50)],
        [("Nettobetrag", 300), ("-100,00", 480)],
        [("Umsatzsteuer 19 %", 300), ("-19,00", 480)],
        [("Gesamtbetrag", 300), ("-119,00", 480)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (-100.0, -19.0, -119.0)


@pytest.mark.parametrize(
    ("net", "vat", "gross", "decimal"),
    [
        ("Montant total HT", "Montant total de la TVA", "Total toutes taxes comprises", ","),
        ("Importe total sin IVA", "Importe total del IVA", "Importe total", ","),
        ("Totale imponibile", "Totale imposta complessiva", "Totale documento", ","),
        ("Totaal excl. btw", "Totaal btw", "Factuurbedrag", ","),
        ("Net total", "Total VAT", "Invoice total", "."),
    ],
)
def test_the_vat_total_is_told_from_the_totals_whatever_total_word_it_holds(
    net: str, vat: str, gross: str, decimal: str
) -> None:
    def money(value: str) -> str:
        return value if decimal == "." else value.replace(".", ",")

    page = _page([
        [("Invoice No. X-1", 50)],
        [(vat, 300), (money("1775.70"), 480)],
        [(net, 300), (money("8878.50"), 480)],
        [(gross, 300), (money("10654.20"), 480)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (8878.5, 1775.7, 10654.2)


def test_prepaid_and_due_words_in_other_languages() -> None:
    page = _page([
        [("Fattura n. FT-9", 50)],
        [("Imponibile", 300), ("1.000,00", 480)],
        [("IVA 22%", 300), ("220,00", 480)],
        [("Totale documento", 300), ("1.220,00", 480)],
        [("Acconto versato", 300), ("500,00", 480)],
        [("Totale da pagare", 300), ("720,00", 480)],
    ])  # fmt: skip
    assert _amounts(extract_invoice([page])) == (1000.0, 220.0, 1220.0)
