"""Text folding for the guardrails: one spelling per word, with offsets back to the input.

`fold(text)` returns the text the detectors match against: zero-width, bidi and other invisible
characters removed; compatibility forms spelled plainly (NFKD: full-width letters, ligatures,
mathematical bold and script letters, circled and squared letters, non-breaking and other
spaces); accents dropped (`précédentes` is `precedentes`, `Einschränkungen` is
`Einschrankungen`); the Cyrillic and Greek letters drawn like Latin ones mapped to those; and
Unicode tag characters (invisible "ASCII smuggling") mapped to the ASCII they encode. Only folds
that end in ASCII letters, digits, punctuation or spaces are made (`½`, `µ` or `…` stay), and
case is left alone.

Folding is per character and linear, in chunks: ASCII is kept as it is, Windows-1252 text
(Western European business text) goes through `bytes.translate`, a chunk with nothing to fold
is kept, and only the rest goes through `str.translate`. `Folded.span()` maps a span of the
folded text back to the input.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate

__all__ = ["Folded", "fold"]

_CHUNK = 1024  # input characters folded at a time; mapping an offset back folds at most one

# Characters that render as nothing (or only steer the layout): removed.
_INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, (non-)joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE001F),  # tag characters without an ASCII counterpart
    (0xE007F, 0xE007F),  # cancel tag
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
# Blocks folded through NFKD with combining marks dropped.
_DECOMPOSED: tuple[tuple[int, int], ...] = (
    (0x00A0, 0x024F),  # Latin-1 supplement, Latin extended A and B
    (0x0300, 0x036F),  # combining diacritical marks
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x1E00, 0x1EFF),  # Latin extended additional
    (0x2000, 0x24FF),  # spaces, super/subscripts, letterlike, number forms, enclosed
    (0x3000, 0x3000),  # ideographic space
    (0xFE20, 0xFE2F),
    (0xFF00, 0xFFEF),  # full-width forms
    (0x1D400, 0x1D7FF),  # mathematical alphanumerics
    (0x1F100, 0x1F1FF),  # enclosed alphanumeric supplement
)
# The one fold that lengthens the text: ligatures (ﬁ is fi), common in PDF text.
_LIGATURES = (0xFB00, 0xFB06)
_LIGATURE = re.compile("[\ufb00-\ufb06]")
_TAG = re.compile("[\U000e0020-\U000e007e]")
# Cyrillic and Greek letters drawn like Latin ones (the usual homoglyph substitutions).
_LOOKALIKES = dict(
    zip(
        "АВЕЅІЈКМНОРСТХУаеѕіјорсхуԁԛԝӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοριυν",  # noqa: RUF001
        "ABESIJKMHOPCTXYaesijopcxydqwlABEZHIKMNOPTYXaopiuv",
        strict=True,
    )
)


def _plain(char: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", char) if unicodedata.category(c) != "Mn"
    )


@cache
def _table() -> dict[int, str]:
    """Code point -> its fold ("" removes it); characters not in the table stay."""
    table: dict[int, str] = {}
    for low, high in _DECOMPOSED:
        for code in range(low, high + 1):
            plain = _plain(chr(code))
            if plain == "" or (len(plain) == 1 and plain.isascii()):
                table[code] = plain
    for code in range(_LIGATURES[0], _LIGATURES[1] + 1):
        table[code] = _plain(chr(code))
    for char, latin in _LOOKALIKES.items():
        table[ord(char)] = latin
    for code in range(0xE0020, 0xE007F):
        table[code] = chr(code - 0xE0000)
    for low, high in _INVISIBLE:
        for code in range(low, high + 1):
            table[code] = ""
    return table


@cache
def _foldable() -> re.Pattern[str]:
    """A class of a few ranges that holds every character the table folds (and some others),
    so that a chunk it does not match needs no folding (Chinese or Japanese text, say)."""
    ranges: list[list[int]] = []
    for code in sorted(_table()):
        if ranges and code - ranges[-1][1] <= 256:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]")


@cache
def _invisible() -> re.Pattern[str]:
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _INVISIBLE) + "]+")


@cache
def _cp1252() -> tuple[bytes, bytes]:
    """The table as a `bytes.translate` table and delete set for Windows-1252 bytes."""
    table = bytearray(range(256))
    delete = bytearray()
    for byte in range(128, 256):
        try:
            char = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:
            continue
        folded = _table().get(ord(char))
        if folded == "":
            delete.append(byte)
        elif folded is not None:
            table[byte] = ord(folded)  # every fold of a cp1252 character is one ASCII character
    return bytes(table), bytes(delete)


@dataclass(frozen=True, slots=True)
class Folded:
    """The folded text and the way back from its offsets to the input's."""

    text: str
    source: str
    starts: tuple[int, ...] = ()  # folded offset of each chunk; empty when text is source
    shifted: frozenset[int] = frozenset()  # chunks not folded 1:1
    revealed: bool = False  # the input spells text in tag characters
    # Chunk -> folded length of each prefix of it, made when an offset in the chunk is mapped.
    _ends: dict[int, list[int]] = field(default_factory=dict, compare=False, repr=False)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The input span of the folded span [start, end)."""
        first = self._original(start)
        if end <= start:
            return first, first
        return first, max(first, self._original(end - 1) + 1)

    def _original(self, index: int) -> int:
        if index <= 0 or not self.starts:
            return min(max(index, 0), len(self.source))
        if index >= len(self.text):
            return len(self.source)
        chunk = bisect_right(self.starts, index) - 1
        base = chunk * _CHUNK
        want = index - self.starts[chunk]
        if chunk not in self.shifted:
            return base + want
        ends = self._ends.get(chunk)
        if ends is None:
            table = _table()
            piece = self.source[base : base + _CHUNK]
            ends = self._ends[chunk] = list(accumulate(len(table.get(ord(c), c)) for c in piece))
        return base + bisect_right(ends, want)  # the first character whose fold reaches past it


def fold(text: str) -> Folded:
    """Fold `text` for matching (see the module docstring)."""
    if text.isascii():
        return Folded(text, text)
    pieces: list[str] = []
    starts: list[int] = []
    shifted: list[int] = []
    revealed = False
    length = 0
    for number, base in enumerate(range(0, len(text), _CHUNK)):
        piece, exact, tags = _fold_chunk(text[base : base + _CHUNK])
        if not exact:
            shifted.append(number)
        revealed = revealed or tags
        starts.append(length)
        pieces.append(piece)
        length += len(piece)
    return Folded("".join(pieces), text, tuple(starts), frozenset(shifted), revealed)


def _fold_chunk(chunk: str) -> tuple[str, bool, bool]:
    """The folded chunk; whether it was folded character for character; whether it holds tag
    characters. Windows-1252 text takes the fast way, once invisible characters are gone."""
    if chunk.isascii():
        return chunk, True, False
    try:
        encoded = chunk.encode("cp1252")
    except UnicodeEncodeError:
        if _foldable().search(chunk) is None:
            return chunk, True, False
        visible = _invisible().sub("", chunk)
        try:
            encoded = visible.encode("cp1252")
        except UnicodeEncodeError:
            piece = visible.translate(_table())
            exact = len(piece) == len(chunk) and _LIGATURE.search(visible) is None
            return piece, exact, _TAG.search(visible) is not None
    table, delete = _cp1252()
    piece = encoded.translate(table, delete).decode("cp1252")
    return piece, len(piece) == len(chunk), False
