"""Identifier checks: IBAN, BIC, VAT ids per country, ISO 4217 currency codes."""

from __future__ import annotations

import pytest

from bastion.pipeline.validator.checks import (
    CURRENCY_MINOR_UNITS,
    IBAN_LENGTHS,
    VAT_COUNTRIES,
    WITHDRAWN_CURRENCIES,
    check_bic,
    check_iban,
    check_vat_id,
    currency_minor_units,
    is_currency_code,
)

# --------------------------------------------------------------------------------------------
# IBAN


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NO9386011117947",
        "BE68539007547034",
        "CH9300762011623852957",
        "NL91ABNA0417164300",
        "de89 3704 0044 0532 0130 00",
        "IBAN DE89-3704-0044-0532-0130-00",
        "DE02370400440532010007",
    ],
)
def test_valid_ibans(iban: str) -> None:
    result = check_iban(iban)
    assert result.ok, result.problem
    assert result.country == result.value[:2]


@pytest.mark.parametrize(
    ("iban", "problem"),
    [
        ("DE89370400440532013001", "check digits (mod 97) do not match"),  # last digit changed
        ("DE89370400440532031000", "check digits (mod 97) do not match"),  # digits transposed
        ("GB82WEST12345698765433", "check digits (mod 97) do not match"),
        ("FR1420041010050500013M02607", "check digits (mod 97) do not match"),
        ("DE8937040044053201300", "DE IBANs have 22 characters, this one has 21"),
        ("GB82WEST123456987654321", "GB IBANs have 22 characters, this one has 23"),
        ("XX89370400440532013000", "XX is not an IBAN country code"),
        ("DE89_370400440532013000", "characters other than letters and digits"),
        ("8937040044053201300DE0", "does not start with a country code and two check digits"),
        ("", "empty"),
        # Check digits 99 satisfy mod 97 where 02 is right, but are never issued.
        ("DE99370400440532010007", "check digits (mod 97) do not match"),
    ],
)
def test_invalid_ibans(iban: str, problem: str) -> None:
    result = check_iban(iban)
    assert not result.ok
    assert problem in result.problem


def test_iban_lengths_cover_sepa() -> None:
    sepa = "AT BE BG CH CY CZ DE DK EE ES FI FR GB GI GR HR HU IE IS IT LI LT LU LV MC MT NL NO"
    sepa += " PL PT RO SE SI SK SM VA"
    for country in sepa.split():
        assert 15 <= IBAN_LENGTHS[country] <= 34


# --------------------------------------------------------------------------------------------
# BIC


@pytest.mark.parametrize("bic", ["DEUTDEFF", "DEUTDEFF500", "NEDSZAJJXXX", "cobadeffxxx"])
def test_valid_bics(bic: str) -> None:
    assert check_bic(bic).ok


@pytest.mark.parametrize(
    ("bic", "problem"),
    [
        ("DEUTDEF", "8 or 11 characters"),
        ("DEUTDEFF50", "8 or 11 characters"),
        ("DEUT12FF", "country code"),
        ("DEUTDEF!", "letters and digits"),
    ],
)
def test_invalid_bics(bic: str, problem: str) -> None:
    result = check_bic(bic)
    assert not result.ok
    assert problem in result.problem


# --------------------------------------------------------------------------------------------
# VAT ids

EU_MEMBER_STATES = {
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}  # fmt: skip


def test_vat_countries() -> None:
    assert EU_MEMBER_STATES | {"GB", "XI", "CH", "NO"} == VAT_COUNTRIES


@pytest.mark.parametrize(
    "vat_id",
    [
        "ATU13585627",
        "BE0403019261",
        "BG175074752",
        "CY10259033P",
        "CZ25123891",
        "DE136695976",
        "DE 136 695 976",
        "DK13585628",
        "EE100931558",
        "EL094259216",
        "ESA13585625",
        "ESX2482300W",
        "ES54362315K",
        "FI20774740",
        "FR40303265045",
        "FR 61 954 506 077",
        "FRK7399859412",  # older alphanumeric key: format only
        "HR33392005961",
        "HU12892312",
        "IE6433435F",
        "IE6433435OA",
        "IT00743110157",
        "LT100001919017",
        "LU15027442",
        "LV40003521600",
        "MT11679112",
        "NL004495445B01",
        "NL000099998B57",  # sole-proprietor btw-id, mod 97
        "PL8567346215",
        "PT501964843",
        "RO18547290",
        "SE556188840401",
        "SI50223054",
        "SK2022749619",
        "GB980780684",
        "GB980780684001",
        "GBGD001",
        "XI980780684",
        "CHE-107.787.577 IVA",
        "CHE-107.787.577",
        "NO 974 760 673 MVA",
        "no974760673",
    ],
)
def test_valid_vat_ids(vat_id: str) -> None:
    result = check_vat_id(vat_id)
    assert result.ok, result.problem
    assert result.country is not None


@pytest.mark.parametrize(
    ("vat_id", "problem"),
    [
        # check digits
        ("ATU13585626", "the AT check digits do not match"),
        ("BE0403019262", "the BE check digits do not match"),
        ("DE136695978", "the DE check digits do not match"),
        ("DK13585627", "the DK check digits do not match"),
        ("FI20774741", "the FI check digits do not match"),
        ("FR41303265045", "the FR check digits do not match"),
        ("IT00743110158", "the IT check digits do not match"),
        ("LU15027443", "the LU check digits do not match"),
        ("NL004495446B01", "the NL check digits do not match"),
        ("PL8567346216", "the PL check digits do not match"),
        ("PT501964842", "the PT check digits do not match"),
        ("SE556188840501", "the SE check digits do not match"),
        ("NO974760674MVA", "the NO check digits do not match"),
        ("CHE-107.787.578 MWST", "the CH check digits do not match"),
        # format
        ("AT13585627", "AT VAT ids are AT followed by U followed by 8 digits"),
        ("DE12345678", "9 digits, not starting with 0"),
        ("DE036695976", "9 digits, not starting with 0"),
        ("BE2403019261", "10 digits starting with 0 or 1"),
        ("NL004495445", "9 digits, B and 2 digits"),
        ("SE556188840400", "12 digits ending in 01"),
        ("ES123456789", "9 characters"),
        ("FRIO303265045", "a 2-character key and 9 digits"),
        ("CY102590331", "8 digits and a letter"),
        ("GB98078068", "9 or 12 digits"),
        ("CHE-107.787.577 VAT", "CHE, 9 digits"),
        ("EL09425921", "9 digits"),
    ],
)
def test_invalid_vat_ids(vat_id: str, problem: str) -> None:
    result = check_vat_id(vat_id)
    assert not result.ok
    assert problem in result.problem
    assert result.country is not None


def test_greece_uses_el() -> None:
    result = check_vat_id("GR094259216")
    assert not result.ok
    assert "EL, not GR" in result.problem


@pytest.mark.parametrize(
    ("vat_id", "problem"),
    [("US123456789", "US is not a supported VAT country prefix"), ("123456789", "no country")],
)
def test_unknown_vat_prefix(vat_id: str, problem: str) -> None:
    result = check_vat_id(vat_id)
    assert not result.ok
    assert result.country is None
    assert problem in result.problem


# --------------------------------------------------------------------------------------------
# Currencies


def test_currency_codes() -> None:
    for code in ("EUR", "USD", "GBP", "CHF", "JPY", "SEK", "XCG", "ZWG"):
        assert is_currency_code(code)
    for code in ("EUX", "eur", "EURO", "", "HRK"):
        assert not is_currency_code(code)
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in CURRENCY_MINOR_UNITS)
    assert not WITHDRAWN_CURRENCIES & set(CURRENCY_MINOR_UNITS)
    assert len(CURRENCY_MINOR_UNITS) > 170


def test_minor_units() -> None:
    assert currency_minor_units("EUR") == 2
    assert currency_minor_units("JPY") == 0
    assert currency_minor_units(" bhd ") == 3
    assert currency_minor_units("CLF") == 4
    assert currency_minor_units("XAU") == 2  # none defined: the default
    assert currency_minor_units(None) == 2
    assert currency_minor_units("???", default=3) == 3
