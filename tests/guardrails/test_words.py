"""Word filters: whole-word, case-insensitive matching of custom words, phrases and the managed
profanity list, on folded text (look-alikes and invisible characters do not hide a word), with
spans into the input; and linear time on megabytes of text."""

from __future__ import annotations

import time

import pytest

from bastion.guardrails.types import Finding
from bastion.guardrails.words import (
    CUSTOM_WORD,
    DETECTOR,
    PROFANITY,
    find_words,
    profanity_list,
)


def _found(text: str, words: tuple[str, ...] = (), profanity: bool = False) -> list[str]:
    return [text[f.start : f.end] for f in find_words(text, words, profanity)]


def test_custom_words_are_whole_words_in_any_case() -> None:
    text = "Bluebird ships today; the BLUEBIRD team, not bluebirds or bluebird_v2."
    assert _found(text, ("bluebird",)) == ["Bluebird", "BLUEBIRD"]


def test_phrases_match_across_any_whitespace() -> None:
    text = "See Project\n   Nightingale and project\u00a0nightingale, not projects nightingale."
    assert _found(text, ("project nightingale",)) == [
        "Project\n   Nightingale",
        "project\u00a0nightingale",
    ]


def test_findings_carry_type_detector_score_and_spans() -> None:
    text = "Codename bluebird: what the fuck."
    findings = find_words(text, ["codename bluebird"], profanity=True)
    assert findings == [
        Finding(CUSTOM_WORD, 0, 17, 1.0, DETECTOR),
        Finding(PROFANITY, 28, 32, 1.0, DETECTOR),
    ]
    assert DETECTOR == "lexicon"
    assert findings[0].type == "CUSTOM_WORD" and findings[1].type == "PROFANITY"


def test_profanity_only_when_asked() -> None:
    text = "This is bullshit."
    assert _found(text, profanity=True) == ["bullshit"]
    assert _found(text, profanity=False) == []
    assert find_words(text, [], profanity=False) == []
    assert find_words("", ["x"], profanity=True) == []


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("what the \u0455hit", "\u0455hit"),  # Cyrillic dze for s
        ("\u0430sshole!", "\u0430sshole"),  # Cyrillic a
        ("you \uff46\uff55\uff43\uff4b", "\uff46\uff55\uff43\uff4b"),  # full-width letters
        ("fu\u200bck this", "fu\u200bck"),  # zero-width space inside
        ("sh\u00ectty work", "sh\u00ectty"),  # an accent
        (
            "\U0001d41f\U0001d42e\U0001d41c\U0001d424 off",
            "\U0001d41f\U0001d42e\U0001d41c\U0001d424 off",
        ),
        ("F\u00adU\u00adC\u00adK", "F\u00adU\u00adC\u00adK"),  # soft hyphens
    ],
)
def test_look_alike_and_invisible_characters_do_not_hide_a_word(text: str, word: str) -> None:
    assert _found(text, profanity=True) == [word]


def test_custom_words_are_folded_too() -> None:
    text = "Payment from Societe Generale and from Soci\u00e9t\u00e9 G\u00e9n\u00e9rale."
    assert _found(text, ("Soci\u00e9t\u00e9 G\u00e9n\u00e9rale",)) == [
        "Societe Generale",
        "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale",
    ]


def test_words_with_punctuation() -> None:
    text = "We ship C++ code to @acme (@ACME!), not c++11 or x@acme."
    assert _found(text, ("c++", "@acme")) == ["C++", "@acme", "@ACME"]


def test_harmless_words_containing_profanity_are_not_flagged() -> None:
    text = (
        "Scunthorpe assistant classic passage Essex cocktail Dickens shiitake "
        "grasshopper Penistone cumulative analysis therapist magna cum laude"
    )
    assert _found(text, profanity=True) == []


def test_the_longest_entry_wins() -> None:
    assert _found("Oh fuck off now.", profanity=True) == ["fuck off"]
    assert _found("the red team and the red team lead", ("red team", "red team lead")) == [
        "red team",
        "red team lead",
    ]


def test_custom_word_and_profanity_are_reported_separately() -> None:
    findings = find_words("that shithole", ["shithole"], profanity=True)
    assert sorted(f.type for f in findings) == [CUSTOM_WORD, PROFANITY]
    assert {(f.start, f.end) for f in findings} == {(5, 13)}


def test_managed_list_is_clean() -> None:
    entries = profanity_list()
    assert 100 <= len(entries) <= 300
    assert len(set(entries)) == len(entries)
    assert all(e == e.lower().strip() and "#" not in e for e in entries)
    assert {"fuck", "shit", "motherfucker", "kiss my ass"} <= set(entries)


def test_linear_on_megabytes() -> None:
    words = profanity_list()
    filler = "the invoice total is due on receipt please pay to the account below "
    text = "".join(filler + (words[i % len(words)] + " ") for i in range(12_000))
    started = time.process_time()
    findings = find_words(text, ["invoice total"], profanity=True)
    assert time.process_time() - started < 5.0  # a hang guard: typically about 0.1 s
    assert sum(f.type == PROFANITY for f in findings) >= 12_000
