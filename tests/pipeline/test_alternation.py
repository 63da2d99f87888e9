"""The first-letter dispatch of named alternations matches exactly what the plain one does."""

from __future__ import annotations

import random
import re

import pytest

from bastion.pipeline.extract import classify
from bastion.pipeline.extract.alternation import named_alternation, split_alternatives
from bastion.pipeline.extract.invoice import vocabulary
from bastion.pipeline.samples import render_samples
from bastion.pipeline.synthetic import synthetic_invoice


def plain(prefix: str, vocabularies: list[tuple[str, str]]) -> re.Pattern[str]:
    return re.compile(
        prefix + "(?:" + "|".join(f"(?P<{name}>{source})" for name, source in vocabularies) + ")"
    )


def matches(
    pattern: re.Pattern[str], text: str, names: dict[str, str] | None = None
) -> list[tuple[tuple[int, int], str | None]]:
    found = []
    for m in pattern.finditer(text):
        group = m.lastgroup
        found.append((m.span(), names[group] if names and group else group))
    return found


def test_split_alternatives_respects_groups_classes_and_escapes() -> None:
    assert split_alternatives(r"a|b(?:c|d)|[|x]|\||e") == ["a", "b(?:c|d)", "[|x]", r"\|", "e"]
    assert split_alternatives(r"[]|]|[^]|]x|y") == ["[]|]", "[^]|]x", "y"]


@pytest.mark.parametrize(
    ("source", "text"),
    [
        (
            r"(?:tax\s+|commercial\s+)?invoice\s*no",
            "tax invoice no, commercial  invoice no, invoiceno",
        ),
        (r"(?:a|ab)c|abd", "abc abd ac"),  # order decides between overlapping branches
        (r"(?:a|b)?b+c|x", "bbc bc c abc x"),
        (r"(?:ab)*c|abx", "ababc abx c"),  # a repeated head group is kept whole
        (r"(?:a|b)??c|bc", "bc ac c"),  # a lazy optional head is kept whole
        (r"[ée]ch[ée]ance|e\w+", "échéance echeance eau"),
        (r"[üu]bertrag|[àa]\s*payer|u\w+", "übertrag ubertrag uber à payer apayer"),
        (r"[ab]+c|[ab]?d|a", "abc bd d a"),  # a repeated or optional class is kept whole
    ],
)
def test_rewritten_sources_match_like_the_plain_alternation(source: str, text: str) -> None:
    fast = named_alternation("", [("v", source), ("w", r"\w+")])
    assert matches(fast.pattern, text, fast.names) == matches(
        plain("", [("v", source), ("w", r"\w+")]), text
    )


def _corpus() -> list[str]:
    texts = [p.decode("latin-1") for p in render_samples().values()]
    texts += [synthetic_invoice(i, seed=5).decode("latin-1") for i in range(20)]
    rng = random.Random(7)
    words = re.findall(r"[^\W\d_]+", " ".join(texts).lower())
    vocabulary_words = re.findall(r"[a-zäöüéèàçß]{2,}", vocabulary._LABELS.pattern.pattern)
    for _ in range(300):
        pool = words + vocabulary_words * 3
        texts.append(" ".join(rng.choice(pool) + rng.choice(["", ":", ".", " #", "\t", "\x00"])
                              for _ in range(rng.randint(1, 12))))  # fmt: skip
    return [t.lower() for t in texts]


@pytest.mark.parametrize("which", ["labels", "amount kinds"])
def test_invoice_vocabularies_match_like_the_plain_alternation(which: str) -> None:
    fast, named = {
        "labels": (vocabulary._LABELS, vocabulary._LABEL_ORDER),
        "amount kinds": (vocabulary._KIND, vocabulary._KINDS),
    }[which]
    reference = plain(
        vocabulary._WORD_START,
        [(name, re.sub(r"(^|\||\(\?:)\\b", r"\1", vocabulary._body(p))) for name, p in named],
    )
    assert len(set(fast.names.values())) == len(named)
    for text in _corpus():
        assert matches(fast.pattern, text, fast.names) == matches(reference, text), text[:200]


def test_classification_cues_match_like_the_plain_alternation() -> None:
    reference = plain(
        classify._WORD_START,
        [(f"c{i}", classify._lower_source(classify._ALL[i][1].source)) for i in classify._SCANNED],
    )
    names = {group: f"c{index}" for group, index in classify._COMBINED.names.items()}
    for text in _corpus():
        assert matches(classify._COMBINED.pattern, text, names) == matches(reference, text)


def test_most_label_branches_are_dispatched_on_a_letter() -> None:
    """The point of the rewrite: if distribution stopped working, the scan would be slow again."""
    source = vocabulary._LABELS.pattern.pattern[len(vocabulary._WORD_START) + 3 : -1]
    segments = split_alternatives(source)
    lettered = [s for s in segments if s[:1].isalpha() and s[1:4] == "(?:"]
    assert len(lettered) >= 0.8 * len(segments)
