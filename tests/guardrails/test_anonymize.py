"""Anonymization: `{TYPE}` placeholders, reversible deterministic tokens, merged overlaps, and
de-anonymization that restores only authentic tokens made with the same key."""

from __future__ import annotations

import base64
import re

import pytest
from structlog.testing import capture_logs

from bastion.guardrails.anonymize import anonymize, deanonymize
from bastion.guardrails.types import Finding

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
TOKEN = re.compile(r"\{([A-Z_]+)~([A-Za-z0-9_-]+)\}")


def _at(text: str, kind: str, value: str, occurrence: int = 0) -> Finding:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(value, start + 1)
    return Finding(kind, start, start + len(value), 0.95, "pattern")


TEXT = "Mail anna@example.com, call +49 30 1234567; card 4111 1111 1111 1111."
FINDINGS = [
    _at(TEXT, "EMAIL", "anna@example.com"),
    _at(TEXT, "PHONE", "+49 30 1234567"),
    _at(TEXT, "CREDIT_DEBIT_CARD_NUMBER", "4111 1111 1111 1111"),
]


def test_type_mode_writes_the_type() -> None:
    assert anonymize(TEXT, FINDINGS) == (
        "Mail {EMAIL}, call {PHONE}; card {CREDIT_DEBIT_CARD_NUMBER}."
    )


def test_findings_in_any_order() -> None:
    assert anonymize(TEXT, reversed(FINDINGS)) == anonymize(TEXT, FINDINGS)


def test_token_round_trip() -> None:
    tokenized = anonymize(TEXT, FINDINGS, mode="token", key=KEY)
    assert "anna@example.com" not in tokenized and "4111" not in tokenized
    assert [m.group(1) for m in TOKEN.finditer(tokenized)] == [
        "EMAIL",
        "PHONE",
        "CREDIT_DEBIT_CARD_NUMBER",
    ]
    assert tokenized.startswith("Mail {EMAIL~") and tokenized.endswith("}.")
    assert deanonymize(tokenized, KEY) == TEXT


def test_tokens_are_deterministic_per_value_and_type() -> None:
    text = "anna@example.com wrote to bob@example.com, then anna@example.com again"
    findings = [
        _at(text, "EMAIL", "anna@example.com"),
        _at(text, "EMAIL", "bob@example.com"),
        _at(text, "EMAIL", "anna@example.com", occurrence=1),
    ]
    first, second, third = TOKEN.findall(anonymize(text, findings, mode="token", key=KEY))
    assert first == third != second
    assert anonymize(text, findings, mode="token", key=KEY) == anonymize(
        text, findings, mode="token", key=KEY
    )
    other = TOKEN.findall(anonymize(text, findings, mode="token", key=OTHER_KEY))
    assert other[0] != first  # another key, another token


def test_wrong_key_leaves_tokens_and_reports_them() -> None:
    tokenized = anonymize(TEXT, FINDINGS, mode="token", key=KEY)
    with capture_logs() as logs:
        assert deanonymize(tokenized, OTHER_KEY) == tokenized
    (event,) = logs
    assert event["event"] == "guardrails.deanonymize.rejected"
    assert event["log_level"] == "warning"
    assert event["count"] == 3
    assert event["types"] == ["EMAIL", "PHONE", "CREDIT_DEBIT_CARD_NUMBER"]


def test_tampered_tokens_are_left_as_they_are() -> None:
    original = "to anna@example.com"
    tokenized = anonymize(
        original, [_at(original, "EMAIL", "anna@example.com")], mode="token", key=KEY
    )
    found = TOKEN.search(tokenized)
    assert found is not None
    kind, payload = found.groups()
    sealed = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    sealed[-1] ^= 1
    flipped = base64.urlsafe_b64encode(bytes(sealed)).rstrip(b"=").decode()
    forged = [
        f"{{{kind}~{flipped}}}",  # a changed ciphertext
        f"{{NAME~{payload}}}",  # another type: the type is authenticated too
        f"{{{kind}~{payload[:-4]}}}",  # truncated
        "{EMAIL~AAAAAAAAAAAAAAAAAAAAAAAAAAAA}",  # made up
        "{EMAIL~A}",  # too short to be a token
        "{EMAIL~" + "A" * 23 + "*}",  # not base64url
    ]
    text = " | ".join([tokenized, *forged])
    with capture_logs() as logs:
        restored = deanonymize(text, KEY)
    assert restored == " | ".join([original, *forged])
    assert logs[0]["count"] == 4


def test_nothing_to_restore_logs_nothing() -> None:
    with capture_logs() as logs:
        assert deanonymize("plain {EMAIL} text", KEY) == "plain {EMAIL} text"
    assert logs == []


def test_overlapping_findings_merge_and_the_longest_names_them() -> None:
    text = "Contact Anna Schmidt <anna.schmidt@example.com> today."
    email = _at(text, "EMAIL", "anna.schmidt@example.com")
    inside = _at(text, "NAME", "anna.schmidt")
    assert anonymize(text, [inside, email]) == "Contact Anna Schmidt <{EMAIL}> today."

    # Partly overlapping spans become one span over both, named after the longer.
    text = "IBAN DE89370400440532013000 ref"
    iban = _at(text, "IBAN", "DE89370400440532013000")
    phone = _at(text, "PHONE", "0532013000 ref")
    assert anonymize(text, [phone, iban]) == "IBAN {IBAN}"
    tokenized = anonymize(text, [phone, iban], mode="token", key=KEY)
    assert deanonymize(tokenized, KEY) == text


def test_adjacent_findings_stay_apart() -> None:
    text = "AnnaSchmidt"
    findings = [Finding("NAME", 0, 4, 0.9, "x"), Finding("NAME", 4, 11, 0.9, "x")]
    assert anonymize(text, findings) == "{NAME}{NAME}"


def test_unicode_values() -> None:
    text = "Grüße von Jürgen Öztürk 🙂, 東京都千代田区 👋"
    findings = [_at(text, "NAME", "Jürgen Öztürk"), _at(text, "ADDRESS", "東京都千代田区")]
    assert anonymize(text, findings) == "Grüße von {NAME} 🙂, {ADDRESS} 👋"
    tokenized = anonymize(text, findings, mode="token", key=KEY)
    assert tokenized.isascii() is False  # the rest of the text is untouched
    assert deanonymize(tokenized, KEY) == text


def test_empty_text_and_empty_findings() -> None:
    assert anonymize("", []) == ""
    assert anonymize("", [], mode="token", key=KEY) == ""
    assert anonymize("nothing here", []) == "nothing here"
    assert deanonymize("", KEY) == ""
    # Empty and out-of-range spans are ignored or clamped.
    assert anonymize("abc", [Finding("NAME", 1, 1, 1.0, "x")]) == "abc"
    assert anonymize("abc", [Finding("NAME", 1, 99, 1.0, "x")]) == "a{NAME}"


@pytest.mark.parametrize("key", [None, b"", b"short", bytes(16), bytes(33)])
def test_token_mode_needs_a_proper_key(key: bytes | None) -> None:
    with pytest.raises(ValueError, match="a key of 32, 48 or 64 bytes"):
        anonymize(TEXT, FINDINGS, mode="token", key=key)


@pytest.mark.parametrize("size", [32, 48, 64])
def test_every_aes_siv_key_size(size: int) -> None:
    key = bytes(range(size))
    assert deanonymize(anonymize(TEXT, FINDINGS, mode="token", key=key), key) == TEXT


def test_token_mode_rejects_types_a_token_cannot_carry() -> None:
    with pytest.raises(ValueError, match="cannot name a token"):
        anonymize("abc", [Finding("TOPIC:x", 0, 3, 1.0, "x")], mode="token", key=KEY)
