"""The offline critic: one test per rule (no evidence, uncited sentence, unresolved citation, no
credible source, low coverage, contradicting sources) and a clean PASS."""

from __future__ import annotations

import json
from dataclasses import replace

from bastion.research.critic import Verdict, critique
from bastion.research.findings import report_from_json, report_to_json
from bastion.research.sources import Passage, Source
from bastion.research.synthesis import synthesize
from tests.research.offline_corpus import passages

QUESTION = "When was the Eiffel Tower completed?"
TRUSTED = {"eiffel": 0.9, "liberty": 0.9, "paris": 0.9, "jaws": 0.9, "spielberg": 0.9}


def fan_page(text: str) -> list[Passage]:
    src = Source(
        id="fanpage",
        title="Eiffel Tower fan page",
        provider="corpus",
        retrieved_at=0.0,
        snippet=text,
        text=text,
    )
    return [Passage(src, 0, text, 1.0)]


def test_a_cited_credible_consistent_report_passes() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    result = critique(QUESTION, [QUESTION], report, TRUSTED)
    assert result.verdict is Verdict.PASS
    assert result.gaps == ()


def test_a_report_without_evidence_fails() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("paris"))
    result = critique(QUESTION, [QUESTION], report, TRUSTED)
    assert result.verdict is Verdict.FAIL
    assert "no evidence" in result.reasons[0]


def test_a_sentence_without_a_citation_fails() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    tampered = replace(report, markdown=report.markdown.replace(
        "## Sources", "The tower is made of cheese.\n\n## Sources"))  # fmt: skip
    result = critique(QUESTION, [QUESTION], tampered, TRUSTED)
    assert result.verdict is Verdict.FAIL
    assert result.reasons == ("sentence without a citation: 'The tower is made of cheese.'",)


def test_a_citation_naming_no_source_fails() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    tampered = replace(report, markdown=report.markdown.replace("[1]", "[7]", 1))
    result = critique(QUESTION, [QUESTION], tampered, TRUSTED)
    assert result.verdict is Verdict.FAIL
    assert "citation [7] names no source" in result.reasons[0]


def test_a_sub_question_without_a_credible_source_is_a_gap() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    result = critique(QUESTION, [QUESTION], report, {"eiffel": 0.3}, min_credibility=0.5)
    assert result.verdict is Verdict.REFINE
    assert result.gaps == (QUESTION,)
    assert "best credibility 0.30" in result.reasons[0]


def test_an_unknown_source_counts_as_not_credible() -> None:
    report = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    result = critique(QUESTION, [QUESTION], report, {})
    assert result.verdict is Verdict.REFINE
    assert result.gaps == (QUESTION,)


def test_a_sub_question_with_no_evidence_at_all_is_a_gap() -> None:
    report = synthesize(QUESTION, [QUESTION, "Who founded DreamWorks?"], passages("eiffel"))
    result = critique(QUESTION, [QUESTION, "Who founded DreamWorks?"], report, TRUSTED)
    assert result.verdict is Verdict.REFINE
    assert result.gaps == ("Who founded DreamWorks?",)
    assert "no source" in result.reasons[0]


def test_too_little_coverage_of_the_question_names_the_missing_terms() -> None:
    question = "When was the Eiffel Tower completed and who painted its ironwork annually?"
    report = synthesize(question, [question], passages("eiffel"))
    result = critique(question, [question], report, TRUSTED, min_coverage=0.8)
    assert result.verdict is Verdict.REFINE
    assert result.gaps == ("What is known about painted ironwork annually?",)
    assert "3 of 6 key terms" in result.reasons[0]


def test_sources_giving_different_years_contradict() -> None:
    given = passages("eiffel") + fan_page("The Eiffel Tower was completed in 1887.")
    report = synthesize(QUESTION, [QUESTION], given)
    result = critique(QUESTION, [QUESTION], report, {**TRUSTED, "fanpage": 0.9})
    assert result.verdict is Verdict.REFINE
    assert result.reasons == (f"sources contradict each other on {QUESTION!r}: 1889, 1887",)
    assert result.gaps == (f"{QUESTION} (sources disagree: 1889, 1887)",)


def test_sources_agreeing_on_the_year_do_not_contradict() -> None:
    given = passages("eiffel") + fan_page("The Eiffel Tower was completed in 1889.")
    report = synthesize(QUESTION, [QUESTION], given)
    assert len(report.sources) == 2
    assert critique(QUESTION, [QUESTION], report, {**TRUSTED, "fanpage": 0.9}).verdict is (
        Verdict.PASS
    )


def test_the_critic_needs_no_source_text() -> None:
    """The research agent sends the critic a report without its sources' texts: every verdict
    is the same as over the whole report."""
    eiffel = synthesize(QUESTION, [QUESTION], passages("eiffel"))
    reports = [
        eiffel,
        synthesize(QUESTION, [QUESTION], passages("paris")),
        replace(eiffel, markdown=eiffel.markdown.replace("[1]", "[7]", 1)),
        synthesize(
            QUESTION,
            [QUESTION],
            [
                *passages("eiffel"),
                *fan_page("The Eiffel Tower was completed in 1899 after a long delay."),
            ],
        ),
    ]
    for report in reports:
        slim = report_to_json(report, source_texts=False)
        assert all(s["text"] == "" and s["sentences"] == [] for s in slim["sources"])
        if report.sources:
            assert len(json.dumps(slim)) < len(json.dumps(report_to_json(report)))
        for credibility in (TRUSTED, {}):
            whole = critique(QUESTION, [QUESTION], report, credibility)
            assert critique(QUESTION, [QUESTION], report_from_json(slim), credibility) == whole
