"""Word filters: the managed profanity list and a policy's own words and phrases.

`find_words(text, words, profanity)` finds whole words and phrases, case-insensitively, on the
text folded by `normalize.fold` (look-alike letters, accents and invisible characters do not
hide a word), with spans into the input: an entry matches where no letter, digit or `_` touches
it on either side, and the words of a phrase match across any whitespace. A finding's type is
`PROFANITY` (the managed list, `models/profanity.txt`) or `CUSTOM_WORD`.

How it stays linear: the folded text's set of words is taken once (one `findall`), and a text
that holds no word an entry starts with is done. Otherwise its words are walked once, and at each
word that starts an entry one compiled expression (the entries starting with that word, longest
first) is tried, anchored there. The rare entries that start with another character (`@acme`)
are looked for with one expression over the text. Entries are grouped and compiled once per
word list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from bastion.guardrails.normalize import Folded, fold
from bastion.guardrails.types import Finding

__all__ = ["CUSTOM_WORD", "DETECTOR", "PROFANITY", "find_words", "profanity_list"]

PROFANITY = "PROFANITY"
CUSTOM_WORD = "CUSTOM_WORD"
DETECTOR = "lexicon"

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """A word list compiled: one expression per lead word for the entries that start with it,
    and one for the entries that start with another character (looked for everywhere)."""

    by_lead: dict[str, re.Pattern[str]]
    others: re.Pattern[str] | None


@cache
def profanity_list() -> tuple[str, ...]:
    """The managed profanity list, as written in `models/profanity.txt`."""
    resource = resources.files("bastion.guardrails").joinpath("models", "profanity.txt")
    lines = (line.split("#", 1)[0].strip() for line in resource.read_text("utf-8").splitlines())
    return tuple(line for line in lines if line)


@lru_cache(maxsize=64)
def _lexicon(entries: tuple[str, ...]) -> _Lexicon:
    by_lead: dict[str, list[str]] = {}
    others: list[str] = []
    for entry in _normalized(entries):
        lead = _WORD.match(entry)
        if lead is None:
            others.append(entry)
        else:
            by_lead.setdefault(lead.group(), []).append(entry)
    return _Lexicon(
        {lead: _alternation(group) for lead, group in by_lead.items()},
        _alternation(others) if others else None,
    )


def _normalized(entries: Iterable[str]) -> set[str]:
    """Entries spelled the way the folded text is matched: folded, lower case, single-spaced."""
    return {" ".join(fold(entry).text.lower().split()) for entry in entries} - {""}


def _expression(entry: str) -> str:
    """An entry as an expression whose words match across any whitespace, and that no word
    character may touch on either side (`c++` is not in `c++11`, nor `@acme` in `x@acme`)."""
    return r"(?<!\w)" + r"\s+".join(re.escape(word) for word in entry.split(" ")) + r"(?!\w)"


def _alternation(entries: Iterable[str]) -> re.Pattern[str]:
    """One expression for the entries; the longest entry wins where several start alike."""
    ordered = sorted(entries, key=len, reverse=True)
    return re.compile("|".join(_expression(entry) for entry in ordered), re.IGNORECASE)


def _matches(folded: Folded, present: set[str], lexicon: _Lexicon) -> Iterator[re.Match[str]]:
    """The entries in the folded text: at each word that starts some entry, the longest one
    that matches there; then the entries that start with another character."""
    text = folded.text
    if present & lexicon.by_lead.keys():
        end = 0
        for word in _WORD.finditer(text):
            expression = lexicon.by_lead.get(word.group().lower())
            if expression is None or word.start() < end:
                continue
            match = expression.match(text, word.start())
            if match is not None:
                end = match.end()
                yield match
    if lexicon.others is not None:
        yield from lexicon.others.finditer(text)


def _find(folded: Folded, present: set[str], lexicon: _Lexicon, kind: str) -> list[Finding]:
    return [
        Finding(kind, *folded.span(match.start(), match.end()), score=1.0, detector=DETECTOR)
        for match in _matches(folded, present, lexicon)
    ]


def find_words(text: str, words: Sequence[str], profanity: bool) -> list[Finding]:
    """The custom `words` and phrases (`CUSTOM_WORD`) and, with `profanity`, the managed list's
    entries (`PROFANITY`) in `text`, whole-word and case-insensitively, in text order."""
    if not text or not (words or profanity):
        return []
    if isinstance(words, str):  # one word, not a sequence of letters
        words = (words,)
    folded = fold(text)
    present = set(_WORD.findall(folded.text.lower()))
    findings = _find(folded, present, _lexicon(tuple(words)), CUSTOM_WORD) if words else []
    if profanity:
        findings += _find(folded, present, _lexicon(profanity_list()), PROFANITY)
    return sorted(findings, key=lambda finding: (finding.start, -finding.end))
