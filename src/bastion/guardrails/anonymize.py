"""Anonymization: findings' spans replaced by their type, or by reversible tokens.

`anonymize(text, findings)` writes `{EMAIL}` in place of each finding (overlapping findings are
merged into one span, named after the longest of them). With `mode="token"` it writes
`{EMAIL~<base64url>}` instead: the value encrypted with AES-SIV under the caller's key, with the
type as associated data. AES-SIV is deterministic, so the same value of the same type always
gives the same token (a model can still tell that two mentions are the same person), and
authenticated, so `deanonymize(text, key)` restores exactly the tokens made with that key and
leaves any other (a wrong key, a tampered or made-up token) as it is, logging how many it left.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Literal

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from bastion.guardrails.types import Finding

__all__ = ["KEY_SIZES", "AnonymizeMode", "anonymize", "deanonymize"]

AnonymizeMode = Literal["type", "token"]
KEY_SIZES = (32, 48, 64)  # AES-SIV keys: two AES-128, -192 or -256 keys (see _cipher)

_KIND = r"[A-Z][A-Z0-9_]*"  # the types a token can carry: PII types, custom regex names
_TOKEN = re.compile(rf"\{{({_KIND})~([A-Za-z0-9_-]{{23,}})\}}")  # 16-byte tag + a value
_log = structlog.get_logger(__name__)


def anonymize(
    text: str,
    findings: Iterable[Finding],
    *,
    mode: AnonymizeMode = "type",
    key: bytes | None = None,
) -> str:
    """`text` with each finding's span replaced by `{TYPE}` or, in token mode, a reversible
    `{TYPE~...}` token encrypted with `key` (32, 48 or 64 bytes)."""
    cipher = _cipher(key) if mode == "token" else None
    pieces: list[str] = []
    done = 0
    for start, end, kind in _merged(findings, len(text)):
        pieces.append(text[done:start])
        pieces.append(f"{{{kind}}}" if cipher is None else _token(cipher, kind, text[start:end]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def deanonymize(text: str, key: bytes) -> str:
    """`text` with the tokens made under `key` turned back into their values; tokens that do not
    decrypt (another key, tampered) are left as they are and logged."""
    cipher = _cipher(key)
    rejected: list[str] = []

    def restore(match: re.Match[str]) -> str:
        value = _decrypt(cipher, match.group(1), match.group(2))
        if value is None:
            rejected.append(match.group(1))
            return match.group()
        return value

    restored = _TOKEN.sub(restore, text)
    if rejected:
        _log.warning("guardrails.deanonymize.rejected", count=len(rejected), types=rejected)
    return restored


def _cipher(key: bytes | None) -> AESSIV:
    if key is None or len(key) not in KEY_SIZES:
        raise ValueError("token anonymization needs a key of 32, 48 or 64 bytes")
    return AESSIV(key)


def _merged(findings: Iterable[Finding], length: int) -> list[tuple[int, int, str]]:
    """Non-empty spans (clamped to the text) with overlapping ones merged, in text order; a
    merged span takes the type of its longest finding."""
    spans = sorted((max(f.start, 0), min(f.end, length), f.type) for f in findings)
    merged: list[tuple[int, int, str]] = []
    longest: list[int] = []  # length of the finding that named each merged span
    for start, end, kind in spans:
        if start >= end:
            continue
        if merged and start < merged[-1][1]:
            first, last, name = merged[-1]
            if end - start > longest[-1]:
                name, longest[-1] = kind, end - start
            merged[-1] = (first, max(last, end), name)
        else:
            merged.append((start, end, kind))
            longest.append(end - start)
    return merged


def _token(cipher: AESSIV, kind: str, value: str) -> str:
    if re.fullmatch(_KIND, kind) is None:
        raise ValueError(f"{kind!r} cannot name a token (upper-case letters, digits and _)")
    sealed = cipher.encrypt(value.encode("utf-8"), [kind.encode("ascii")])
    return f"{{{kind}~{base64.urlsafe_b64encode(sealed).rstrip(b'=').decode('ascii')}}}"


def _decrypt(cipher: AESSIV, kind: str, encoded: str) -> str | None:
    try:
        sealed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return cipher.decrypt(sealed, [kind.encode("ascii")]).decode("utf-8")
    except (InvalidTag, ValueError, binascii.Error):
        return None
