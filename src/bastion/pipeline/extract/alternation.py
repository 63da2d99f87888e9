"""Fast named alternations: many vocabularies in one regex, dispatched on their first letter.

The extractor scans text with single regexes that hold whole vocabularies as named groups
(`(?P<invoice_number>...)|(?P<due_date>...)|...`), so that one pass finds every label. Python's
regex engine tries each alternative in turn at every candidate position; it skips one that opens
with a literal or a class by peeking at one character, but enters (saving and restoring its
marks) one that opens with a group. `named_alternation` compiles the same vocabularies so that
every branch ends with an empty named group instead of being wrapped in one, and the branches
that start with a literal letter sit behind that letter (`i(?:nvoice...(?P<b2>)|...)|d(?:...)`).
Leading groups are distributed first (`(?:tax\\s+)?invoice` becomes `tax\\s+invoice|invoice`),
and so are leading classes of a few letters (`[üu]bertrag` becomes `übertrag|ubertrag`), so that
most branches start with a letter.

The rewrite keeps the meaning exactly: Python alternation is ordered (the first alternative that
matches wins), distributing a leading group from the left keeps that order, and two alternatives
that start with different literal letters never match at the same position, so regrouping a run
of literal-first alternatives by letter (keeping their order within a letter) changes nothing.
Alternatives that do not start with a literal keep their place between such runs.

Match positions and `group(0)` are those of the plain alternation; `lastgroup` names a branch
(its empty group, the last one closed), which `names` maps back to its vocabulary. The sources
must be case-sensitive (the callers match lower-cased text) and must not capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["NamedAlternation", "named_alternation", "split_alternatives"]

_SPECIAL = set("\\.^$*+?{}[]|()")
_QUANTIFIERS = set("*+?{")
_MAX_EXPANSION = 256  # alternatives one source may grow into by distribution
# A leading class of two to four distinct letters ("[üu]bertrag", "[àa] payer").
_LETTER_CLASS = re.compile(r"\[([^\W\d_]{2,4})\]")


@dataclass(frozen=True)
class NamedAlternation:
    pattern: re.Pattern[str]
    names: dict[str, str]  # branch group name -> vocabulary name

    def name(self, match: re.Match[str]) -> str | None:
        """The vocabulary that matched, from `match.lastgroup`."""
        group = match.lastgroup
        return None if group is None else self.names[group]


def named_alternation(prefix: str, vocabularies: Sequence[tuple[str, str]]) -> NamedAlternation:
    """`prefix(?:(?P<name>source)|...)` for `vocabularies`, compiled for first-letter dispatch."""
    items: list[tuple[str, str]] = []  # (vocabulary, alternative), in order
    for name, source in vocabularies:
        for alternative in _expand(source):
            items.append((name, alternative))
    names: dict[str, str] = {}
    segments: list[str] = []
    run: dict[str, list[str]] = {}  # first letter -> branches, in order

    def flush() -> None:
        for letter, rests in run.items():
            segments.append(f"{re.escape(letter)}(?:{'|'.join(rests)})")
        run.clear()

    for k, (name, alternative) in enumerate(items):
        group = f"b{k}"
        names[group] = name
        # The group that names the branch is empty and comes last: a branch that opens with a
        # group is entered (and its marks saved and restored) before it can fail, one that
        # opens with a literal or a class is skipped at a glance.
        marker = f"(?P<{group}>)"
        if _literal_first(alternative):
            run.setdefault(alternative[0], []).append(alternative[1:] + marker)
        else:
            flush()
            segments.append(alternative + marker)
    flush()
    pattern = re.compile(f"{prefix}(?:{'|'.join(segments)})")
    assert pattern.groups == len(items), "vocabularies must not capture"
    return NamedAlternation(pattern, names)


def _literal_first(alternative: str) -> bool:
    return (
        bool(alternative)
        and alternative[0] not in _SPECIAL
        and alternative[1:2] not in _QUANTIFIERS
    )


def _expand(source: str) -> list[str]:
    """The top-level alternatives of `source`, leading groups distributed where that is exact."""
    out: list[str] = []
    pending = split_alternatives(source)
    while pending:
        alternative = pending.pop(0)
        grown = _distribute_head(alternative)
        if grown is None or len(out) + len(pending) + len(grown) > _MAX_EXPANSION:
            out.append(alternative)
        else:
            pending[:0] = grown
    return out


def _distribute_head(alternative: str) -> list[str] | None:
    """`(?:A|B)X` as [AX, BX], `(?:A|B)?X` as [AX, BX, X] and `[ab]X` (a class of a few plain
    letters) as [aX, bX]; None when the head is anything else (a literal, another class, a
    lookaround, a group repeated more than once)."""
    head = _LETTER_CLASS.match(alternative)
    if head:
        rest = alternative[head.end() :]
        if rest[:1] not in _QUANTIFIERS:
            return [letter + rest for letter in head.group(1)]
    if not alternative.startswith("(?:"):
        return None
    end = _closing(alternative, 0)
    if end is None:
        return None
    body, after = alternative[3:end], alternative[end + 1 :]
    optional = after.startswith("?") and after[1:2] not in ("?", "+")
    if optional:
        after = after[1:]
    elif after[:1] in _QUANTIFIERS:
        return None
    heads = split_alternatives(body)
    return [head + after for head in heads] + ([after] if optional else [])


def _closing(text: str, start: int) -> int | None:
    """Index of the ")" closing the group opened at `start`."""
    depth = 0
    for i, ch in _syntax(text, start):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _syntax(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """The characters of `text` from `start` that are regex syntax: not escaped, not inside a
    character class (a class is yielded as its "[")."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        yield i, ch
        i = _class_end(text, i) + 1 if ch == "[" else i + 1


def _class_end(text: str, start: int) -> int:
    """Index of the "]" closing the character class opened at `start`."""
    i = start + 1
    if text[i : i + 1] == "^":
        i += 1
    if text[i : i + 1] == "]":
        i += 1  # a "]" first in a class is a literal
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "]":
            return i
        i += 1
    raise ValueError(f"unterminated character class in {text!r}")


def split_alternatives(source: str) -> list[str]:
    """`source` split at its top-level "|" (not inside a group, a class or an escape)."""
    parts: list[str] = []
    depth = 0
    begin = 0
    for i, ch in _syntax(source):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(source[begin:i])
            begin = i + 1
    parts.append(source[begin:])
    return parts
