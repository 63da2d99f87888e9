"""Which sources a report cites (`selection.choose_sources`), and the bridge second hop it makes
possible: on a small corpus the test writes, a question whose answer sits in a document single-
shot BM25 does not rank near the top is answered from, and cites only, the pair that holds it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.research.retrieval import CorpusIndex
from bastion.research.selection import choose_sources, names_title
from bastion.research.sources import Source
from tests.research.service_fixtures import offline_engine, run_once

QUESTION = "The director of the 1990 drama film Blue Harbor was born on what date?"

DOCUMENTS: list[dict[str, Any]] = [
    {
        "id": "festival",
        "title": "Harbor Film Festival",
        "sentences": [
            "The Harbor Film Festival shows blue and drama films every year since 1990.",
            "Its films are directed by young directors born in the harbor city.",
        ],
    },
    {
        "id": "red-harbor",
        "title": "Red Harbor",
        "sentences": [
            "Red Harbor is a 1990 drama film set in a harbor town.",
            "Its director was born in a harbor town too.",
        ],
    },
    {
        "id": "blue-harbor",
        "title": "Blue Harbor (film)",
        "sentences": [
            "Blue Harbor is a 1990 drama film directed by Ana Ruiz.",
            "It was shot in Valparaiso.",
        ],
    },
    {
        "id": "ana-ruiz",
        "title": "Ana Ruiz",
        "sentences": [
            "Ana Ruiz (3 May 1950 - 9 June 2011) was a Chilean filmmaker.",
            "She studied in Santiago.",
        ],
    },
]


def make(doc_id: str, title: str, text: str) -> Source:
    return Source(id=doc_id, title=title, provider="corpus", retrieved_at=0.0, snippet=text,
                  text=text)  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("selection") / "corpus.json"
    path.write_text(json.dumps(DOCUMENTS), encoding="utf-8")
    return path


def test_a_title_is_named_whole_without_its_qualifier() -> None:
    assert names_title("Toad Hall (ANU)", "Toad Hall is a residential hall.")
    assert names_title("Simon &amp; Simon", "It starred in Simon & Simon on CBS.")
    assert names_title("Ana Ruiz", "directed by ANA  RUIZ.")
    assert not names_title("Ana Ruiz", "directed by Ana Ruizova.")  # a whole name, not a prefix
    assert not names_title("Alû", "Alû is a demon.")  # too short to tell by chance


def test_the_linked_pair_beats_an_earlier_pair_with_the_same_coverage() -> None:
    question = "Where was the director of Blue Harbor born?"
    festival = make("f", "Harbor festival", "The festival of Blue Harbor films.")
    other = make("o", "Harbor guide", "A director guide: who was born where.")
    film = make("b", "Blue Harbor (film)", "Blue Harbor is a film directed by Ana Ruiz.")
    person = make("a", "Ana Ruiz", "Ana Ruiz was born in Chile. She is a director.")
    chosen = choose_sources(question, [festival, other, film, person])
    assert [s.id for s in chosen] == ["b", "a"]


def test_a_title_the_question_names_is_chosen() -> None:
    question = "What city is Nantong in?"
    city = make("c", "City list", "A list of every city and what it is in.")
    town = make("t", "Town list", "A list of every town; what city it is in.")
    nantong = make("n", "Nantong", "It is a prefecture-level city in Jiangsu.")
    assert "n" in {s.id for s in choose_sources(question, [city, town, nantong])}


def test_ties_keep_the_earlier_pair_and_few_sources_are_kept() -> None:
    a, b, c = (make(x, f"Doc {x}", "Nothing in common.") for x in "abc")
    assert [s.id for s in choose_sources("Who won?", [a, b, c])] == ["a", "b"]
    assert choose_sources("Who won?", [a]) == [a]
    assert choose_sources("Who won?", [a, a]) == [a]  # the same source counts once


async def test_the_bridge_document_bm25_misses_is_found_and_cited(corpus: Path) -> None:
    ranked = [hit.document.id for hit in CorpusIndex(corpus).search(QUESTION, 2)]
    assert "ana-ruiz" not in ranked  # single-shot BM25 at two passages misses the second hop
    engine = offline_engine(corpus)
    result, _ = await run_once(engine, QUESTION, mode="research")
    assert [s.id for s in result.sources] == ["blue-harbor", "ana-ruiz"]
    assert result.answer == "3 May 1950"
    again, _ = await run_once(engine, QUESTION, mode="research")
    assert again.report == result.report
