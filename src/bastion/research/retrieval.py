"""BM25 retrieval over the local corpus, and the `corpus` search provider.

Why SQLite FTS5 and not bm25s: FTS5 ships inside Python's own `sqlite3` (no new dependency,
no numpy/scipy), its `bm25()` ranking is the standard Okapi BM25 (k1 = 1.2, b = 0.75) with
per-column weights, its `porter unicode61` tokenizer stems English and folds diacritics, and a
query is plain SQL, so the order is made total with `ORDER BY rank, id`: documents tied on score
come back in id order, every run.

Two tables, both in one in-memory database built from the corpus: `corpus_docs` (title and body
columns, one row a document) ranks documents; `sentences` (one row a sentence) picks, inside the
top documents, the sentences that match. A search returns one `Passage` per document, best
document first: its `text` is the document's matching sentences in document order, its `index`
the best-matching sentence's position in `source.sentences` (so recall of supporting titles at
k is the titles of the first k passages, and gold (title, sentence) pairs can be checked against
`DocumentHit.sentences`).

The index is built on first use and rebuilt when the corpus changes: each search compares the
files' stat fingerprint; when it moved, the corpus is read again and re-indexed only if its
content fingerprint changed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.research.corpus import (
    CorpusDocument,
    content_fingerprint,
    load_corpus,
    stat_fingerprint,
)
from bastion.research.sources import Passage, Source
from bastion.research.text import content_words

__all__ = [
    "CorpusIndex",
    "CorpusProvider",
    "DocumentHit",
    "SentenceHit",
    "query_terms",
]

# The title counts this many times a body term: a question usually names its subject, and a
# HotpotQA title is the subject's name (chosen on the even-indexed questions only).
TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
MAX_PASSAGE_SENTENCES = 3  # matching sentences a passage carries
SNIPPET_CHARS = 300  # a source's snippet: the passage text, cut at a word to this length


def query_terms(query: str) -> list[str]:
    """The query's content words (see `content_words`), first occurrence order, no repeats."""
    return list(dict.fromkeys(content_words(query)))


def _match_expression(terms: Sequence[str]) -> str:
    # Each term quoted (a string, never FTS5 syntax), any of them may match.
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


@dataclass(frozen=True, slots=True)
class SentenceHit:
    """A matching sentence: its index in the document's sentences, text and BM25 score."""

    index: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class DocumentHit:
    """A matching document, its BM25 score (higher is better) and its matching sentences,
    best first."""

    document: CorpusDocument
    score: float
    sentences: tuple[SentenceHit, ...]


class CorpusIndex:
    """The BM25 index of the corpus at `path`, kept current with the files."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._documents: list[CorpusDocument] = []
        self._stat: str | None = None
        self._content: str | None = None
        self.builds = 0  # how many times the index was built (re-index visibility)

    @property
    def documents(self) -> list[CorpusDocument]:
        """The indexed documents, after bringing the index up to date."""
        with self._lock:
            self._refresh()
            return list(self._documents)

    def search(self, query: str, limit: int) -> list[DocumentHit]:
        """At most `limit` documents for `query`, best first; ties in id order."""
        terms = query_terms(query)
        if limit <= 0 or not terms:
            return []
        expression = _match_expression(terms)
        with self._lock:
            db = self._refresh()
            rows = db.execute(
                "SELECT d.rowid, -bm25(corpus_docs, ?, ?) AS score FROM corpus_docs d "
                "JOIN meta m ON m.rowid = d.rowid WHERE corpus_docs MATCH ? "
                "ORDER BY score DESC, m.doc_id LIMIT ?",
                (TITLE_WEIGHT, BODY_WEIGHT, expression, limit),
            ).fetchall()
            hits = []
            for rowid, score in rows:
                sentences = self._matching_sentences(db, rowid, expression)
                hits.append(DocumentHit(self._documents[rowid - 1], float(score), sentences))
        return hits

    def _matching_sentences(
        self, db: sqlite3.Connection, rowid: int, expression: str
    ) -> tuple[SentenceHit, ...]:
        rows = db.execute(
            "SELECT position, text, -bm25(sentences) AS score FROM sentences "
            "WHERE sentences MATCH ? AND doc = ? ORDER BY score DESC, position",
            (expression, rowid),
        ).fetchall()
        return tuple(SentenceHit(int(p), str(t), float(s)) for p, t, s in rows)

    def _refresh(self) -> sqlite3.Connection:
        stat = stat_fingerprint(self._path)
        if self._db is not None and stat == self._stat:
            return self._db
        documents = load_corpus(self._path)
        content = content_fingerprint(documents)
        if self._db is None or content != self._content:
            self._db = _build(documents)
            self._documents = documents
            self._content = content
            self.builds += 1
        self._stat = stat
        return self._db


def _build(documents: Sequence[CorpusDocument]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    tokenizer = "tokenize = 'porter unicode61 remove_diacritics 2'"
    db.execute(f"CREATE VIRTUAL TABLE corpus_docs USING fts5(title, body, {tokenizer})")
    db.execute(
        "CREATE VIRTUAL TABLE sentences USING fts5(doc UNINDEXED, position UNINDEXED, text, "
        f"{tokenizer})"
    )
    db.execute("CREATE TABLE meta (rowid INTEGER PRIMARY KEY, doc_id TEXT NOT NULL)")
    for rowid, document in enumerate(documents, start=1):
        body = " ".join(document.sentences) if document.sentences else document.text
        db.execute(
            "INSERT INTO corpus_docs (rowid, title, body) VALUES (?, ?, ?)",
            (rowid, document.title, body),
        )
        db.execute("INSERT INTO meta (rowid, doc_id) VALUES (?, ?)", (rowid, document.id))
        db.executemany(
            "INSERT INTO sentences (doc, position, text) VALUES (?, ?, ?)",
            [(rowid, i, s) for i, s in enumerate(document.sentences)],
        )
    db.commit()
    return db


class CorpusProvider:
    """The `corpus` search provider: BM25 over the local corpus, one passage per document.

    `clock` gives `retrieved_at` (a Unix time); pass a fixed one for byte-identical results.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float]) -> None:
        self._index = CorpusIndex(path)
        self._clock = clock

    @property
    def name(self) -> str:
        return "corpus"

    @property
    def index(self) -> CorpusIndex:
        return self._index

    async def search(self, query: str, limit: int) -> list[Passage]:
        hits = await asyncio.to_thread(self._index.search, query, limit)
        retrieved_at = self._clock()
        return [_passage(hit, retrieved_at) for hit in hits]


def _passage(hit: DocumentHit, retrieved_at: float) -> Passage:
    document = hit.document
    best = hit.sentences[:MAX_PASSAGE_SENTENCES]
    chosen = sorted(best, key=lambda s: s.index)
    text = " ".join(s.text for s in chosen) if chosen else _first(document)
    source = Source(
        id=document.id,
        title=document.title,
        provider="corpus",
        retrieved_at=retrieved_at,
        snippet=_snippet(text),
        text=document.text,
        url=document.url,
        sentences=document.sentences,
    )
    return Passage(source=source, index=best[0].index if best else 0, text=text, score=hit.score)


def _snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > 0 else SNIPPET_CHARS].rstrip() + "…"


def _first(document: CorpusDocument) -> str:
    return document.sentences[0] if document.sentences else document.text
