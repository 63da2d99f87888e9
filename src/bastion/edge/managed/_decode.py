"""The decodings an attacker can hide a payload behind, undone before the detectors look.

`variants(value)` returns the lower-cased forms of one inspected value that the detectors all
share: the value itself, then (only when the value holds the character that introduces them)
percent-decoding repeated up to three times (including IIS-style ``%uXXXX``), HTML entity
decoding (with the entity names browsers accept in any case), backslash escapes (``\\xNN``,
``\\uNNNN``, octal), UTF-7 (``+ADw-``) and Unicode compatibility folding
(full-width dots and slashes become ``../``). NUL bytes are dropped. Every variant is bounded by
the size of the value, so the cost stays linear.
"""

from __future__ import annotations

import contextlib
import html
import re
import unicodedata
from urllib.parse import unquote

__all__ = ["variants"]

_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
_BACKSLASH = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u\{?([0-9a-fA-F]{4})\}?|([0-7]{3}))")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Entity names browsers accept in any letter case, which `html.unescape` leaves alone.
_LOOSE_ENTITY = re.compile(r"&(tab|newline|colon|lpar|rpar|sol|bsol|lt|gt|quot|apos);?", re.I)
_LOOSE_CHARS = {
    "tab": "\t",
    "newline": "\n",
    "colon": ":",
    "lpar": "(",
    "rpar": ")",
    "sol": "/",
    "bsol": "\\",
    "lt": "<",
    "gt": ">",
    "quot": '"',
    "apos": "'",
}
# Runs of whitespace are cut to their first character: every rule reads any run as one
# separator, and long runs would otherwise cost time in patterns with repeated \s*.
_WS_RUN = re.compile(r"\s{2,}")
_WS_HINTS = ("  ", "\n", "\r", "\t", "\x0b", "\x0c")
_UTF7 = re.compile(r"\+[A-Za-z0-9+/]{2,}-")
# Overlong UTF-8 and other invalid sequences that some servers still decode to ASCII.
_OVERLONG = {
    "%c0%ae": ".",
    "%c0%2e": ".",
    "%e0%80%ae": ".",
    "%c0%af": "/",
    "%c1%9c": "\\",
    "%c0%5c": "\\",
    "%c1%1c": "/",
    "%c0%80": "",
}
_OVERLONG_RE = re.compile("|".join(re.escape(key) for key in _OVERLONG), re.IGNORECASE)


def _percent_u(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _backslash(match: re.Match[str]) -> str:
    hex_byte, hex_unit, octal = match.groups()
    if hex_byte:
        return chr(int(hex_byte, 16))
    if hex_unit:
        return chr(int(hex_unit, 16))
    return chr(int(octal, 8) & 0xFF)


def _url_decode(value: str) -> str:
    if "%c" in value or "%C" in value or "%e0" in value or "%E0" in value:
        value = _OVERLONG_RE.sub(lambda m: _OVERLONG[m.group(0).lower()], value)
    if "%u" in value or "%U" in value:
        value = _PERCENT_U.sub(_percent_u, value)
    return unquote(value, errors="replace")


def variants(value: str) -> tuple[str, ...]:
    """The distinct lower-cased decodings of `value` worth inspecting (the value first)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    forms = [value]
    if "+" in value and " " not in value:
        value = value.replace("+", " ")
        forms.append(value)
    current = value
    for _ in range(3):
        if "%" not in current:
            break
        decoded = _url_decode(current)
        if decoded == current:
            break
        forms.append(decoded)
        current = decoded
    if "&" in current:
        unescaped = _LOOSE_ENTITY.sub(lambda m: _LOOSE_CHARS[m.group(1).lower()], current)
        unescaped = html.unescape(unescaped)
        if unescaped != current:
            forms.append(unescaped)
            current = unescaped
            if "%" in current:
                forms.append(_url_decode(current))
    if "\\" in current:
        unescaped = _BACKSLASH.sub(_backslash, current)
        if unescaped != current:
            forms.append(unescaped)
            current = unescaped
    if "+" in current and _UTF7.search(current):
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            forms.append(current.encode("ascii").decode("utf-7"))
    if _NON_ASCII.search(current):
        folded = unicodedata.normalize("NFKC", current)
        if folded != current:
            forms.append(folded)
    seen: dict[str, None] = {}
    for form in forms:
        form = form.replace("\x00", "").lower()
        if any(space in form for space in _WS_HINTS):
            form = _WS_RUN.sub(_first_char, form)
        seen.setdefault(form, None)
    return tuple(seen)


def _first_char(match: re.Match[str]) -> str:
    return match.group(0)[0]
