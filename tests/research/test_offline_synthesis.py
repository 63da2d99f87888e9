"""The offline synthesizer: evidence by query overlap plus MMR, citations numbered by first use
that all resolve, a typed short answer, and byte-identical output for the same input."""

from __future__ import annotations

import re
from dataclasses import replace

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
    src = source("eiffel")
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


def test_a_comparison_answers_with_one_of_its_entities() -> None:
    older = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    given = passages("eiffel") + passages("liberty")
    assert synthesize(older, plan(older).texts, given).answer == "Statue of Liberty"
    younger = "Which is newer, the Eiffel Tower or the Statue of Liberty?"
    assert synthesize(younger, plan(younger).texts, given).answer == "Eiffel Tower"
    taller = "Which is taller, the Eiffel Tower or the Statue of Liberty?"
    assert synthesize(taller, plan(taller).texts, given).answer == "Eiffel Tower"


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


def test_a_same_place_comparison_compares_the_places_each_entity_is_in() -> None:
    different = "Are the Eiffel Tower and the Statue of Liberty in the same city?"
    given = passages("eiffel") + passages("liberty")
    assert synthesize(different, plan(different).texts, given).answer == "no"
    same = "Are the Eiffel Tower and the Louvre in the same city?"
    assert synthesize(same, plan(same).texts, passages("eiffel") + louvre()).answer == "yes"


def test_a_both_comparison_needs_each_entity_to_hold_the_property() -> None:
    given = passages("eiffel") + passages("liberty")
    both_tall = "Are the Eiffel Tower and the Statue of Liberty both tall?"
    assert synthesize(both_tall, plan(both_tall).texts, given).answer == "yes"
    both_colossal = "Are the Eiffel Tower and the Statue of Liberty both colossal?"
    assert synthesize(both_colossal, plan(both_colossal).texts, given).answer == "no"


def test_a_property_comparison_picks_the_entity_whose_evidence_holds_it() -> None:
    question = "Which landmark is colossal, the Eiffel Tower or the Statue of Liberty?"
    given = passages("eiffel") + passages("liberty")
    assert synthesize(question, plan(question).texts, given).answer == "Statue of Liberty"
