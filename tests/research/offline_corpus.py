"""A handful of hand-written sources and a tiny term-overlap retriever over them, for the offline
planner, synthesizer and critic tests (the real retrieval is tested on its own)."""

from __future__ import annotations

from bastion.research.sources import Passage, Source
from bastion.research.text import key_terms

DOCUMENTS: dict[str, tuple[str, list[str]]] = {
    "jaws": (
        "Jaws (film)",
        [
            "Jaws is a 1975 American thriller film directed by Steven Spielberg.",
            "It is based on the novel by Peter Benchley.",
            "The film stars Roy Scheider as a police chief.",
        ],
    ),
    "spielberg": (
        "Steven Spielberg",
        [
            "Steven Allan Spielberg (born December 18, 1946) is an American filmmaker.",
            "Spielberg grew up in Cincinnati, Ohio.",
            "He co-founded the studio DreamWorks.",
        ],
    ),
    "eiffel": (
        "Eiffel Tower",
        [
            "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
            "The Eiffel Tower was completed in 1889.",
            "The Eiffel Tower is 330 metres tall.",
        ],
    ),
    "liberty": (
        "Statue of Liberty",
        [
            "The Statue of Liberty is a colossal statue on Liberty Island in New York.",
            "The Statue of Liberty was dedicated in 1886.",
            "The Statue of Liberty is 93 metres tall.",
        ],
    ),
    "paris": (
        "Paris",
        [
            "Paris is the capital of France.",
            "Paris has about 2,100,000 residents.",
        ],
    ),
}


def source(doc_id: str) -> Source:
    title, sentences = DOCUMENTS[doc_id]
    text = " ".join(sentences)
    return Source(
        id=doc_id,
        title=title,
        provider="corpus",
        retrieved_at=0.0,
        snippet=sentences[0],
        text=text,
        sentences=tuple(sentences),
    )


def passages(doc_id: str) -> list[Passage]:
    """Every sentence of one document as a passage."""
    src = source(doc_id)
    return [Passage(src, i, sentence, 1.0) for i, sentence in enumerate(src.sentences)]


def retrieve(query: str, limit: int = 6, extra: list[Passage] | None = None) -> list[Passage]:
    """The `limit` sentences sharing most key terms with `query` (title words count too), best
    first, ties in document order."""
    terms = set(key_terms(query))
    pool = [p for doc_id in DOCUMENTS for p in passages(doc_id)] + (extra or [])
    scored = [
        (len(terms & set(key_terms(p.text + " " + p.source.title))), i, p)
        for i, p in enumerate(pool)
    ]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    return [Passage(p.source, p.index, p.text, float(score)) for score, _, p in ranked[:limit]]
