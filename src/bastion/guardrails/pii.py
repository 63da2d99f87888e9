"""PII detection for the guardrails: a cascade of validated patterns, address rules and a small
linear name model, over Amazon Bedrock's sensitive-information types.

`detect_pii(text)` returns non-overlapping `Finding`s sorted by start. Layer 1 ("pattern") is a
set of compiled expressions, each candidate checked by a validator before it counts: Luhn and
issuer prefixes for cards, mod-97 for IBANs, the SSA rules for US social security numbers,
`phonenumbers` for phone numbers, `ipaddress` for IP addresses, the country code for SWIFT codes.
A cue word shortly before a candidate ("ssn", "card", "passport", "password:", "IBAN", ...)
raises its score; some types (passwords, driver's licence and passport numbers, ages) are only
reported next to their cue. Street addresses come from `pii_address` (rules) and person names
from `pii_name` (a linear model over token features, detector "linear"). Scores map to
confidence levels through `types.confidence_of`; candidates scoring under 0.5 are dropped.

Overlaps are resolved by score, then length. Every expression has bounded quantifiers and the
rules gated by a keyword only run when the keyword occurs, so the work is linear in the text.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import phonenumbers

from bastion.business_ids import COUNTRY_CODES, iban_valid
from bastion.guardrails.pii_address import find_addresses
from bastion.guardrails.pii_name import find_names
from bastion.guardrails.types import PII_TYPES, Finding

__all__ = ["MIN_SCORE", "detect_pii", "luhn_valid", "ssn_valid"]

MIN_SCORE = 0.5  # candidates below this (confidence NONE) are not reported
_CUE_BEFORE = 48  # characters before a candidate searched for its cue words
_CUE_AFTER = 24  # ... and after it

# A validator gets the matched value and whether a cue word is near; it returns a score or None.
Validator = Callable[[str, bool], float | None]


@dataclass(frozen=True, slots=True)
class _Rule:
    type: str
    pattern: re.Pattern[str]
    validate: Validator
    cue: re.Pattern[str] | None = None  # searched in the lowercased text around a candidate
    needles: tuple[str, ...] = ()  # the rule runs only when one occurs in the lowercased text
    group: int = 0  # the group that is the finding's span
    shorten: Callable[[str], str] | None = None  # the part of a match that is the value
    lowered: bool = False  # the pattern is written for, and runs on, the lowercased text


# --- validators ------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def ssn_valid(value: str) -> bool:
    """Whether a US social security number (dashes or spaces allowed) follows the SSA rules:
    area not 000, 666 or 9xx, group not 00, serial not 0000."""
    digits = re.sub(r"[ -]", "", value)
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _digits(value: str) -> str:
    return "".join(char for char in value if "0" <= char <= "9")


# Issuer prefixes of the card schemes (Visa, Mastercard, Amex, Diners, Discover, JCB, UnionPay,
# Maestro) and the lengths the schemes use.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6|1800|2131|35")


def _card(value: str, cue: bool) -> float | None:
    digits = _digits(value)
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        return None
    if len(set(digits)) < 2 or not _CARD_PREFIX.match(digits):
        return 0.6 if cue else None
    return 0.97 if cue else 0.8


def _iban_prefix(value: str) -> str:
    """The longest prefix of `value` that is a valid IBAN ("" if none): a greedy match may
    have taken the first characters of the following text."""
    while len(value) >= 15:
        if iban_valid(value.replace(" ", "")):
            return value
        value = value[:-1].rstrip()
    return ""


def _iban(value: str, cue: bool) -> float | None:
    return 0.98 if value else None


def _ssn(value: str, cue: bool) -> float | None:
    if not ssn_valid(value):
        return None
    if cue:
        return 0.97
    return 0.75 if "-" in value else None


def _phone(value: str, cue: bool) -> float | None:
    digits = _digits(value)
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.fullmatch(value):
        return None
    if cue and len(digits) <= 13:
        # Next to "phone", "fax", "call" ...: any national format, no region to check it with.
        return 0.9 if _phone_valid(value) else 0.7
    if _phone_valid(value):
        separated = len(digits) < len(value)
        return 0.8 if value.startswith(("+", "00")) or separated else 0.55
    return None


def _phone_valid(value: str) -> bool:
    """Whether `phonenumbers` finds a valid number (international, else a US one)."""
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _ip(value: str, cue: bool) -> float | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if address.version == 4 and value.count(".") == 3 and not cue:
        # Version numbers look the same ("1.2.0.4"): lower when the octets are all small.
        return 0.85 if any(len(part) > 1 for part in value.split(".")) else 0.55
    return 0.95 if cue else 0.85


def _swift(value: str, cue: bool) -> float | None:
    if value[4:6] not in COUNTRY_CODES:
        return None
    if cue:
        return 0.95
    # An all-letter word of 8 or 11 capitals is more often a shouted word than a bank code.
    return 0.6 if any(char.isdigit() for char in value[6:]) else None


def _nino(value: str, cue: bool) -> float | None:
    prefix = value[:2].upper()
    if prefix in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        return None
    return 0.95 if cue else 0.75


def _secret_key(value: str, cue: bool) -> float | None:
    kinds = sum(
        any(test(char) for char in value) for test in (str.isupper, str.islower, str.isdigit)
    )
    if kinds < 3:
        return None
    return 0.95 if cue else 0.55


def _cue_only(score: float) -> Validator:
    def validate(value: str, cue: bool) -> float | None:
        return score if cue else None

    return validate


def _fixed(score: float, with_cue: float | None = None) -> Validator:
    def validate(value: str, cue: bool) -> float | None:
        return with_cue if cue and with_cue is not None else score

    return validate


def _age(value: str, cue: bool) -> float | None:
    return 0.8 if 0 < int(value) <= 120 else None


def _driver_id(value: str, cue: bool) -> float | None:
    return 0.9 if any(char.isdigit() for char in value) else None


def _url(value: str, cue: bool) -> float | None:
    return 0.9 if "://" in value or value.lower().startswith("www.") else 0.6


# --- rules -----------------------------------------------------------------------------------


def _cues(*words: str) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z])(?:" + "|".join(words) + r")(?![a-z])")


_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|uk|de|fr|it|es|nl|be|ch|at|se|no|dk|"
    "fi|pl|cz|pt|ie|eu|us|ca|au|nz|jp|cn|in|ru|br|mx"
)
_VALUE_AFTER_CUE = r"[^\s\"'`]{4,64}"

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "EMAIL",
        re.compile(
            r"[\w.+%-](?<![\w.+%-][\w.+%-])[\w.+%-]{0,63}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}(?<![.-])"
        ),
        _fixed(0.97),
        needles=("@",),
    ),
    _Rule(
        "URL",
        re.compile(r"(?<![\w@])(?:https?://|ftp://|www\.)[^\s<>\"'`{}|\\^\[\]]{2,2000}"),
        _url,
        needles=("://", "www."),
        lowered=True,
    ),
    _Rule(
        "URL",
        re.compile(
            rf"[a-z0-9](?<![\w@.-][a-z0-9])[a-z0-9-]{{0,62}}\.(?:[a-z0-9][a-z0-9-]{{0,62}}\.){{0,3}}(?:{_TLDS})(?![\w@-]|\.\w)"
            r"(?:/[^\s<>\"'`]{0,2000})?"
        ),
        _url,
        needles=tuple("." + tld for tld in _TLDS.split("|")),
        lowered=True,
    ),
    _Rule(
        "IP_ADDRESS",
        re.compile(r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)"),
        _ip,
        _cues("ip", "address", "host", "server", "client"),
        needles=(".",),
    ),
    _Rule(
        "IP_ADDRESS",
        re.compile(
            r"[0-9a-f](?<![\w:][0-9a-f])[0-9a-f]{0,3}:(?:[0-9a-f]{1,4}:){0,6}(?::|(?::[0-9a-f]{1,4}){1,7}|[0-9a-f]{1,4})"
            r"(?![\w:])"
        ),
        _ip,
        _cues("ip", "ipv6", "address", "host", "server", "client"),
        needles=(":",),
        lowered=True,
    ),
    _Rule(
        "CREDIT_DEBIT_CARD_NUMBER",
        re.compile(
            r"\d(?<![\d-]\d)\d{3}(?:([ -]?)\d{4}){2}\1\d{1,7}(?![\d-])|\d(?<!\d\d)\d{11,18}(?!\d)"
        ),
        _card,
        _cues("card", "cc", "visa", "mastercard", "amex", "credit", "debit", "maestro", "jcb"),
    ),
    _Rule(
        "IBAN",
        re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?!\w)"),
        _iban,
        _cues("iban", "account", "bank", "transfer"),
        shorten=_iban_prefix,
    ),
    _Rule(
        "SWIFT_CODE",
        re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]{5}[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?!\w)"),
        _swift,
        _cues("swift", "bic", "bank", "sort code"),
    ),
    _Rule(
        "US_SOCIAL_SECURITY_NUMBER",
        re.compile(r"\d(?<![\w-]\d)\d{2}([- ]?)\d{2}\1\d{4}(?![\w-])"),
        _ssn,
        _cues("ssn", "ss#", "ssns", "social security", "social sec", "soc sec"),
    ),
    _Rule(
        "US_PASSPORT_NUMBER",
        re.compile(r"(?<![\w-])(?:[A-Z]\d{8}|\d{9})(?![\w-])"),
        _cue_only(0.9),
        _cues("passport", "passport no", "passport number"),
        needles=("passport",),
    ),
    _Rule(
        "UK_NATIONAL_INSURANCE_NUMBER",
        re.compile(
            r"[A-CEGHJ-PR-TW-Z](?<!\w[A-Z])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"
        ),
        _nino,
        _cues("national insurance", "nino", "ni number", "ni no", "insurance number"),
    ),
    _Rule(
        "AWS_ACCESS_KEY",
        re.compile(
            r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z2-7]{16}"
            r"(?![A-Z0-9])"
        ),
        _fixed(0.95),
    ),
    _Rule(
        "AWS_SECRET_KEY",
        re.compile(
            r"[A-Za-z0-9/+](?<![A-Za-z0-9/+][A-Za-z0-9/+])[A-Za-z0-9/+]{39}(?![A-Za-z0-9/+=])"
        ),
        _secret_key,
        _cues("secret", "aws_secret_access_key", "secret_access_key", "secretaccesskey"),
    ),
    _Rule(
        "PASSWORD",
        re.compile(
            r"(?<![\w])(?:password|passwd|passphrase|pwd|passcode|pass code|kennwort|passwort|"
            rf"mot de passe)s?\b(?: is|:|=| was| to)[ \t]*[:=]?[ \t]*[\"'`]?({_VALUE_AFTER_CUE})"
        ),
        _fixed(0.9),
        needles=("pass", "pwd", "kennwort", "mot de"),
        group=1,
        lowered=True,
    ),
    _Rule(
        "AGE",
        re.compile(
            r"(\d(?<![\w.]\d)\d{0,2})(?:[- ](?:years?|yrs?)[- ]old|[- ]?(?:y/o|yo|yr old)\b|"
            r" years? of age)"
        ),
        _age,
        needles=("old", "y/o", "yo", "age"),
        group=1,
        lowered=True,
    ),
    _Rule(
        "AGE",
        re.compile(
            r"\b(?:aged?|age of|age is|turned|turn|turning|i'm|i am|(?:he|she|i|they) (?:was|is))"
            r"[ \t]+(\d{1,3})(?![\w.,:/-]|\.\d)"
        ),
        _age,
        needles=("age", "turn", "i'm", "i am", "was", "is"),
        group=1,
        lowered=True,
    ),
    _Rule(
        "DRIVER_ID",
        re.compile(
            r"\b(?:driv(?:er'?s?|ing)[ -]?licen[cs]e|dl)(?:[ -](?:number|no\.?|num|#|id))?"
            r"(?: is|:|#)?[ \t]*[:#]?[ \t]*([a-z0-9][a-z0-9-]{3,19})(?![\w-])"
        ),
        _driver_id,
        needles=("licen", "dl"),
        group=1,
        lowered=True,
    ),
)

# Candidates a phone number may be: an optional "+" or "(", then digits with the separators
# numbers are written with; validated by `phonenumbers` (see `_phone`).
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+|00)?(?:\(\d{1,5}\)[ .-]?)?\d(?:[ .-]?\(?\d\)?){5,16}(?![\w/-]|\.\d)"
)
_PHONE_CUE = _cues(
    "phone",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "fax",
    "office",
    "call",
    "reach",
    "contact",
    "number",
    "registered",
    "whatsapp",
    "sms",
    "text",
    "desk",
    "home",
    "work",
    "dial",
    "ph",
    "answering",
    "tel.",
    "mob",
    "landline",
)


def _rules_for(types: Collection[str] | None) -> Iterator[_Rule]:
    for rule in _RULES:
        if types is None or rule.type in types:
            yield rule


def _has_cue(cue: re.Pattern[str] | None, lowered: str, start: int, end: int) -> bool:
    if cue is None:
        return False
    before = lowered[max(0, start - _CUE_BEFORE) : start]
    return cue.search(before) is not None or cue.search(lowered[end : end + _CUE_AFTER]) is not None


def _pattern_findings(text: str, lowered: str, types: Collection[str] | None) -> Iterator[Finding]:
    for rule in _rules_for(types):
        if rule.needles and not any(needle in lowered for needle in rule.needles):
            continue
        for match in rule.pattern.finditer(lowered if rule.lowered else text):
            start, end = match.span(rule.group)
            value = text[start:end].rstrip(".,;:!?)'\"")
            if rule.shorten is not None:
                value = rule.shorten(value)
            if not value:
                continue
            end = start + len(value)
            score = rule.validate(value, _has_cue(rule.cue, lowered, start, end))
            if score is None or score < MIN_SCORE:
                continue
            yield Finding(rule.type, start, end, score, "pattern")
    if types is None or "PHONE" in types:
        yield from _phone_findings(text, lowered)


def _phone_findings(text: str, lowered: str) -> Iterator[Finding]:
    for match in _PHONE.finditer(text):
        start, end = match.span()
        score = _phone(match.group(), _has_cue(_PHONE_CUE, lowered, start, end))
        if score is not None and score >= MIN_SCORE:
            yield Finding("PHONE", start, end, score, "pattern")


def _custom_findings(text: str, custom: Sequence[tuple[str, re.Pattern[str]]]) -> Iterator[Finding]:
    for name, pattern in custom:
        for match in pattern.finditer(text):
            if match.end() > match.start():
                yield Finding(name, match.start(), match.end(), 0.9, "regex")


def _resolve(findings: list[Finding]) -> list[Finding]:
    """The findings that survive overlaps (higher score first, then the longer), by start."""
    ranked = sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    starts: list[int] = []
    kept: list[Finding] = []  # sorted by start, non-overlapping
    for finding in ranked:
        index = bisect_left(starts, finding.start)
        if index > 0 and kept[index - 1].end > finding.start:
            continue
        if index < len(kept) and kept[index].start < finding.end:
            continue
        starts.insert(index, finding.start)
        kept.insert(index, finding)
    return kept


def _lowercase(text: str) -> str:
    """`text` in lowercase, with the same offsets (a few letters lowercase to two characters:
    those are kept as they are)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(char if len(low := char.lower()) != 1 else low for char in text)


def detect_pii(
    text: str,
    types: Collection[str] | None = None,
    custom: Sequence[tuple[str, re.Pattern[str]]] = (),
) -> list[Finding]:
    """The PII in `text`: non-overlapping findings sorted by start.

    `types` restricts the built-in detectors to these Bedrock types (None: all of `PII_TYPES`);
    `custom` adds (type name, compiled pattern) pairs whose matches are reported with that type,
    detector "regex" and score 0.9, whatever `types` says."""
    wanted = None if types is None else frozenset(types) & frozenset(PII_TYPES)
    lowered = _lowercase(text)
    findings = list(_pattern_findings(text, lowered, wanted))
    if wanted is None or "ADDRESS" in wanted:
        findings += (
            Finding("ADDRESS", s, e, score, "pattern") for s, e, score in find_addresses(text)
        )
    if wanted is None or "NAME" in wanted:
        findings += (Finding("NAME", s, e, score, "linear") for s, e, score in find_names(text))
    findings += _custom_findings(text, custom)
    return _resolve(findings)
