"""Short answers typed by the question word, and the shared text rules they rest on."""

from __future__ import annotations

import pytest

from bastion.research.answer import answer_type, extract_answer
from bastion.research.text import answer_scores, key_terms, normalize_answer, split_sentences


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people live in Paris?", "number"),
        ("When was Steven Spielberg born?", "date"),
        ("In what year was the tower completed?", "date"),
        ("Where was Steven Spielberg raised?", "place"),
        ("In which city is the tower?", "place"),
        ("Who directed Jaws?", "person"),
        ("Is the Eiffel Tower in Paris?", "yesno"),
        ("What studio did Spielberg found?", "entity"),
    ],
)
def test_the_question_word_gives_the_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_who_takes_a_name_the_question_does_not_already_hold() -> None:
    sentences = ["Jaws is a 1975 American thriller film directed by Steven Spielberg."]
    assert extract_answer("Who directed Jaws?", sentences) == "Steven Spielberg"


def test_when_takes_the_fullest_date() -> None:
    sentences = ["Steven Allan Spielberg (born December 18, 1946) is an American filmmaker."]
    assert extract_answer("When was Steven Spielberg born?", sentences) == "December 18, 1946"
    assert extract_answer("When was it built?", ["It opened on 8 June 1951."]) == "8 June 1951"


def test_a_year_question_takes_only_the_year() -> None:
    sentences = ["Ezer Weizman (15 June 1924 - 24 April 2005) was a president."]
    assert extract_answer("In what year was Ezer Weizman born?", sentences) == "1924"


def test_where_takes_the_place_after_a_preposition() -> None:
    sentences = ["Spielberg grew up in Cincinnati, Ohio."]
    assert extract_answer("Where did Spielberg grow up?", sentences) == "Cincinnati, Ohio"


def test_how_many_takes_a_number_with_its_scale() -> None:
    sentences = ["The singer has sold more than 150 million records worldwide."]
    assert extract_answer("How many records has the singer sold?", sentences) == "150 million"


def test_yes_no_says_yes_only_when_the_evidence_holds_every_key_term() -> None:
    evidence = ["The Eiffel Tower is a wrought-iron lattice tower in Paris, France."]
    assert extract_answer("Is the Eiffel Tower in Paris?", evidence) == "yes"
    assert extract_answer("Is the Eiffel Tower in Rome?", evidence) == "no"
    assert extract_answer("Is the Eiffel Tower in Rome?", []) is None


def test_no_fitting_span_gives_no_answer() -> None:
    assert extract_answer("When was it built?", ["Nobody knows."]) is None


def test_sentences_end_at_punctuation_but_not_at_initials_or_abbreviations() -> None:
    text = "E. B. White wrote it. Dr. Smith agreed! Was it 1952? Yes."
    assert split_sentences(text) == [
        "E. B. White wrote it.",
        "Dr. Smith agreed!",
        "Was it 1952?",
        "Yes.",
    ]


def test_key_terms_drop_stop_words_and_plurals() -> None:
    assert key_terms("Which films did the directors make in the 1970s?") == [
        "film", "director", "make", "1970",
    ]  # fmt: skip


def test_hotpotqa_normalisation() -> None:
    assert normalize_answer("The  Exies!") == "exies"
    assert normalize_answer("a Spirit.") == "spirit"


def test_hotpotqa_exact_match_and_f1() -> None:
    assert answer_scores("The Exies", "the exies.") == (1.0, 1.0)
    assert answer_scores("Steven Allan Spielberg", "Steven Spielberg") == (0.0, 0.8)
    assert answer_scores("yes", "no") == (0.0, 0.0)
    assert answer_scores("Paris", "Rome") == (0.0, 0.0)


def test_who_did_it_is_the_doer_of_the_passive_sentence() -> None:
    """The name after "designed by", not the first name of the best sentence."""
    evidence = [
        "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris.",
        "It was designed by Gustave Eiffel, whose company built it.",
    ]
    assert extract_answer("Who designed the Eiffel Tower?", evidence) == "Gustave Eiffel"
    written = ["Hamlet is a tragedy written by William Shakespeare around 1600."]
    assert extract_answer("Who wrote Hamlet?", written) == "William Shakespeare"
    directed = ["The film was directed by the American filmmaker Steven Spielberg."]
    assert extract_answer("Who directed the film?", directed) == "Steven Spielberg"
