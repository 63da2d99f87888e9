"""Short answers without a model: the answer type a question asks for, and the span of an
evidence sentence that fits it.

Answer type, from the question's wording (first rule that matches):
- `number`: "how many", "how much", "what number/amount/percentage";
- `date`: "when", "what/which year", "what date", "in what year", "what century";
- `place`: "where", "what/which city/country/state/town/county/province/location/place";
- `person`: "who", "whom", "whose";
- `yesno`: the question starts with an auxiliary verb ("is", "are", "was", "did", "does", "can",
  "has", ...);
- `entity`: anything else ("what", "which").

Span extraction (`extract_answer`), over evidence sentences best first; the first sentence with a
fitting span gives the answer, and spans made only of the question's own words are skipped (an
answer is what the question does not already say):
- `date`: a full date ("8 June 1951", "April 5, 1975"), else a month and year, else a
  century ("19th century"), else a year (1000-2099); only the year when the question asks for
  a year, only a century when it asks for a century, the sentence's last date first when it
  asks about a death;
- `number`: a number with an optional scale word and unit ("150 million", "6,000 people"; a unit
  the question names is dropped), or a number word ("twelve");
- `person`: a run of capitalised words (two or more, initials and "Jr." allowed);
- `place`: a capitalised run after "in", "at", "from", "near", "based in", "located in";
  a "City, State" pair is kept whole;
- `entity`: a quoted title, else a capitalised run (not a lone month, not a lone first word of
  the sentence), else the words after "is a/an/the"
  up to the next punctuation;
- `yesno`: "yes" when every key term of the question is found in the evidence, else "no".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from bastion.research.text import AUXILIARIES, key_terms, words

__all__ = ["AnswerType", "answer_type", "extract_answer", "extract_span", "first_year", "years"]

AnswerType = Literal["number", "date", "place", "person", "yesno", "entity"]

_YES_NO_OPENERS = AUXILIARIES | {"shall", "may", "might"}
_PLACE_NOUNS = (
    "city|country|state|town|county|province|location|place|region|nation|continent|island"
    "|village|district|capital"
)
_NUMBER_Q = re.compile(r"\bhow (many|much)\b|\bwhat (number|amount|percentage)\b", re.I)
_DATE_Q = re.compile(
    r"^\s*when\b|\b(what|which) (year|date|century|decade)\b|\bwhen (was|were|did|is)\b", re.I
)
_PLACE_Q = re.compile(
    rf"^\s*where\b|\bwhere (is|was|are|were|did)\b|\b(what|which) ({_PLACE_NOUNS})\b", re.I
)
_PERSON_Q = re.compile(r"\b(who|whom|whose)\b", re.I)

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_MONTH_RE = re.compile(_MONTHS)
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_YEAR_ONLY = re.compile(rf"\b{_YEAR}\b")
_DATE_PATTERNS = (
    re.compile(rf"\b\d{{1,2}} (?:{_MONTHS})\.? {_YEAR}\b"),
    re.compile(rf"\b(?:{_MONTHS})\.? \d{{1,2}}, {_YEAR}\b"),
    re.compile(rf"\b(?:{_MONTHS}) {_YEAR}\b"),
    re.compile(r"\b\d{1,2}(?:st|nd|rd|th) century\b"),
    re.compile(rf"\b{_YEAR}\b"),
)
_NUMBER_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    "|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
    "|hundred|dozen"
)
_NUMBER_RE = re.compile(
    r"\b\d+(?:[.,]\d+)*(?: (?:million|billion|thousand|hundred|trillion))?"
    r"(?: [a-z]+)?(?=[\s,.;:)]|$)"
    rf"|\b(?:{_NUMBER_WORDS})\b",
    re.I,
)
_CAPITALISED = r"(?:[A-Z][\w'\u2019.-]*|[A-Z]\.)"
_CONNECTORS = r"(?:of|the|de|da|von|van|del|la|le|and|&)"
_NAME_RE = re.compile(rf"{_CAPITALISED}(?:,? (?:Jr\.|Sr\.)|(?: {_CONNECTORS})? {_CAPITALISED})*")
_PLACE_RE = re.compile(
    rf"\b(?:in|at|from|near|based in|located in|headquartered in) (?:the )?"
    rf"({_CAPITALISED}(?: {_CAPITALISED})*(?:, {_CAPITALISED}(?: {_CAPITALISED})*)?)"
)
_QUOTED_RE = re.compile(r"[\"\u201c]([^\"\u201d]{2,80})[\"\u201d]")
_DEFINITION_RE = re.compile(r"\b(?:is|was|are|were) (?:a|an|the) ([^,.;:()]{2,60})")
_SENTENCE_STARTERS = frozenset(
    [
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "it",
        "he",
        "she",
        "they",
        "his",
        "her",
        "its",
        "this",
        "that",
        "these",
        "those",
        "after",
        "before",
        "during",
        "when",
        "while",
        "as",
        "however",
        "from",
        "by",
        "for",
        "with",
        "of",
    ]
)


def years(text: str) -> list[int]:
    """Every year (1000-2099) named in `text`, in order."""
    return [int(year) for year in _YEAR_ONLY.findall(text)]


def first_year(text: str) -> str | None:
    """The first year named in `text`, or None."""
    match = _YEAR_ONLY.search(text)
    return match.group(0) if match else None


def answer_type(question: str) -> AnswerType:
    """The type of answer `question` asks for (see the module rules)."""
    if _NUMBER_Q.search(question):
        return "number"
    if _DATE_Q.search(question):
        return "date"
    if _PLACE_Q.search(question):
        return "place"
    if _PERSON_Q.search(question):
        return "person"
    first = words(question)[:1]
    if first and first[0] in _YES_NO_OPENERS:
        return "yesno"
    return "entity"


def _novel(span: str, question_terms: set[str]) -> bool:
    terms = key_terms(span)
    return bool(terms) and not set(terms) <= question_terms


def _trim_name(span: str) -> str:
    parts = span.split()
    while parts and parts[0].lower() in _SENTENCE_STARTERS:
        parts = parts[1:]
    while parts and parts[-1].lower() in {"of", "the", "and", "&", "de", "von", "van"}:
        parts = parts[:-1]
    name = re.sub(r"['\u2019]s$", "", " ".join(parts).rstrip(","))
    return (
        name[:-1] if name.endswith(".") and not re.search(r"\b[A-Z]\.$|Jr\.$|Sr\.$", name) else name
    )


def _spans(kind: AnswerType, sentence: str) -> list[str]:
    if kind == "date":
        for pattern in _DATE_PATTERNS:
            found = pattern.findall(sentence)
            if found:
                return list(found)
        return []
    if kind == "number":
        return [
            m.group(0) for m in _NUMBER_RE.finditer(sentence) if not re.fullmatch(_YEAR, m.group(0))
        ]
    if kind == "place":
        return [_trim_name(m.group(1)) for m in _PLACE_RE.finditer(sentence)]
    if kind == "person":
        names = [_trim_name(m.group(0)) for m in _NAME_RE.finditer(sentence)]
        return [n for n in names if len(n.split()) >= 2]
    quoted = _QUOTED_RE.findall(sentence)
    names = [_trim_name(m.group(0)) for m in _NAME_RE.finditer(sentence)]
    definitions = [d.strip() for d in _DEFINITION_RE.findall(sentence)]
    names = [n for n in names if n and (" " in n or not _MONTH_RE.fullmatch(n))]
    names = [n for n in names if " " in n or not sentence.startswith(n)]
    return [*quoted, *names, *definitions]


_CENTURY_Q = re.compile(r"\bcentury\b", re.I)
_DEATH_Q = re.compile(r"\b(die|died|dies|death)\b", re.I)


def _date_spans(question: str, sentence: str) -> list[str]:
    """The dates of `sentence` for `question`: only centuries when it asks for a century, and
    the last date first when it asks about a death ("(8 May 1901 - 5 April 1975)")."""
    if _CENTURY_Q.search(question):
        return _DATE_PATTERNS[3].findall(sentence)
    spans = _spans("date", sentence)
    return spans[::-1] if _DEATH_Q.search(question) else spans


def extract_span(kind: AnswerType, question: str, sentences: Sequence[str]) -> str | None:
    """The first span of type `kind` in `sentences` (best first) that says something the
    question does not; None when there is none."""
    question_terms = set(key_terms(question))
    for sentence in sentences:
        for span in _date_spans(question, sentence) if kind == "date" else _spans(kind, sentence):
            if (
                kind == "number"
                and " " in span
                and set(key_terms(span.rsplit(" ", 1)[1])) <= (question_terms)
            ):
                span = span.rsplit(" ", 1)[0]  # the unit the question names: "how many records"
            if _novel(span, question_terms):
                return span
    return None


_WHO_DID = re.compile(r"^\s*who\s+(\w+)\b", re.I)
_PARTICIPLES = {"wrote": "written", "sang": "sung", "drew": "drawn", "ran": "run", "took": "taken"}


def _agent(question: str, sentences: Sequence[str]) -> str | None:
    """For "Who designed X?": the name after "designed by" in the best sentence that has one
    (the doer of a passive sentence is the answer; other names there are not)."""
    match = _WHO_DID.match(question)
    if match is None:
        return None
    verb = match.group(1).lower()
    participle = _PARTICIPLES.get(verb, verb)
    if not (participle.endswith("ed") or verb in _PARTICIPLES or participle in ("built", "made")):
        return None
    by = re.compile(rf"\b{re.escape(participle)}\s+by\s+([^,;()]+)")
    for sentence in sentences:
        if found := by.search(sentence):
            names = [_trim_name(m.group(0)) for m in _NAME_RE.finditer(found.group(1))]
            names = [n for n in names if n]
            if names:
                return next((n for n in names if " " in n), names[0])
    return None


def extract_answer(question: str, sentences: Sequence[str]) -> str | None:
    """The short answer to `question` found in `sentences` (evidence, best first), typed by the
    question word; None when no sentence holds a fitting span."""
    kind = answer_type(question)
    if kind == "person" and (doer := _agent(question, sentences)) is not None:
        return doer
    if kind == "yesno":
        if not sentences:
            return None
        found = set(key_terms(" ".join(sentences)))
        return "yes" if set(key_terms(question)) <= found else "no"
    span = extract_span(kind, question, sentences)
    if span is not None and kind == "date" and re.search(r"\byear\b", question, re.I):
        span = _YEAR_ONLY.findall(span)[-1] if _YEAR_ONLY.search(span) else span
    if span is None and kind in ("person", "place"):
        span = extract_span("entity", question, sentences)
    return span
