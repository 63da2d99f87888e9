"""The PII detector: each type's positives and near misses, cues, custom patterns, overlaps,
odd input and speed on a large text."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from bastion.guardrails.pii import detect_pii, luhn_valid, ssn_valid
from bastion.guardrails.types import Confidence, Finding


def _found(text: str, kind: str) -> list[str]:
    return [text[f.start : f.end] for f in detect_pii(text) if f.type == kind]


def _one(text: str, kind: str) -> Finding:
    matches = [f for f in detect_pii(text) if f.type == kind]
    assert len(matches) == 1, matches
    return matches[0]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Write to jane.doe+news@example.co.uk today.", "EMAIL", "jane.doe+news@example.co.uk"),
        ("Call me on (415) 555-2671 tomorrow.", "PHONE", "(415) 555-2671"),
        ("Phone: +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
        ("See https://example.com/a?b=1.", "URL", "https://example.com/a?b=1"),
        ("Blocked from 192.168.10.254 again", "IP_ADDRESS", "192.168.10.254"),
        (
            "address 2001:db8:85a3::8a2e:370:7334 blocked",
            "IP_ADDRESS",
            "2001:db8:85a3::8a2e:370:7334",
        ),
        ("My card 4111 1111 1111 1111 expires", "CREDIT_DEBIT_CARD_NUMBER", "4111 1111 1111 1111"),
        ("My IBAN is GB82WEST12345698765432.", "IBAN", "GB82WEST12345698765432"),
        ("IBAN: DE89 3704 0044 0532 0130 00", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("The SWIFT code is DEUTDEFF500.", "SWIFT_CODE", "DEUTDEFF500"),
        ("Here's my SSN: 460-89-9847", "US_SOCIAL_SECURITY_NUMBER", "460-89-9847"),
        ("passport number 123456789 please", "US_PASSPORT_NUMBER", "123456789"),
        ("NI number AB 12 34 56 C", "UK_NATIONAL_INSURANCE_NUMBER", "AB 12 34 56 C"),
        ("key AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_SECRET_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("login with password: hunter2!x", "PASSWORD", "hunter2!x"),
        ("He is a 22 year old man", "AGE", "22"),
        ("My brother just turned 35", "AGE", "35"),
        ("My driver's license number is F162823540116", "DRIVER_ID", "F162823540116"),
        ("Jacob lives on 90 Whitchurch Road street.", "ADDRESS", "90 Whitchurch Road"),
        ("Dear Mr. John Smith, thank you.", "NAME", "John Smith"),
        ("My name is Maria Lopez.", "NAME", "Maria Lopez"),
    ],
)
def test_each_type_is_found_with_its_exact_span(text: str, kind: str, value: str) -> None:
    assert _found(text, kind) == [value]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("My card 4111 1111 1111 1112 expires", "CREDIT_DEBIT_CARD_NUMBER"),  # fails Luhn
        ("Order 1234567890123456 shipped", "CREDIT_DEBIT_CARD_NUMBER"),  # fails Luhn
        ("My IBAN is GB83WEST12345698765432.", "IBAN"),  # bad check digits
        ("Here's my SSN: 000-12-3456", "US_SOCIAL_SECURITY_NUMBER"),
        ("Here's my SSN: 666-12-3456", "US_SOCIAL_SECURITY_NUMBER"),
        ("Here's my SSN: 912-12-3456", "US_SOCIAL_SECURITY_NUMBER"),
        ("Here's my SSN: 123-00-3456", "US_SOCIAL_SECURITY_NUMBER"),
        ("Here's my SSN: 123-45-0000", "US_SOCIAL_SECURITY_NUMBER"),
        ("Ref 555-0100-99999-1 now", "PHONE"),
        ("Reference 12345678 in the ledger", "PHONE"),
        ("Version 999.1.2.3 released", "IP_ADDRESS"),
        ("at 12:30:45 sharp", "IP_ADDRESS"),
        ("the number 123456789 again", "US_PASSPORT_NUMBER"),  # no passport cue
        ("NI number GB 12 34 56 C", "UK_NATIONAL_INSURANCE_NUMBER"),  # invalid prefix
        ("it was AKIAIOSFODNN7EXAMPL", "AWS_ACCESS_KEY"),  # too short
        ("The BUSINESS plan", "SWIFT_CODE"),
        ("the password field is empty", "PASSWORD"),
        ("It costs 35 dollars", "AGE"),
        ("The committee met on Tuesday to discuss the budget.", "NAME"),
    ],
)
def test_near_misses_are_not_reported(text: str, kind: str) -> None:
    assert _found(text, kind) == []


def test_validators() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert ssn_valid("078-05-1120")
    assert not ssn_valid("000-12-3456")
    assert not ssn_valid("078-05-112")


def test_a_cue_word_raises_the_confidence() -> None:
    bare = _one("Record 4111-1111-1111-1111 on file", "CREDIT_DEBIT_CARD_NUMBER")
    cued = _one("Credit card 4111-1111-1111-1111 on file", "CREDIT_DEBIT_CARD_NUMBER")
    assert cued.score > bare.score
    assert cued.confidence == Confidence.HIGH
    bare_ssn = _one("Ref 123-45-6789.", "US_SOCIAL_SECURITY_NUMBER")
    cued_ssn = _one("social security number 123-45-6789.", "US_SOCIAL_SECURITY_NUMBER")
    assert cued_ssn.score > bare_ssn.score
    # A 9-digit number without dashes is only an SSN next to its cue.
    assert _found("ssn 123456789", "US_SOCIAL_SECURITY_NUMBER") == ["123456789"]
    assert _found("id 123456789", "US_SOCIAL_SECURITY_NUMBER") == []


def test_a_phone_number_needs_a_valid_number_or_a_cue() -> None:
    assert _found("Mobile: 0487 98 11 92", "PHONE") == ["0487 98 11 92"]
    assert _found("Lot 0487 98 11 92", "PHONE") == []


def test_detectors_and_scores() -> None:
    findings = detect_pii("Dear Dr. Anna Kowalski, mail anna@example.org")
    by_type = {f.type: f for f in findings}
    assert by_type["EMAIL"].detector == "pattern"
    assert by_type["NAME"].detector == "linear"
    assert all(0.5 <= f.score <= 1.0 for f in findings)


def test_types_restrict_the_detectors() -> None:
    text = "Mail anna@example.org or call +1 415 555 2671"
    assert {f.type for f in detect_pii(text, types=["EMAIL"])} == {"EMAIL"}
    assert detect_pii(text, types=[]) == []


def test_custom_patterns() -> None:
    text = "Ticket EMP-004211 for anna@example.org"
    findings = detect_pii(text, types=["EMAIL"], custom=[("EMPLOYEE_ID", re.compile(r"EMP-\d{6}"))])
    custom = [f for f in findings if f.type == "EMPLOYEE_ID"]
    assert [(text[f.start : f.end], f.detector) for f in custom] == [("EMP-004211", "regex")]
    assert detect_pii("nothing", custom=[("EMPTY", re.compile(r"x*"))]) == []


def test_overlaps_are_resolved_by_score_then_length() -> None:
    # The e-mail address contains a domain (URL) and capitalised words: only the e-mail stays.
    text = "Send it to JamiePratt@jourrapide.com please"
    findings = detect_pii(text)
    assert [(f.type, text[f.start : f.end]) for f in findings] == [
        ("EMAIL", "JamiePratt@jourrapide.com")
    ]
    # A custom pattern scores 0.9: a validated card with its cue (0.97) wins over it.
    text = "card 4111111111111111"
    findings = detect_pii(text, custom=[("DIGITS", re.compile(r"\d{8}"))])
    assert [f.type for f in findings] == ["CREDIT_DEBIT_CARD_NUMBER"]


def test_output_is_sorted_and_non_overlapping() -> None:
    text = (
        "Dear Mr. John Smith, your card 4111 1111 1111 1111 and IBAN GB82WEST12345698765432 "
        "were noted; call (415) 555-2671 or write to john@example.com, 12 Baker Street."
    )
    findings = detect_pii(text)
    assert {f.type for f in findings} >= {
        "NAME",
        "CREDIT_DEBIT_CARD_NUMBER",
        "IBAN",
        "PHONE",
        "EMAIL",
        "ADDRESS",
    }
    for left, right in itertools.pairwise(findings):
        assert left.end <= right.start


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ud800 lone surrogate 4111 1111 1111 1111 \udfff",
        "\x00\x01\x02 control \x7f chars \u202e",
        "İstanbul İİİ card 4111 1111 1111 1111",  # lowercases to two characters
        "@" * 5000,
        "1" * 10000,
        "A" * 10000,
        "+" + "(1)" * 3000,
        "a." * 5000,
        ":" * 3000 + "ff" * 3000,
        "12 " * 3000,
    ],
)
def test_odd_input_does_not_crash(text: str) -> None:
    started = time.process_time()  # CPU time: the cores are shared with other tests' processes
    findings = detect_pii(text)
    assert time.process_time() - started < 2.0
    for finding in findings:
        assert 0 <= finding.start < finding.end <= len(text)


def test_offsets_survive_letters_that_lowercase_longer() -> None:
    text = "İİİ card 4111 1111 1111 1111"
    assert _found(text, "CREDIT_DEBIT_CARD_NUMBER") == ["4111 1111 1111 1111"]


def test_a_megabyte_finishes_quickly() -> None:
    paragraph = (
        "Dear Mr. John Smith, thank you for your order of 12 March. Your card "
        "4111 1111 1111 1111 was charged; questions to support@example.com or (415) 555-2671. "
        "We ship to 221 Baker Street, London NW1 6XE. The committee meets on Tuesday.\n"
    )
    text = paragraph * (1_000_000 // len(paragraph))
    detect_pii(paragraph)
    started = time.process_time()  # CPU time: the cores are shared with other tests' processes
    findings = detect_pii(text)
    assert time.process_time() - started < 5.0
    cards = [f for f in findings if f.type == "CREDIT_DEBIT_CARD_NUMBER"]
    assert len(cards) == 1_000_000 // len(paragraph)
