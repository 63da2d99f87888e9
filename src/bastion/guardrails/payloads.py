"""Hidden payloads: what the engine scans besides the text as written.

- `decoded_payloads(text)` finds runs of base64 (standard or URL-safe) and hex that decode to
  readable UTF-8 text, so that an instruction or a card number sent encoded is scanned like
  plain text. A run must be long enough to hold a sentence (`MIN_ENCODED_CHARS`), and the
  decoded bytes must be mostly printable; at most `MAX_PAYLOADS` runs are decoded, and nested
  encodings are followed `MAX_DEPTH` levels deep. Each payload keeps the span of its encoded
  run in the input, where its findings are reported.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MAX_DEPTH",
    "MAX_PAYLOADS",
    "MIN_ENCODED_CHARS",
    "Payload",
    "decoded_payloads",
]

MIN_ENCODED_CHARS = 24  # 18 bytes of base64, 12 of hex: shorter runs are ids and hashes' tails
MAX_PAYLOADS = 32
MAX_DEPTH = 2
_PRINTABLE_SHARE = 0.9

# One pass finds both: a run of base64 (standard or URL-safe) characters, which a hex run also
# is; `_runs` tells them apart.
_ENCODED = re.compile(rf"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{{{MIN_ENCODED_CHARS},}}={{0,2}}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True, slots=True)
class Payload:
    """Text decoded from an encoded run at `start:end` of the scanned text."""

    start: int
    end: int
    encoding: str  # "base64" or "hex"
    text: str


def decoded_payloads(text: str, *, depth: int = MAX_DEPTH) -> list[Payload]:
    """Readable texts hidden as base64 or hex in `text`, with the spans of their encodings."""
    found: list[Payload] = []
    _collect(text, None, depth, found)
    return found


def _collect(text: str, outer: tuple[int, int] | None, depth: int, found: list[Payload]) -> None:
    for encoding, run in _runs(text):
        if len(found) >= MAX_PAYLOADS:
            return
        decoded = _decode(run.group(), encoding)
        if decoded is None:
            continue
        # A payload inside a payload is reported at the outermost encoded run.
        where = run.span() if outer is None else outer
        found.append(Payload(where[0], where[1], encoding, decoded))
        if depth > 1:
            _collect(decoded, where, depth - 1, found)


def _runs(text: str) -> Iterator[tuple[str, re.Match[str]]]:
    for match in _ENCODED.finditer(text):
        yield ("hex" if _HEX.fullmatch(match.group()) else "base64"), match


def _decode(run: str, encoding: str) -> str | None:
    try:
        if encoding == "hex":
            raw = binascii.unhexlify(run)
        else:
            padded = run + "=" * (-len(run) % 4)
            urlsafe = "-" in run or "_" in run
            raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(padded)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if not decoded:
        return None
    printable = sum(1 for ch in decoded if ch.isprintable() or ch in "\t\n\r")
    return decoded if printable >= _PRINTABLE_SHARE * len(decoded) else None
