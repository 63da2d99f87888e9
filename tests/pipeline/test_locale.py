"""Locale-aware parsing: amounts written either way, dates in many formats and languages,
currencies from codes and symbols, the document language."""

from __future__ import annotations

import pytest

from bastion.pipeline.extract.locale import (
    detect_language,
    find_amounts,
    find_currencies,
    find_dates,
    guess_dayfirst,
    guess_decimal_separator,
    parse_amount,
    parse_date,
    parse_month_year,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1 234,56", 1234.56),
        ("1\u202f234,56", 1234.56),
        ("1\u00a0234.56", 1234.56),
        ("1234.56", 1234.56),
        ("1234,56", 1234.56),
        ("-12,50", -12.5),
        ("12,50-", -12.5),
        ("(12.50)", -12.5),
        ("\u221212.50", -12.5),
        ("€ 1.234,56", 1234.56),
        ("1.234,56 €", 1234.56),
        ("$1,234.56", 1234.56),
        ("USD 1,234.56", 1234.56),
        ("1.234,56 EUR", 1234.56),
        ("CHF 1'234.50", 1234.5),
        ("CHF 1\u2019234.50", 1234.5),
        ("12,50 zł", 12.5),
        ("£0.99", 0.99),
        ("1,23,456.00", 123456.0),
        ("1.234.567,89", 1234567.89),
        ("1,234,567.89", 1234567.89),
        ("42", 42.0),
    ],
)
def test_parse_amount(text: str, expected: float) -> None:
    assert parse_amount(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "EUR", "1.234,56 and 7,00"])
def test_parse_amount_refuses_non_amounts(text: str) -> None:
    assert parse_amount(text) is None


def test_the_document_decimal_separator_settles_three_digit_groups() -> None:
    assert parse_amount("1,234") == 1234.0
    assert parse_amount("1,234", decimal=",") == pytest.approx(1.234)
    assert parse_amount("1.234") == 1234.0
    assert parse_amount("1.234", decimal=".") == pytest.approx(1.234)
    assert parse_amount("1.234,50", decimal=",") == pytest.approx(1234.5)


def test_find_amounts_skips_percentages_dates_and_identifiers() -> None:
    text = "VAT 19% on 1.000,00 EUR: 190,00 - invoice 2025-001 of 03.03.2025, ref AB12"
    assert [a.value for a in find_amounts(text)] == [1000.0, 190.0]
    amounts = find_amounts("Total\t1,534.50")
    assert amounts[0].decimals == 2 and amounts[0].raw == "1,534.50"


def test_guess_decimal_separator() -> None:
    assert guess_decimal_separator("Netto 1.000,00\nMwSt 190,00\nGesamt 1.190,00") == ","
    assert guess_decimal_separator("Subtotal 1,000.00\nTax 80.00") == "."
    assert guess_decimal_separator("no numbers here") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("03.03.2025", "2025-03-03"),
        ("3.3.25", "2025-03-03"),
        ("2025-03-04", "2025-03-04"),
        ("2025/03/04", "2025-03-04"),
        ("13/04/2025", "2025-04-13"),
        ("04/13/2025", "2025-04-13"),
        ("3 March 2025", "2025-03-03"),
        ("March 3, 2025", "2025-03-03"),
        ("Mar 3 2025", "2025-03-03"),
        ("3rd of March 2025", "2025-03-03"),
        ("03-Mar-25", "2025-03-03"),
        ("3. März 2025", "2025-03-03"),
        ("12. Januar 2024", "2024-01-12"),
        ("1. Dezember 2024", "2024-12-01"),
        ("3 mars 2025", "2025-03-03"),
        ("1er janvier 2025", "2025-01-01"),
        ("15 février 2025", "2025-02-15"),
        ("15 de marzo de 2025", "2025-03-15"),
        ("3 marzo 2025", "2025-03-03"),
        ("3 maart 2025", "2025-03-03"),
        ("3 marca 2025", "2025-03-03"),
        ("Invoice date: 2024-02-29", "2024-02-29"),
    ],
)
def test_parse_date(text: str, expected: str) -> None:
    assert parse_date(text) == expected


def test_ambiguous_numeric_dates_follow_the_hint() -> None:
    assert parse_date("03/04/2025") == "2025-04-03"  # day first by default
    assert parse_date("03/04/2025", dayfirst=True) == "2025-04-03"
    assert parse_date("03/04/2025", dayfirst=False) == "2025-03-04"
    assert parse_date("03.04.2025", dayfirst=False) == "2025-04-03"  # dots: always day first


@pytest.mark.parametrize("text", ["31.02.2025", "2025-13-01", "99/99/2025", "no date", "12.50"])
def test_parse_date_refuses_impossible_dates(text: str) -> None:
    assert parse_date(text) is None


def test_find_dates_in_order_without_overlaps() -> None:
    found = find_dates("Issued 2025-01-05, due 4 February 2025 (05.02.2025)")
    assert [d.iso for d in found] == ["2025-01-05", "2025-02-04", "2025-02-05"]


def test_parse_month_year() -> None:
    assert parse_month_year("Quarterly report, March 2025") == "2025-03-01"
    assert parse_month_year("nothing") is None


def test_guess_dayfirst() -> None:
    assert guess_dayfirst("Date 25/12/2024 and 01/02/2025", "en") is True  # 25 is a day
    assert guess_dayfirst("Date 12/25/2024 and 01/02/2025", "en") is False
    assert guess_dayfirst("Datum 01/02/2025", "de") is True
    assert guess_dayfirst("Date 01/02/2025", "en", "USD") is False
    assert guess_dayfirst("Date 01/02/2025", "en", "GBP") is True
    assert guess_dayfirst("Springfield, IL 62701\nDate 01/02/2025", "en") is False


def test_find_currencies_from_codes_and_symbols() -> None:
    text = "12,00 € | EUR 5 | $3 | 10 zł | CHF 7 | Rs. 100 | ₹ 50 | US$ 4 | £2 | 5 kr"
    codes = [code for code, _start, _end in find_currencies(text)]
    assert codes == ["EUR", "EUR", "USD", "PLN", "CHF", "INR", "INR", "USD", "GBP", "SEK"]
    assert find_currencies("EURO-PALLETS for Europe, by Eurostar") == []


def test_detect_language() -> None:
    assert detect_language("Rechnung Nr. 12 vom 03.03.2025, bitte zahlen Sie den Betrag") == "de"
    assert detect_language("Facture n° 12 : montant à payer, date d'échéance") == "fr"
    assert detect_language("Invoice number 12, please pay the total amount due") == "en"
    assert detect_language("Factura número 12, importe total del pago") == "es"
    assert detect_language("") == "en"
