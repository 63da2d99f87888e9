"""IBAN, BIC and VAT id rules: the one home of what makes these identifiers valid.

The invoice extractor, the validator's rules and the PII guardrails all read them from here, so
an identifier one of them accepts is one the others accept too. This module imports nothing
from the rest of bastion: every package may depend on it.

- IBAN: the country's length from the SWIFT IBAN registry (`IBAN_LENGTHS`) and the ISO 7064
  mod-97 checksum (`iban_valid`, the fast yes/no; `check_iban`, with the reason).
- BIC: the ISO 9362 shape (4 party characters, an ISO 3166 country code, 2 location
  characters, optional 3-character branch): `check_bic`, `COUNTRY_CODES`.
- VAT ids: the format of each EU member state (Greece uses the prefix EL, Northern Ireland XI)
  plus GB, CH and NO (`check_vat_id`, `VAT_COUNTRIES`, and `VAT_ID_PATTERN`, the formats of
  all countries as one expression over compact text); check digits are verified for AT, BE,
  CH, DE, DK, FI, FR (numeric key), IT, LU, NL, NO, PL, PT and SE. Other countries get a
  format check only.

Every `check_*` takes the text as found on a document (spaces, dots and dashes allowed, any
case) and returns a `CheckResult` whose `problem` says, when the value is invalid, why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "COUNTRY_CODES",
    "IBAN_LENGTHS",
    "VAT_COUNTRIES",
    "VAT_ID_PATTERN",
    "CheckResult",
    "check_bic",
    "check_iban",
    "check_vat_id",
    "iban_valid",
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


# ISO 3166-1 alpha-2 country codes (and XK, Kosovo's user-assigned code used by banks).
_COUNTRY_CODES_TEXT = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS XK YE YT ZA ZM ZW"
)
COUNTRY_CODES: frozenset[str] = frozenset(_COUNTRY_CODES_TEXT.split())


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
_IBAN_CHARS = re.compile(r"[A-Z0-9]+")
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")
# A letter stands for its number in base 36 (A = 10 ... Z = 35) in the mod-97 check.
_BASE36_DIGITS = {ord(ch): str(int(ch, 36)) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
# Check digits that satisfy mod 97 where 02, 03 or 98 is right, but are never issued.
_NEVER_ISSUED = ("00", "01", "99")


def _mod97(text: str) -> int:
    """ISO 7064 mod 97-10 over upper-case letters and digits (A=10 ... Z=35)."""
    return int(text.translate(_BASE36_DIGITS)) % 97


def _checksum_ok(iban: str) -> bool:
    return iban[2:4] not in _NEVER_ISSUED and _mod97(iban[4:] + iban[:4]) == 1


def iban_valid(iban: str) -> bool:
    """Whether `iban` (compact: no spaces) has its country's length and a valid checksum."""
    iban = iban.upper()
    if not (iban.isascii() and iban.isalnum()):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None or len(iban) != expected or not iban[2:4].isdigit():
        return False
    return _checksum_ok(iban)


def check_iban(value: str) -> CheckResult:
    """Check an IBAN: characters, country code, the country's length and the mod-97 checksum."""
    iban = _IBAN_PREFIX.sub("", _compact(value))
    if not iban:
        return CheckResult(False, iban, "it is empty")
    if not _IBAN_CHARS.fullmatch(iban):
        return CheckResult(False, iban, "it contains characters other than letters and digits")
    if len(iban) < 5 or not _IBAN_START.fullmatch(iban[:4]):
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
    if not _checksum_ok(iban):
        return CheckResult(False, iban, "the check digits (mod 97) do not match", country)
    return CheckResult(True, iban, "", country)


# --------------------------------------------------------------------------------------------
# BIC

_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def check_bic(value: str) -> CheckResult:
    """Check a BIC (ISO 9362): 8 or 11 characters, an ISO 3166 country code in 5-6."""
    bic = _compact(value)
    if len(bic) not in (8, 11):
        return CheckResult(False, bic, f"a BIC has 8 or 11 characters, this one has {len(bic)}")
    if not _BIC.fullmatch(bic):
        if not bic.isalnum() or not bic.isascii():
            return CheckResult(False, bic, "it contains characters other than letters and digits")
        return CheckResult(False, bic, "characters 5-6 must be a country code (two letters)")
    if bic[4:6] not in COUNTRY_CODES:
        return CheckResult(False, bic, f"characters 5-6 ({bic[4:6]}) are not a country code")
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
    pattern: re.Pattern[str]  # the part after the prefix
    shape: str  # human-readable description of that part
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

# Every country's format behind its prefix, as one expression over compact upper-case text
# (no separators): what a document scanner looks for, with `fullmatch` or `finditer`.
VAT_ID_PATTERN: re.Pattern[str] = re.compile(
    "|".join(f"{prefix}(?:{fmt.pattern.pattern})" for prefix, fmt in _VAT_FORMATS.items())
)


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
