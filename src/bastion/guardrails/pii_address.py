"""Street addresses for the PII detector: deterministic rules, no gazetteer.

An address starts at a house number followed by a street name (capitalised words, or words with
a street suffix: "24 Clarke Avenue", "6750 Koskikatu 25", "12 rue de la Paix"), a military or
post-office box ("PSC 4355, Box 4187", "PO Box 12"), or a unit ("Apt. 805", "Suite 464"). It
runs on over a unit, the capitalised words and postcode that follow on the same line
("... Suite 215 NUNGATTA Australia"), and up to four short lines that look like a city, state,
country or postcode line. A street name is scored by its evidence: a street suffix, a house
number after the name (the European order), a unit, a cue word before it ("address", "lives
at", "ship to"). UK postcodes are reported on their own.

All word lists here are written for this module (suffixes and unit words, not place names).
Each rule is anchored on a digit or a unit word, with bounded repetition, so the work is linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["find_addresses"]

_WORD = r"[^\W\d_][\w'\u2019.-]{0,30}"
# A house number (one or two: "9554 62 Rue Gafsa") before a word.
_HEAD = re.compile(r"(?<![\w.,/:+-])\d{1,6}[A-Za-z]?(?:[ \t]+\d{1,6}[A-Za-z]?)?[ \t]+(?=[^\W\d_])")
_TOKEN = re.compile(rf"[ \t]*({_WORD}|\d{{1,6}}[A-Za-z]?\.?(?![\w-]))")
_UNIT_WORDS = r"(?:apt|apartment|suite|ste|unit|flat|room|floor|fl|bldg|building|box|#)"
_UNIT = re.compile(
    rf"[ \t]*,?[ \t]*(?:\n[ \t>?*-]*)?{_UNIT_WORDS}\.?[ \t]*(?:no\.?[ \t]*)?\d{{1,5}}[A-Za-z]?"
    r"(?![\w-])",
    re.IGNORECASE,
)
_STANDALONE_UNIT = re.compile(
    r"(?<![\w])(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?[ \t]*(?:No\.?[ \t]*)?\d{1,5}[A-Za-z]?"
    r"(?![\w-])"
)
_BOX = re.compile(
    r"(?<![\w])(?:(?:PSC|Unit|CMR)[ \t]+\d{1,5},?[ \t]+Box[ \t]+\d{1,5}|"
    r"P\.?[ \t]?O\.?[ \t]*Box[ \t]+\d{1,6}|(?:USNS|USNV|USS|USCGC)[ \t]+[A-Z][a-z]+)(?![\w-])"
)
_UK_POSTCODE = re.compile(r"(?<![\w])[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[ABD-HJLNP-UW-Z]{2}(?!\w)")
# The rest of a line after the street (city, state, country, postcode), and a whole following
# line of that kind; a line may start with quoting marks.
_PLACE_PART = (
    r"(?>[^\W\d_][\w'\u2019.-]{0,30}|\d{3,6}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|"
    r"\([^()\n]{1,30}\))(?![\w'\u2019-])"
)
_SEPARATOR = r"(?:[ \t]*,[ \t]*|[ \t]+)"
_SAME_LINE = re.compile(rf"(?:{_SEPARATOR}{_PLACE_PART}){{1,6}}")
_NEXT_LINE = re.compile(
    rf"[ \t]*\n(?:[ \t]*\n)?[ \t>?*-]*,?[ \t]*{_PLACE_PART}(?:{_SEPARATOR}{_PLACE_PART}){{0,4}}"
    r"[ \t]*(?=\n|$)"
)
_CUE = re.compile(
    r"(?:address|addr|live[sd]? (?:at|on|in)|living at|located at|reside[sd]? at|meet me at|"
    r"ship(?:ped)? to|send (?:it|them) to|deliver(?:ed)? to|moved to|arrived at|based at|"
    r"office at|find us at|visit us at|it's in|it is in|mail to)[\s:,]*$",
    re.IGNORECASE,
)
_SUFFIXES_TEXT = (
    "street st str road rd avenue ave av drive dr lane ln boulevard blvd way court ct place pl "
    "square sq terrace ter close crescent cres parkway pkwy highway hwy circle cir trail trl row "
    "hill park gardens grove mews walk alley plaza loop pike route path green creek ridge view "
    "heights junction ferry port mill springs point points shoals ranch village vista valley "
    "estates crossing pass run turnpike expressway freeway causeway quay wharf embankment "
    "rue via viale vicolo piazza piazzetta largo corso calle avenida paseo praça rua travessa "
    "strasse straße weg gasse platz allee ring damm ufer chaussee laan straat gracht plein "
    "kade vej gade vei veien gate gata gatan väg vägen katu tie kuja polku tér utca út körút "
    "ulica ul náměstí námestie trg cesta odos leoforos"
)
_SUFFIXES = frozenset(_SUFFIXES_TEXT.split())
_SUFFIX_ENDINGS = (
    "strasse",
    "straße",
    "gasse",
    "weg",
    "platz",
    "allee",
    "straat",
    "laan",
    "gatan",
    "vägen",
    "veien",
    "katu",
    "tie",
    "vej",
    "gade",
    "utca",
    "tér",
    "ulica",
)
_PARTICLES_TEXT = (
    "de del della di da dos das do du la le les des van von der den ter het el al of the "
    "und y e i sur rue via str str. rkp. u. ul."
)
_PARTICLES = frozenset(_PARTICLES_TEXT.split())
_MAX_WORDS = 6
_MAX_LINES = 4


def _is_suffix(word: str) -> bool:
    lowered = word.lower().rstrip(".")
    return lowered in _SUFFIXES or lowered.endswith(_SUFFIX_ENDINGS)


def _street_words(text: str, pos: int) -> tuple[int, list[str], bool]:
    """From `pos`: the end of the street name, its words, and whether a house number follows."""
    words: list[str] = []
    end = pos
    while len(words) < _MAX_WORDS:
        match = _TOKEN.match(text, end)
        if match is None:
            break
        token = match.group(1)
        if token[0].isdigit():
            if words:
                return match.end(), words, True
            break
        suffix_allowed = _is_suffix(token) and not any(_is_suffix(word) for word in words)
        if not (token[0].isupper() or token.lower() in _PARTICLES or suffix_allowed):
            break
        words.append(token)
        end = match.end()
    return end, words, False


def _extend(text: str, end: int) -> int:
    """`end` moved over a unit, the rest of the line if it names a place, and place lines."""
    unit = _UNIT.match(text, end)
    if unit is not None:
        end = unit.end()
    same = _SAME_LINE.match(text, end)
    if same is not None and _looks_like_place(same.group()):
        end = same.end()
    for _ in range(_MAX_LINES):
        line = _NEXT_LINE.match(text, end)
        if line is None or len(line.group()) > 60 or not _looks_like_place(line.group()):
            break
        end = line.end()
    return end


def _looks_like_place(part: str) -> bool:
    words = re.findall(r"[^\W\d_][\w'\u2019.-]*", part)
    return all(word[0].isupper() or word.lower() in _PARTICLES for word in words)


def _score(text: str, start: int, words: list[str], number_after: bool, has_unit: bool) -> float:
    score = 0.3
    if any(_is_suffix(word) for word in words):
        score += 0.3
    if number_after:
        score += 0.25
    if has_unit:
        score += 0.25
    if _CUE.search(text[max(0, start - 40) : start]):
        score += 0.25
    return min(score, 0.95)


def _streets(text: str) -> Iterator[tuple[int, int, float]]:
    for head in _HEAD.finditer(text):
        start = head.start()
        end, words, number_after = _street_words(text, head.end())
        if not words or not (words[0][0].isupper() or _is_suffix(words[0])):
            continue
        has_unit = _UNIT.match(text, end) is not None
        score = _score(text, start, words, number_after, has_unit)
        if score >= 0.5:
            yield start, _extend(text, end), score


def find_addresses(text: str) -> list[tuple[int, int, float]]:
    """(start, end, score) of the addresses in `text`; they may overlap."""
    found = list(_streets(text))
    for match in _BOX.finditer(text):
        found.append((match.start(), _extend(text, match.end()), 0.85))
    for match in _STANDALONE_UNIT.finditer(text):
        found.append((match.start(), match.end(), 0.55))
    for match in _UK_POSTCODE.finditer(text):
        found.append((match.start(), match.end(), 0.6))
    return found
