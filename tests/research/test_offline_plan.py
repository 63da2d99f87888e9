"""The offline planner: chat-or-research sorting and the decomposition rules, one test per
rule, plus a bridge resolved from evidence found for its first step."""

from __future__ import annotations

import pytest

from bastion.research.plan import BRIDGE, classify, comparison_entities, plan, resolve_bridge
from bastion.research.synthesis import synthesize
from tests.research.offline_corpus import retrieve


@pytest.mark.parametrize(
    "message",
    ["", "hi", "Hello there!", "thanks so much", "Good morning", "How are you?", "who are you?"],
)
def test_greetings_and_small_talk_are_chat(message: str) -> None:
    assert classify(message) == "chat"


@pytest.mark.parametrize(
    "message",
    [
        "When was the director of Jaws born?",
        "is the Eiffel Tower taller than the Statue of Liberty",
        "tell me about the Eiffel Tower",
        "compare BM25 and dense retrieval",
        "quantum error correction surface codes",
    ],
)
def test_questions_and_requests_are_research(message: str) -> None:
    assert classify(message) == "research"


def test_a_short_statement_without_a_question_is_chat() -> None:
    assert classify("nice work") == "chat"


def test_an_or_comparison_of_age_asks_each_entity_for_its_date() -> None:
    result = plan("Which is older, the Eiffel Tower or the Statue of Liberty?")
    assert result.kind == "comparison"
    assert result.texts == [
        "When was Eiffel Tower born or founded?",
        "When was Statue of Liberty born or founded?",
    ]
    assert [s.entity for s in result.sub_questions] == ["Eiffel Tower", "Statue of Liberty"]


def test_an_or_comparison_without_a_comma_uses_the_question_verb() -> None:
    result = plan("Which band was formed first The Exies or Circus Diablo ?")
    assert result.texts == ["When was The Exies formed?", "When was Circus Diablo formed?"]


def test_a_size_comparison_asks_how_large() -> None:
    result = plan("Which plant is larger, the Pterocarya or the Cotula?")
    assert result.texts == ["How large is Pterocarya?", "How large is Cotula?"]


def test_a_property_comparison_asks_each_entity_the_property() -> None:
    result = plan("Which singer is American, Mark King or Nick Hexum?")
    assert result.texts == ["Is Mark King American?", "Is Nick Hexum American?"]
    assert comparison_entities("Which singer is American, Mark King or Nick Hexum?") == (
        "Mark King",
        "Nick Hexum",
    )


def test_an_and_comparison_asks_each_entity() -> None:
    result = plan("Are both magazines, the Woman's Viewpoint and Pick Me Up, British publications?")
    assert result.kind == "comparison"
    assert result.texts == [
        "Is Woman's Viewpoint British publications?",
        "Is Pick Me Up British publications?",
    ]


def test_a_same_noun_comparison_asks_where_each_entity_is() -> None:
    result = plan("Are Nantong and Jingdezhen situated in the same province ?")
    assert result.texts == ["In which province is Nantong?", "In which province is Jingdezhen?"]


def test_a_role_of_bridge_asks_for_the_role_then_about_the_bridge() -> None:
    result = plan("When was the director of Jaws born?")
    assert result.kind == "bridge"
    assert result.texts == ["Who directed Jaws?", f"When was {BRIDGE} born?"]
    assert result.sub_questions[1].depends_on == 0
    assert result.sub_questions[1].needs_bridge
    assert result.sub_questions[1].search_text == "When was born?"


def test_a_role_without_a_known_verb_is_asked_as_is() -> None:
    result = plan("What position did the receiver of the 2007 Golden Shoe play?")
    assert result.texts == [
        "Who is the receiver of the 2007 Golden Shoe?",
        f"What position did {BRIDGE} play?",
    ]


def test_a_relative_clause_bridge_asks_the_clause_first() -> None:
    result = plan("In what year was the man that resigned as president of Israel born?")
    assert result.texts == [
        "Who resigned as president of Israel?",
        f"In what year was {BRIDGE} born?",
    ]


def test_a_question_that_is_its_own_first_step_is_single() -> None:
    assert plan("Who is the author of Dune?").texts == ["Who is the author of Dune?"]
    assert plan("What is the capital of France?").kind == "single"


def test_the_bridge_is_filled_from_evidence_for_the_first_sub_question() -> None:
    question = "When was the director of Jaws born?"
    current = plan(question)
    first = current.sub_questions[0].text
    found = synthesize(question, [first], retrieve(first))
    current = resolve_bridge(current, 0, [e.sentence for e in found.evidence])
    assert current.texts == ["Who directed Jaws?", "When was Steven Spielberg born?"]
    second = current.sub_questions[1].text
    report = synthesize(question, current.texts, retrieve(first) + retrieve(second))
    assert report.answer == "December 18, 1946"


def test_a_bridge_stays_open_when_the_evidence_has_no_answer() -> None:
    current = plan("When was the director of Jaws born?")
    assert resolve_bridge(current, 0, ["Nothing relevant here."]) == current
