"""Identifier checks the validation rules use: IBAN, BIC, VAT ids and ISO 4217 currency codes.

Every check takes the text as found on a document (spaces, dots and dashes allowed, any case) and
returns a `CheckResult` whose `problem` is a short human-readable reason when the value is invalid.

- IBAN: the country's length from the SWIFT IBAN registry and the ISO 7064 mod-97 checksum.
- BIC: the ISO 9362 shape (4 party characters, 2-letter country, 2 location characters,
  optional 3-character branch).
- VAT ids: the format of each EU member state (Greece uses the prefix EL, Northern Ireland XI) plus
  GB, CH and NO; check digits are verified for AT, BE, CH, DE, DK, FI, FR (numeric key), IT, LU,
  NL, NO, PL, PT and SE. Other countries get a format check only.
- Currencies: the codes of ISO 4217 list one (current currencies and funds) with their minor units.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CURRENCY_MINOR_UNITS",
    "IBAN_LENGTHS",
    "VAT_COUNTRIES",
    "WITHDRAWN_CURRENCIES",
    "CheckResult",
    "check_bic",
    "check_iban",
    "check_vat_id",
    "currency_minor_units",
    "is_currency_code",
]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one identifier check. `value` is the compact, upper-case form."""

    ok: bool
    value: str
    problem: str = ""
    country: str | None = None


_SEPARATORS = re.compile(r"[\s.\-/]+")


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


# --------------------------------------------------------------------------------------------
# IBAN

# Total IBAN length per country code, from the SWIFT IBAN registry.
IBAN_LENGTHS: Mapping[str, int] = MappingProxyType({
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
})  # fmt: skip

_IBAN_PREFIX = re.compile(r"^IBAN:?")


def _mod97(text: str) -> int:
    """ISO 7064 mod 97-10 over letters and digits (A=10 ... Z=35)."""
    return int("".join(str(int(ch, 36)) for ch in text)) % 97


def check_iban(value: str) -> CheckResult:
    """Check an IBAN: characters, country code, the country's length and the mod-97 checksum."""
    iban = _IBAN_PREFIX.sub("", _compact(value))
    if not iban:
        return CheckResult(False, iban, "it is empty")
    if not re.fullmatch(r"[A-Z0-9]+", iban):
        return CheckResult(False, iban, "it contains characters other than letters and digits")
    if len(iban) < 5 or not re.fullmatch(r"[A-Z]{2}[0-9]{2}", iban[:4]):
        return CheckResult(
            False, iban, "it does not start with a country code and two check digits"
        )
    country = iban[:2]
    expected = IBAN_LENGTHS.get(country)
    if expected is None:
        return CheckResult(False, iban, f"{country} is not an IBAN country code")
    if len(iban) != expected:
        return CheckResult(
            False,
            iban,
            f"{country} IBANs have {expected} characters, this one has {len(iban)}",
            country,
        )
    if iban[2:4] in ("00", "01", "99") or _mod97(iban[4:] + iban[:4]) != 1:
        return CheckResult(False, iban, "the check digits (mod 97) do not match", country)
    return CheckResult(True, iban, "", country)


# --------------------------------------------------------------------------------------------
# BIC

_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def check_bic(value: str) -> CheckResult:
    """Check the shape of a BIC (ISO 9362): 8 or 11 characters, a country code in 5-6."""
    bic = _compact(value)
    if len(bic) not in (8, 11):
        return CheckResult(False, bic, f"a BIC has 8 or 11 characters, this one has {len(bic)}")
    if not _BIC.fullmatch(bic):
        if not bic.isalnum() or not bic.isascii():
            return CheckResult(False, bic, "it contains characters other than letters and digits")
        return CheckResult(False, bic, "characters 5-6 must be a country code (two letters)")
    return CheckResult(True, bic, "", bic[4:6])


# --------------------------------------------------------------------------------------------
# VAT identification numbers


def _digits(text: str) -> list[int]:
    return [int(ch) for ch in text if ch.isdigit()]


def _weighted(text: str, weights: tuple[int, ...]) -> int:
    return sum(w * d for w, d in zip(weights, _digits(text), strict=False))


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(_digits(number))):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _at(rest: str) -> bool:
    # ATU + 8 digits; the 8th digit checks the first seven (digits 2, 4 and 6 doubled).
    d = _digits(rest)
    s = sum(d[i] if i % 2 == 0 else sum(divmod(2 * d[i], 10)) for i in range(7))
    return (10 - (s + 4) % 10) % 10 == d[7]


def _be(rest: str) -> bool:
    return 97 - int(rest[:8]) % 97 == int(rest[8:])


def _de(rest: str) -> bool:
    # ISO 7064 mod 11,10.
    product = 10
    for d in _digits(rest[:8]):
        s = (d + product) % 10 or 10
        product = (2 * s) % 11
    return (11 - product) % 10 == int(rest[8])


def _dk(rest: str) -> bool:
    return _weighted(rest, (2, 7, 6, 5, 4, 3, 2, 1)) % 11 == 0


def _fi(rest: str) -> bool:
    return _weighted(rest, (7, 9, 10, 5, 8, 4, 2, 1)) % 11 == 0


def _fr(rest: str) -> bool:
    # Numeric key = (12 + 3 * (SIREN mod 97)) mod 97. Older alphanumeric keys get a format check.
    key, siren = rest[:2], rest[2:]
    if not key.isdigit():
        return True
    return int(key) == (12 + 3 * (int(siren) % 97)) % 97


def _it(rest: str) -> bool:
    return _luhn_ok(rest)


def _lu(rest: str) -> bool:
    return int(rest[:6]) % 89 == int(rest[6:])


def _nl(rest: str) -> bool:
    # Either the "11-test" on the first nine digits (weights 9..2, the last digit counts -1) or,
    # for the btw-id issued to sole proprietors since 2020, mod 97 over "NL" + the whole id.
    eleven = _weighted(rest[:8], (9, 8, 7, 6, 5, 4, 3, 2)) - int(rest[8])
    return eleven % 11 == 0 or _mod97("NL" + rest) == 1


def _pl(rest: str) -> bool:
    check = _weighted(rest, (6, 5, 7, 2, 3, 4, 5, 6, 7)) % 11
    return check != 10 and check == int(rest[9])


def _pt(rest: str) -> bool:
    s = _weighted(rest, (9, 8, 7, 6, 5, 4, 3, 2))
    check = 11 - s % 11
    return (0 if check >= 10 else check) == int(rest[8])


def _se(rest: str) -> bool:
    return _luhn_ok(rest[:10])


def _no(rest: str) -> bool:
    return _weighted(rest, (3, 2, 7, 6, 5, 4, 3, 2, 1)) % 11 == 0


def _ch(rest: str) -> bool:
    # "E" + 9-digit UID (+ MWST/TVA/IVA/TPV): mod 11 over the first eight digits.
    uid = rest[1:10]
    check = (11 - _weighted(uid, (5, 4, 3, 2, 7, 6, 5, 4)) % 11) % 11
    return check != 10 and check == int(uid[8])


@dataclass(frozen=True)
class _VatFormat:
    pattern: re.Pattern[str]
    shape: str  # human-readable description of the part after the prefix
    checksum: Callable[[str], bool] | None = None


def _fmt(pattern: str, shape: str, checksum: Callable[[str], bool] | None = None) -> _VatFormat:
    return _VatFormat(re.compile(pattern), shape, checksum)


_GB = _fmt(r"\d{9}|\d{12}|GD\d{3}|HA\d{3}", "9 or 12 digits, or GD/HA followed by 3 digits")

_VAT_FORMATS: Mapping[str, _VatFormat] = MappingProxyType({
    "AT": _fmt(r"U\d{8}", "U followed by 8 digits", _at),
    "BE": _fmt(r"[01]\d{9}", "10 digits starting with 0 or 1", _be),
    "BG": _fmt(r"\d{9,10}", "9 or 10 digits"),
    "CY": _fmt(r"\d{8}[A-Z]", "8 digits and a letter"),
    "CZ": _fmt(r"\d{8,10}", "8 to 10 digits"),
    "DE": _fmt(r"[1-9]\d{8}", "9 digits, not starting with 0", _de),
    "DK": _fmt(r"[1-9]\d{7}", "8 digits, not starting with 0", _dk),
    "EE": _fmt(r"\d{9}", "9 digits"),
    "EL": _fmt(r"\d{9}", "9 digits"),
    "ES": _fmt(
        r"[A-Z]\d{7}[A-Z0-9]|\d{8}[A-Z]",
        "9 characters: a letter and 8 digits/letter, or 8 digits and a letter",
    ),
    "FI": _fmt(r"\d{8}", "8 digits", _fi),
    "FR": _fmt(r"[0-9A-HJ-NP-Z]{2}\d{9}", "a 2-character key and 9 digits", _fr),
    "HR": _fmt(r"\d{11}", "11 digits"),
    "HU": _fmt(r"\d{8}", "8 digits"),
    "IE": _fmt(
        r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]",
        "7 digits and 1-2 letters, or digit, letter/+/*, 5 digits and a letter",
    ),
    "IT": _fmt(r"\d{11}", "11 digits", _it),
    "LT": _fmt(r"\d{9}|\d{12}", "9 or 12 digits"),
    "LU": _fmt(r"\d{8}", "8 digits", _lu),
    "LV": _fmt(r"\d{11}", "11 digits"),
    "MT": _fmt(r"[1-9]\d{7}", "8 digits, not starting with 0"),
    "NL": _fmt(r"\d{9}B\d{2}", "9 digits, B and 2 digits", _nl),
    "PL": _fmt(r"\d{10}", "10 digits", _pl),
    "PT": _fmt(r"\d{9}", "9 digits", _pt),
    "RO": _fmt(r"[1-9]\d{1,9}", "2 to 10 digits, not starting with 0"),
    "SE": _fmt(r"\d{10}01", "12 digits ending in 01", _se),
    "SI": _fmt(r"[1-9]\d{7}", "8 digits, not starting with 0"),
    "SK": _fmt(r"[1-9]\d{9}", "10 digits, not starting with 0"),
    "XI": _GB,
    "GB": _GB,
    "CH": _fmt(
        r"E\d{9}(?:MWST|TVA|IVA|TPV)?",
        "CHE, 9 digits and optionally MWST/TVA/IVA/TPV",
        _ch,
    ),
    "NO": _fmt(r"\d{9}(?:MVA)?", "9 digits and optionally MVA", _no),
})  # fmt: skip

VAT_COUNTRIES: frozenset[str] = frozenset(_VAT_FORMATS)


def check_vat_id(value: str) -> CheckResult:
    """Check a VAT id by its country prefix: the country's format, then its check digits.

    A result with `country=None` means the prefix is missing or not one this module knows.
    """
    vat = _compact(value)
    prefix, rest = vat[:2], vat[2:]
    if prefix == "GR":
        return CheckResult(False, vat, "Greek VAT ids use the prefix EL, not GR", "EL")
    fmt = _VAT_FORMATS.get(prefix)
    if fmt is None:
        if prefix.isalpha() and prefix.isascii():
            return CheckResult(False, vat, f"{prefix} is not a supported VAT country prefix")
        return CheckResult(False, vat, "it has no country prefix")
    if not fmt.pattern.fullmatch(rest):
        return CheckResult(
            False, vat, f"{prefix} VAT ids are {prefix} followed by {fmt.shape}", prefix
        )
    if fmt.checksum is not None and not fmt.checksum(rest):
        return CheckResult(False, vat, f"the {prefix} check digits do not match", prefix)
    return CheckResult(True, vat, "", prefix)


# --------------------------------------------------------------------------------------------
# ISO 4217 currencies

# Current codes (ISO 4217 list one) and their minor units; None where the standard gives none
# (precious metals, bond-market units, SDR, test and "no currency" codes).
CURRENCY_MINOR_UNITS: Mapping[str, int | None] = MappingProxyType({
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2,
    "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2,
    "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2,
    "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2,
    "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
    "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2,
    "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2,
    "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2,
    "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2,
    "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2,
    "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2,
    "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2,
    "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2,
    "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XAG": None, "XAU": None, "XBA": None, "XBB": None,
    "XBC": None, "XBD": None, "XCD": 2, "XCG": 2, "XDR": None, "XOF": 0, "XPD": None,
    "XPF": 0, "XPT": None, "XSU": None, "XTS": None, "XUA": None, "XXX": None, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
})  # fmt: skip

# Codes withdrawn from list one in recent years; still seen on older documents.
WITHDRAWN_CURRENCIES: frozenset[str] = frozenset({"ANG", "CUC", "HRK", "SLL", "ZWL"})


def is_currency_code(code: str) -> bool:
    """True for a current ISO 4217 code (exact, upper-case three letters)."""
    return code in CURRENCY_MINOR_UNITS


def currency_minor_units(code: str | None, default: int = 2) -> int:
    """Decimal places of the currency's minor unit; `default` when unknown or not defined."""
    if code is None:
        return default
    units = CURRENCY_MINOR_UNITS.get(code.strip().upper())
    return default if units is None else units
