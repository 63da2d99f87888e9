"""The offline synthesizer: evidence by query overlap plus MMR, citations numbered by first use
that all resolve, a typed short answer, and byte-identical output for the same input."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from bastion.research.plan import plan
from bastion.research.sources import Passage
from bastion.research.synthesis import synthesize
from tests.research.offline_corpus import passages, retrieve, source


def cited_numbers(markdown: str) -> set[int]:
    body = markdown.split("## Sources")[0]
    return {int(n) for n in re.findall(r"\[(\d+)\]", body)}


def test_every_citation_resolves_to_a_listed_source() -> None:
    question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    subs = plan(question).texts
    report = synthesize(question, subs, [p for s in subs for p in retrieve(s)])
    numbers = cited_numbers(report.markdown)
    assert numbers == set(range(1, len(report.sources) + 1))
    for n, src in enumerate(report.sources, start=1):
        assert f"[{n}] {src.title} (corpus: {src.id})" in report.markdown
    for item in report.evidence:
        assert report.sources[item.n - 1] == item.source
        assert f"- {item.sentence} [{item.n}]" in report.markdown


def test_sources_are_numbered_in_order_of_first_use() -> None:
    question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    subs = plan(question).texts
    # the Statue's passages come first in the input, but the report cites the tower first
    given = passages("liberty") + passages("eiffel")
    report = synthesize(question, subs, given)
    assert [s.id for s in report.sources] == ["eiffel", "liberty"]
    body = report.markdown.split("## Sources")[0].split("## ", 1)[1]
    first_seen = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", body)))
    assert first_seen == [1, 2]


def test_evidence_is_chosen_by_overlap_with_the_sub_question() -> None:
    question = "When was the Eiffel Tower completed?"
    report = synthesize(question, [question], passages("eiffel") + passages("paris"))
    assert report.evidence[0].sentence == "The Eiffel Tower was completed in 1889."
    assert all(e.source.id == "eiffel" for e in report.evidence)  # Paris shares no key term


def test_mmr_skips_a_near_duplicate_for_a_new_sentence() -> None:
    src = replace(source("eiffel"), sentences=())  # only the passages' sentences are candidates
    given = [
        Passage(src, 0, "The Eiffel Tower in Paris was completed in 1889.", 1.0),
        Passage(src, 1, "The Eiffel Tower in Paris was completed in 1889 by Eiffel.", 1.0),
        Passage(src, 2, "The Eiffel Tower has three visitor levels.", 1.0),
    ]
    question = "When was the Eiffel Tower in Paris completed?"
    with_mmr = synthesize(question, [question], given, per_sub_question=2, mmr_lambda=0.5)
    without = synthesize(question, [question], given, per_sub_question=2, mmr_lambda=1.0)
    assert [e.sentence for e in without.evidence] == [given[0].text, given[1].text]
    assert [e.sentence for e in with_mmr.evidence] == [given[0].text, given[2].text]


def test_the_same_sentence_of_the_same_source_is_used_once() -> None:
    question = "When was the Eiffel Tower completed?"
    report = synthesize(question, [question, question], passages("eiffel") * 2)
    sentences = [e.sentence for e in report.evidence]
    assert len(sentences) == len(set(sentences))


def test_a_who_question_answers_with_a_name_and_cites_it() -> None:
    report = synthesize("Who directed Jaws?", ["Who directed Jaws?"], passages("jaws"))
    assert report.answer == "Steven Spielberg"
    assert "**Answer:** Steven Spielberg [1]" in report.markdown


def test_a_how_many_question_answers_with_a_number() -> None:
    question = "How many residents does Paris have?"
    report = synthesize(question, [question], passages("paris"))
    assert report.answer == "2,100,000"


def test_a_yes_no_question_answers_yes_or_no() -> None:
    question = "Is the Eiffel Tower in Paris?"
    assert synthesize(question, [question], passages("eiffel")).answer == "yes"


def test_nothing_relevant_gives_no_answer_and_no_sources() -> None:
    question = "Who wrote the novel Dune?"
    report = synthesize(question, [question], passages("paris"))
    assert report.answer is None
    assert report.sources == ()
    assert "**Answer:** not found in the sources." in report.markdown


def test_the_same_input_gives_a_byte_identical_report() -> None:
    question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    subs = plan(question).texts
    given = [p for s in subs for p in retrieve(s)]
    first = synthesize(question, subs, given)
    again = synthesize(question, list(subs), list(given))
    assert first.markdown.encode() == again.markdown.encode()
    assert first == again


SCRIPT = """
from bastion.research.plan import plan
from bastion.research.synthesis import synthesize
from tests.research.offline_corpus import retrieve
question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
subs = plan(question).texts
print(synthesize(question, subs, [p for s in subs for p in retrieve(s)]).markdown)
"""


def test_the_report_does_not_depend_on_the_hash_seed() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    outputs = []
    for seed in ("1", "2"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}",
        }
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, check=True
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert b"[1]" in outputs[0]


def test_a_source_footnote_mark_never_reads_as_a_citation() -> None:
    src = source("eiffel")
    given = [Passage(src, 0, "The Eiffel Tower was completed\nin 1889.[12] It is iron.", 1.0)]
    question = "When was the Eiffel Tower completed?"
    report = synthesize(question, [question], given)
    assert "- The Eiffel Tower was completed in 1889. [1]" in report.markdown
    assert cited_numbers(report.markdown) == {1}


def louvre() -> list[Passage]:
    text = "The Louvre is an art museum in Paris, France."
    src = replace(source("paris"), id="louvre", title="Louvre", text=text, sentences=(text,))
    return [Passage(src, 0, text, 1.0)]


EIFFEL_TOWER_OR_STATUE = "the Eiffel Tower or the Statue of Liberty"
EIFFEL_TOWER_AND_STATUE = "the Eiffel Tower and the Statue of Liberty"


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        # a comparison answers with one of its entities
        (f"Which is older, {EIFFEL_TOWER_OR_STATUE}?", "Statue of Liberty"),
        (f"Which is newer, {EIFFEL_TOWER_OR_STATUE}?", "Eiffel Tower"),
        (f"Which is taller, {EIFFEL_TOWER_OR_STATUE}?", "Eiffel Tower"),
        # a property comparison picks the entity whose evidence holds the property
        (f"Which landmark is colossal, {EIFFEL_TOWER_OR_STATUE}?", "Statue of Liberty"),
        # a same-place comparison compares the places each entity is in
        (f"Are {EIFFEL_TOWER_AND_STATUE} in the same city?", "no"),
        # a "both" comparison needs each entity to hold the property
        (f"Are {EIFFEL_TOWER_AND_STATUE} both tall?", "yes"),
        (f"Are {EIFFEL_TOWER_AND_STATUE} both colossal?", "no"),
    ],
)
def test_a_comparison_of_two_landmarks_answers_from_their_evidence(
    question: str, answer: str
) -> None:
    given = passages("eiffel") + passages("liberty")
    assert synthesize(question, plan(question).texts, given).answer == answer


def test_a_same_place_comparison_says_yes_for_two_things_in_one_city() -> None:
    same = "Are the Eiffel Tower and the Louvre in the same city?"
    assert synthesize(same, plan(same).texts, passages("eiffel") + louvre()).answer == "yes"
