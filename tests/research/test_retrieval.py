"""BM25 retrieval over the corpus and the `corpus` search provider: ranking, matching
sentences, deterministic ties, re-indexing on change; recall on the HotpotQA sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bastion.research.corpus import CorpusError, hotpotqa_documents
from bastion.research.retrieval import CorpusIndex, CorpusProvider
from bastion.research.sources import SearchProvider
from tests.research.conftest import hotpotqa

DOCUMENTS = [
    {
        "id": "lighthouse",
        "title": "Skerry Point lighthouse",
        "text": "The lighthouse stands on Skerry Point. It was built in 1871 by Thomas Stevenson. "
        "Its lamp was electrified in 1930.",
        "url": "https://example.org/lighthouse",
    },
    {
        "id": "ferry",
        "title": "Island ferry",
        "text": "The ferry sails from the harbour at dawn. It carries forty cars.",
    },
    {
        "id": "stevenson",
        "title": "Thomas Stevenson",
        "text": "Thomas Stevenson was a Scottish engineer. He designed many lighthouses.",
    },
]


def write(path: Path, documents: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps(documents), encoding="utf-8")
    return path


def test_documents_ranked_with_their_matching_sentences(tmp_path: Path) -> None:
    index = CorpusIndex(write(tmp_path / "c.json", DOCUMENTS))
    hits = index.search("When was the Skerry Point lighthouse built?", 5)
    assert [h.document.id for h in hits] == ["lighthouse", "stevenson"]
    assert hits[0].score > hits[1].score > 0
    assert hits[0].sentences[0].index == 0  # three query terms; sentence 1 has one
    assert {s.index for s in hits[0].sentences} == {0, 1}  # sentence 2 shares no term
    assert hits[1].sentences[0].text == "He designed many lighthouses."  # stemmed match
    assert index.search("Who was Thomas Stevenson?", 1)[0].document.id == "stevenson"


def test_no_terms_no_limit_no_match(tmp_path: Path) -> None:
    index = CorpusIndex(write(tmp_path / "c.json", DOCUMENTS))
    assert index.search("what is the", 5) == []  # stopwords only
    assert index.search("lighthouse", 0) == []
    assert index.search("zeppelin", 5) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"unbalanced', []),
        ("lighthouse AND NOT ferry*", ["ferry", "lighthouse", "stevenson"]),  # no operators
        ("NEAR(ferry harbour)", ["ferry"]),
        ("title:ferry", ["ferry"]),  # not a column filter: "title" is a word too
        ("^ferry () OR", ["ferry"]),
    ],
)
def test_query_text_is_never_fts_syntax(tmp_path: Path, query: str, expected: list[str]) -> None:
    index = CorpusIndex(write(tmp_path / "c.json", DOCUMENTS))
    assert sorted(h.document.id for h in index.search(query, 5)) == expected


def test_ties_break_by_document_id(tmp_path: Path) -> None:
    same = {"title": "Twin", "text": "Identical twin text about kestrels."}
    documents = [{"id": name, **same} for name in ("delta", "alpha", "charlie", "bravo")]
    index = CorpusIndex(write(tmp_path / "c.json", documents))
    assert [h.document.id for h in index.search("kestrels", 10)] == [
        "alpha",
        "bravo",
        "charlie",
        "delta",
    ]
    assert [h.document.id for h in index.search("kestrels", 2)] == ["alpha", "bravo"]


def test_indexed_once_and_again_when_the_corpus_changes(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    note = folder / "note.txt"
    note.write_text("Puffins nest on the cliffs.", encoding="utf-8")
    index = CorpusIndex(folder)
    assert [h.document.title for h in index.search("puffins", 5)] == ["note"]
    index.search("cliffs", 5)
    assert index.builds == 1
    info = note.stat()
    os.utime(note, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    index.search("puffins", 5)
    assert index.builds == 1  # touched, same content: no re-index
    (folder / "seals.md").write_text("# Seals\n\nSeals rest on the rocks.", encoding="utf-8")
    assert [h.document.title for h in index.search("seals", 5)] == ["Seals"]
    assert index.builds == 2
    note.write_text("Gannets dive for fish.", encoding="utf-8")
    assert index.search("puffins", 5) == []
    assert [h.document.title for h in index.search("gannets", 5)] == ["note"]
    assert index.builds == 3
    note.unlink()
    assert index.search("gannets", 5) == []
    assert len(index.documents) == 1


def test_a_broken_corpus_fails_the_search(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", DOCUMENTS)
    index = CorpusIndex(path)
    assert index.search("ferry", 5)
    path.write_text("[{", encoding="utf-8")
    with pytest.raises(CorpusError, match="invalid JSON"):
        index.search("ferry", 5)


async def test_corpus_provider_returns_one_passage_per_document(tmp_path: Path) -> None:
    provider: SearchProvider = CorpusProvider(
        write(tmp_path / "c.json", DOCUMENTS), clock=lambda: 1e9
    )
    assert provider.name == "corpus"
    passages = await provider.search("Skerry Point lighthouse built 1871", 2)
    assert [p.source.id for p in passages] == ["lighthouse", "stevenson"]
    first = passages[0]
    assert first.source.provider == "corpus"
    assert first.source.retrieved_at == 1e9
    assert first.source.url == "https://example.org/lighthouse"
    assert first.source.title == "Skerry Point lighthouse"
    assert first.source.sentences[first.index] in first.text
    assert first.text == (
        "The lighthouse stands on Skerry Point. It was built in 1871 by Thomas Stevenson."
    )
    assert first.source.snippet == first.text
    assert first.score > passages[1].score
    assert await provider.search("Skerry Point lighthouse built 1871", 2) == passages


async def test_long_passages_get_a_short_snippet(tmp_path: Path) -> None:
    words = " ".join(f"word{i}" for i in range(100))
    path = write(tmp_path / "c.json", [{"title": "Long", "text": f"Albatross {words}."}])
    [passage] = await CorpusProvider(path, clock=lambda: 0.0).search("albatross", 5)
    assert passage.text == f"Albatross {words}."
    assert len(passage.source.snippet) <= 301 and passage.source.snippet.endswith("…")
    assert passage.text.startswith(passage.source.snippet[:-1])


def test_supporting_title_recall_at_5_on_even_questions(tmp_path: Path) -> None:
    """Single-shot BM25 on the even-indexed HotpotQA questions (the tuning half): the share of
    gold supporting titles among the top 5 documents (measured 0.82; the issue expects ~0.77)."""
    corpus, questions = hotpotqa("corpus"), hotpotqa("questions")
    index = CorpusIndex(write(tmp_path / "hotpot.json", hotpotqa_documents(corpus)))
    found = total = 0
    for question in questions[::2]:
        gold = {title for title, _ in question["supporting_facts"]}
        top = {hit.document.title for hit in index.search(question["question"], 5)}
        found += len(gold & top)
        total += len(gold)
    assert found / total >= 0.8
